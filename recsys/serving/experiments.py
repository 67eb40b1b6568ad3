"""A/B variants: which variant a user gets, and what that variant serves with.

Assignment is a pure function of (experiment name, user id): SHA-256 of both gives a bucket in [0, 1)
that falls into one variant's slice of the cumulative shares. Every process and every restart agrees
(Python's hash() is salted per process, so it is not used), a user stays in one variant for the whole
experiment, and a new experiment name reshuffles everyone.
"""

from __future__ import annotations

import hashlib

from recsys.config import ExperimentsConfig, MergeWeights, Variant
from recsys.contracts.served import OFF

# Bytes of the digest read as the bucket's numerator: 2^64 buckets are far finer than any share.
_BUCKET_BYTES = 8
_BUCKETS = 2 ** (8 * _BUCKET_BYTES)

# What everyone gets while experiments are off: no overrides, recorded as variant OFF.
NO_VARIANT = Variant(name=OFF, share=1.0)


def bucket(experiment: str, user_id: str) -> float:
    """The user's stable position in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:_BUCKET_BYTES], "big") / _BUCKETS


def assign_variant(user_id: str, cfg: ExperimentsConfig) -> Variant:
    """The user's variant; NO_VARIANT when experiments are off."""
    if not cfg.enabled:
        return NO_VARIANT
    position = bucket(cfg.name, user_id)
    cumulative = 0.0
    for variant in cfg.variants:
        cumulative += variant.share
        if position < cumulative:
            return variant
    return cfg.variants[-1]  # shares sum to 1 only within rounding; the top sliver belongs to the last


def experiment_name(cfg: ExperimentsConfig) -> str:
    """What served records carry as `experiment`: the configured name, or OFF when experiments are off."""
    return cfg.name if cfg.enabled else OFF


def merge_weights(base: MergeWeights, variant: Variant) -> MergeWeights:
    """serving.merge with the variant's overrides applied (keys were checked against MergeWeights at load)."""
    return base.model_copy(update=variant.merge) if variant.merge else base
