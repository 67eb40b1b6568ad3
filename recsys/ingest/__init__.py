"""Collection: hand validated events to Kafka."""
