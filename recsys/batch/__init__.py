"""Batch layer: interactions from Delta events, ALS training, model registry and publishing."""
