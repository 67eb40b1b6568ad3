"""The contracts between layers, each defined once: events, Delta tables, Redis keys, model versions."""
