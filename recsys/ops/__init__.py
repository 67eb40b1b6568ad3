"""Operational helpers: the demo runner."""
