"""Shared test helpers (real NSQ processes, polling with deadlines)."""
