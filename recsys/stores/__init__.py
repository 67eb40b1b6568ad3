"""Stores the serving layer reads: interfaces plus their implementations (Delta, Redis)."""
