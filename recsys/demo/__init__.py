"""`make demo` and the synthetic model for tests and benches. No production code imports this package."""
