"""Kafka: the project's topic names (a contract: events, dead-letter, served), topic setup and client security."""
