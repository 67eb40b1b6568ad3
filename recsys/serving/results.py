"""What serving is asked and what it answers: the request and result types of the recommender."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from recsys.config import MergeWeights


class UnknownItemError(LookupError):
    """The item is in neither the served model nor its catalogue (the API answers 404)."""


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: list[str]
    contributions: dict[str, float] | None = None  # signal -> weighted part of the score (explain=True only)


@dataclass(frozen=True)
class Recommendations:
    user_id: str | None  # None for an anonymous visitor
    model_version: str | None
    degraded: bool  # served without (some) real-time state because Redis failed
    items: list[ScoredItem] = field(default_factory=list)
    buy_again: list[ScoredItem] = field(default_factory=list)  # own items, labelled (serving.repurchase.buy_again_k)


@dataclass(frozen=True)
class ItemCard:
    """What the served model's catalogue says about an item (None: not known)."""

    item_id: str
    category: str | None
    brand: str | None
    price: float | None


@dataclass(frozen=True)
class TrendingItems:
    items: list[ScoredItem]
    degraded: bool  # Redis failed: the model's popularity instead of the live trending view


@dataclass(frozen=True)
class RecommendationQuery:
    """One request: page, business filters, exclusions and the merge weights (an A/B variant may override)."""

    k: int
    offset: int = 0
    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    exclude: frozenset[str] = frozenset()  # never returned (e.g. what the page already shows)
    explain: bool = False  # attach each item's contributions
    attributes: Mapping[str, str] | None = None  # segment attributes (age_band, ...) for a cold start
    weights: MergeWeights | None = None  # None: serving.merge
    include_unavailable: bool = False  # also items out of stock (available false); blocked items never
    reasons: bool = True  # False: ids and scores only, no reasons or contributions (offline evaluation)

    def __post_init__(self) -> None:
        if self.k < 1 or self.offset < 0:
            raise ValueError(f"k must be at least 1 and offset at least 0, got k={self.k} offset={self.offset}")
        if not isinstance(self.exclude, frozenset):
            object.__setattr__(self, "exclude", frozenset(self._ids(self.exclude)))

    def with_exclude(self, items: Iterable[str]) -> RecommendationQuery:
        """The same query that also never returns `items`."""
        return replace(self, exclude=self.exclude | frozenset(items))

    @staticmethod
    def _ids(items: Iterable[str] | str) -> Iterable[str]:
        return [items] if isinstance(items, str) else items
