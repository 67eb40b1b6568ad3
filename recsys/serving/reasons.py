"""The human-readable reasons serving attaches to an item, one wording per signal."""

from __future__ import annotations

REASON_TASTE = "matches your taste"
REASON_POPULAR = "popular"
REASON_SEGMENT = "popular with shoppers like you"
REASON_NEW = "new, like"
REASON_SEEN = "you looked at this recently"
REASON_TRENDING = "trending"


def viewed(item: str) -> str:
    return f"because you viewed {item}"


def trending_in(category: str | None) -> str:
    return REASON_TRENDING if category is None else f"{REASON_TRENDING} in {category}"


def interest_in(name: str) -> str:
    return f"matches your interest in {name}"


def viewed_together(item: str) -> str:
    return f"viewed together with {item}"


def new_like(item: str) -> str:
    return f"{REASON_NEW} {item}"


def similar_to(item: str) -> str:
    return f"similar to {item}"


def this_session(items: list[str]) -> str:
    return f"because of this session: {', '.join(items)}"
REASON_BUY_AGAIN = "you bought this before"
