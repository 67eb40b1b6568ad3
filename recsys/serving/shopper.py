"""The inputs of one merge, shared by the candidate sources (recsys.serving.candidates) and the merge."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Shopper:
    """The inputs of one merge: a known user, an anonymous visitor or a cold start (taste None)."""

    recent: list[str] = field(default_factory=list)  # newest first
    taste: np.ndarray | None = None  # the vector the factors signal ranks by
    interests: dict[str, float] = field(default_factory=dict)  # decayed "c:<category>" / "b:<brand>" weights
    co_views: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # recent item -> co-viewed items
    trending: list[tuple[str, float]] = field(default_factory=list)
    segment: list[str] = field(default_factory=list)  # the cold-start segment's favourites, most popular first
    history: dict[str, float] = field(default_factory=dict)  # items had before -> recency weight in (0, 1]
    owned: dict[str, float] = field(default_factory=dict)  # items owned -> when last owned (epoch seconds)
    user_id: str | None = None  # a known user's id (their batch top-N); None for a visitor
    # What the candidate sources and the merge both derive from these inputs, derived once per request
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)
