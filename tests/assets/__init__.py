"""Importable packages for the CLI tests: services to serve, and modules that fail to import."""
