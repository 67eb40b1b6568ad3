"""A content profile for an item created through the API, computed in the serving process at once.

It reproduces the batch layer's tokens (recsys.batch.content.item_profiles: category, brand, price band and
title words, hashed by Spark's HashingTF: MurmurHash3 x86 32-bit, seed 42, non-negative modulo) so the new
item's profile lives in the same space as the published profiles and their cosines compare. Two differences,
both small for ranking: term frequencies are not IDF-weighted (the fitted IDF is not published) and English
stop words are not removed (a stop word is rarely a catalogue title's only word).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

SPARK_HASH_SEED = 42  # org.apache.spark.ml.feature.FeatureHasher.seed, used by HashingTF
_WORD_SPLIT = re.compile(r"[^\w]+|_", re.UNICODE)  # RegexTokenizer's [^\p{L}\p{N}]+


def murmur3_32(data: bytes, seed: int = SPARK_HASH_SEED) -> int:
    """MurmurHash3 x86 32-bit of `data` as a signed int (Spark's Murmur3_x86_32.hashUnsafeBytes2)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[whole:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def term_index(term: str, num_features: int) -> int:
    """The HashingTF column of a term."""
    return murmur3_32(term.encode()) % num_features  # Python's % is already non-negative


def price_band(price: float | None, edges: np.ndarray) -> int | None:
    """The band of `price` among the catalogue's quantile edges, as the batch layer counts it."""
    if price is None or np.isnan(price):
        return None
    return int(np.sum(price >= edges))


def price_edges(prices: np.ndarray, bands: int) -> np.ndarray:
    """The catalogue's distinct price quantiles i/bands (i = 1..bands-1)."""
    known = prices[~np.isnan(prices)]
    if known.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(known, [i / bands for i in range(1, bands)]))


def item_tokens(title: str | None, category: str | None, brand: str | None, band: int | None,
                min_token_length: int) -> list[str]:
    tokens = [f"{name}={str(value).lower()}" for name, value in
              (("category", category), ("brand", brand), ("price_band", band)) if value is not None]
    words = [w for w in _WORD_SPLIT.split((title or "").lower()) if len(w) >= min_token_length]
    return tokens + words


def content_rows(tokens: Sequence[list[str]], num_features: int) -> sparse.csr_matrix:
    """L2-normalised hashed term frequencies, one row per token list (a row without tokens stays zero)."""
    indptr, indices, values = [0], [], []
    for row in tokens:
        counts = Counter(term_index(t, num_features) for t in row)
        weights = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        norm = float(np.linalg.norm(weights)) or 1.0
        indices += list(counts)
        values += (weights / norm).tolist()
        indptr.append(len(indices))
    return sparse.csr_matrix((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                              np.asarray(indptr, dtype=np.int64)), shape=(len(tokens), num_features))
