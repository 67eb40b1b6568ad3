"""Spark plumbing shared by the batch and speed layers: sessions, Delta helpers, submit arguments."""
