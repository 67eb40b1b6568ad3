"""Serving: merge the batch model with real-time state into one ranked, explained list."""
