"""Example services shipped with almanet."""
