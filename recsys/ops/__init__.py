"""Operational helpers for the local and cluster services: Kafka topic setup."""
