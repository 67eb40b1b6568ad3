"""Shared library of the real-time recommender: contracts, batch, speed and serving logic."""
