"""Speed layer: Kafka -> Delta bronze exactly once, quarantine, real-time state in Redis."""
