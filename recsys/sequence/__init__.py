"""A sequence-aware next-item model (GRU4Rec-style): sessions prepared with Spark, trained with JAX on CPU,
served with numpy from memory-mapped weights as one more merge signal (docs/sequence.md)."""
