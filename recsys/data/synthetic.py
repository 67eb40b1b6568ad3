"""A reproducible synthetic shop: catalogue, users and session funnels shaped like real e-commerce logs.

Real logs are what the recommender must cope with: a few items take most of the traffic (Zipf
popularity), users return to a few favourite categories, and each session narrows from views to
clicks, carts and rarely purchases. Everything is drawn with numpy in bulk (sessions in chunks), so a
million events take seconds, and one seed always yields the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from tqdm import tqdm

from recsys.contracts.events import EVENT_TYPES, MAX_QUANTITY
from recsys.data import _vocab
from recsys.data.frames import ShopData, events_frame, items_frame, random_hex_ids, users_frame

DEFAULT_END = datetime(2025, 1, 1, tzinfo=UTC)

_VIEW, _CLICK, _CART, _REMOVE, _PURCHASE = (
    EVENT_TYPES.index(name) for name in ("view", "click", "add_to_cart", "remove_from_cart", "purchase")
)
_EVENTS_PER_CHUNK = 250_000  # bounds peak memory; one chunk of sessions is drawn at a time
_CHUNK_OVERSHOOT = 1.05  # draw a little more than the estimate so the last chunk usually suffices
_SESSION_ID_BYTES = 12
_ID_MIN_DIGITS = 6
_US_PER_S = 1_000_000
_S_PER_DAY = 86_400
_S_PER_HOUR = 3_600
_WINDOW_FILL = 0.99  # a session longer than the window is compressed to this share of it
_SLOTS_PER_VIEW = 4  # order keys per viewed item: view, click, add_to_cart (and one spare)


@dataclass(frozen=True)
class SyntheticShopSpec:
    """Size, seed and behaviour of a synthetic shop; the defaults give plausible retail rates."""

    n_users: int
    n_items: int
    n_events: int
    n_categories: int = 24
    days: float = 30.0
    seed: int = 42
    end: datetime = DEFAULT_END  # fixed by default so a seed alone reproduces the data
    # catalogue
    brands_per_category: int = 6
    popularity_exponent: float = 1.1  # Zipf exponent of item popularity
    price_sigma: float = 0.6  # log-normal spread of prices around the category's typical price
    min_price: float = 0.5
    extra_category_price_range: tuple[float, float] = (5.0, 300.0)  # categories beyond the word list
    # users
    max_interests: int = 3  # each user likes 1..max_interests categories
    interest_share: float = 0.85  # sessions spent in one of the user's interests
    activity_sigma: float = 1.0  # log-normal spread of how many sessions users have
    # sessions and funnel
    mean_views_per_session: float = 4.0
    max_views_per_session: int = 40
    p_click: float = 0.35  # per view
    p_add_to_cart: float = 0.30  # per click
    p_purchase: float = 0.50  # per cart addition
    p_remove: float = 0.20  # per cart addition that is not bought
    mean_extra_quantity: float = 0.25  # quantity is 1 + Poisson(this)
    mean_gap_s: float = 45.0  # mean time between two events of a session
    min_gap_s: float = 1.0

    def __post_init__(self) -> None:
        counts = {"n_users": self.n_users, "n_items": self.n_items, "n_categories": self.n_categories,
                  "brands_per_category": self.brands_per_category, "max_interests": self.max_interests,
                  "max_views_per_session": self.max_views_per_session}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {self.n_events}")
        for name in ("p_click", "p_add_to_cart", "p_purchase", "p_remove", "interest_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if self.days <= 0 or self.mean_views_per_session < 1 or self.min_gap_s <= 0:
            raise ValueError("days and min_gap_s must be > 0 and mean_views_per_session >= 1")
        if self.mean_gap_s < self.min_gap_s:
            raise ValueError("mean_gap_s must be >= min_gap_s")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def events_per_session(self) -> float:
        """Expected events per session, used to size the chunks of sessions."""
        per_view = 1 + self.p_click * (1 + self.p_add_to_cart * (
            1 + self.p_purchase + (1 - self.p_purchase) * self.p_remove))
        return min(self.mean_views_per_session, self.max_views_per_session) * per_view


@dataclass(frozen=True)
class _Catalogue:
    category: np.ndarray  # per item
    price: np.ndarray  # per item
    category_share: np.ndarray  # per category: share of all traffic
    sorted_items: np.ndarray  # item indexes ordered by category
    cumulative: np.ndarray  # cumulative popularity along sorted_items
    bounds: np.ndarray  # per category: [first, end) positions in sorted_items


@dataclass(frozen=True)
class _Users:
    interests: np.ndarray  # (n_users, max_interests) category indexes
    n_interests: np.ndarray
    activity: np.ndarray  # probability that a session belongs to the user


def generate_shop(spec: SyntheticShopSpec, progress: bool = False) -> ShopData:
    """Draw the catalogue, the users and exactly spec.n_events events, sorted by time."""
    rng = np.random.default_rng(spec.seed)
    catalogue, items = _draw_catalogue(spec, rng)
    users_state, users = _draw_users(spec, rng, catalogue)
    events = _draw_events(spec, rng, catalogue, users_state, items["item_id"],
                          users["user_id"], progress)
    return ShopData(events=events, items=items_frame(items), users=users_frame(users))


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(_ID_MIN_DIGITS, len(str(n - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


def _category_table(spec: SyntheticShopSpec, n_categories: int,
                    rng: np.random.Generator) -> tuple[list[str], np.ndarray, list[tuple[str, ...]]]:
    known = list(_vocab.CATEGORIES.items())[:n_categories]
    names = [name for name, _ in known]
    typical = [price for _, (price, _) in known]
    nouns = [words for _, (_, words) in known]
    n_extra = n_categories - len(known)
    low, high = np.log(spec.extra_category_price_range)
    names += [f"category_{len(known) + i + 1:02d}" for i in range(n_extra)]
    typical += list(np.exp(rng.uniform(low, high, n_extra)))
    nouns += [_vocab.GENERIC_NOUNS] * n_extra
    return names, np.asarray(typical), nouns


def _brand_names(n: int, rng: np.random.Generator) -> np.ndarray:
    combos = [p + s for p in _vocab.BRAND_PREFIXES for s in _vocab.BRAND_SUFFIXES]
    picked = [combos[i] for i in rng.permutation(len(combos))[:n]]
    picked += [f"{combos[i % len(combos)]} {i // len(combos) + 1}" for i in range(len(picked), n)]
    return np.array(picked, dtype=object)


def _draw_catalogue(spec: SyntheticShopSpec, rng: np.random.Generator) -> tuple[_Catalogue, dict]:
    n_items = spec.n_items
    n_categories = min(spec.n_categories, n_items)
    names, typical, nouns = _category_table(spec, n_categories, rng)
    # every category gets at least one item; the rest are spread uniformly
    spread = rng.integers(0, n_categories, n_items - n_categories)
    category = np.concatenate([np.arange(n_categories), spread])
    rng.shuffle(category)
    rank = rng.permutation(n_items)
    popularity = (rank + 1.0) ** -spec.popularity_exponent
    brand = category * spec.brands_per_category + rng.integers(0, spec.brands_per_category, n_items)
    brands = _brand_names(n_categories * spec.brands_per_category, rng)
    price = typical[category] * np.exp(rng.normal(0.0, spec.price_sigma, n_items))
    price = np.maximum(np.round(price, 2), spec.min_price)
    adjective = rng.integers(0, len(_vocab.ADJECTIVES), n_items)
    noun = rng.random(n_items)
    titles = [f"{brands[b]} {_vocab.ADJECTIVES[a]} {nouns[c][int(u * len(nouns[c]))]}"
              for b, a, c, u in zip(brand, adjective, category, noun, strict=True)]

    sorted_items = np.argsort(category, kind="stable")
    cumulative = np.cumsum(popularity[sorted_items])
    counts = np.bincount(category, minlength=n_categories)
    ends = np.cumsum(counts)
    category_popularity = np.bincount(category, weights=popularity, minlength=n_categories)
    catalogue = _Catalogue(category=category, price=price,
                           category_share=category_popularity / category_popularity.sum(),
                           sorted_items=sorted_items, cumulative=cumulative,
                           bounds=np.stack([ends - counts, ends], axis=1))
    items = {"item_id": _ids("i", n_items), "title": titles,
             "category": np.asarray(names, dtype=object)[category], "brand": brands[brand], "price": price,
             "updated_at": [spec.start] * n_items}
    return catalogue, items


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    labels = np.array(list(shares), dtype=object)
    weights = np.array(list(shares.values()))
    return labels[rng.choice(len(labels), n, p=weights / weights.sum())]


def _draw_users(spec: SyntheticShopSpec, rng: np.random.Generator,
                catalogue: _Catalogue) -> tuple[_Users, dict]:
    n_users, n_categories = spec.n_users, len(catalogue.category_share)
    width = min(spec.max_interests, n_categories)
    n_interests = rng.integers(1, width + 1, n_users)
    # Gumbel top-k: distinct interests per user, popular categories more likely
    noise = -np.log(-np.log(rng.random((n_users, n_categories), dtype=np.float32)))
    keys = np.log(catalogue.category_share).astype(np.float32) + noise
    interests = np.argsort(-keys, axis=1)[:, :width]
    activity = rng.lognormal(0.0, spec.activity_sigma, n_users)
    state = _Users(interests=interests, n_interests=n_interests, activity=activity / activity.sum())
    users = {"user_id": _ids("u", n_users), "age_band": _choice(rng, _vocab.AGE_BAND_SHARES, n_users),
             "gender": _choice(rng, _vocab.GENDER_SHARES, n_users),
             "location": _choice(rng, _vocab.LOCATION_SHARES, n_users), "updated_at": [spec.start] * n_users}
    return state, users


def _sample_items(rng: np.random.Generator, catalogue: _Catalogue, category: np.ndarray) -> np.ndarray:
    """Zipf-weighted draw of one item per entry, restricted to that entry's category."""
    first, end = catalogue.bounds[category, 0], catalogue.bounds[category, 1]
    low = np.where(first > 0, catalogue.cumulative[np.maximum(first - 1, 0)], 0.0)
    high = catalogue.cumulative[end - 1]
    target = low + rng.random(len(category)) * (high - low)
    position = np.searchsorted(catalogue.cumulative, target, side="right")
    return catalogue.sorted_items[np.clip(position, first, end - 1)]


def _diurnal_offsets(rng: np.random.Generator, n: int, start_s: float, window_s: float) -> np.ndarray:
    """Uniform times in the window, thinned by HOURLY_ACTIVITY (rejection sampling)."""
    activity = np.asarray(_vocab.HOURLY_ACTIVITY) / max(_vocab.HOURLY_ACTIVITY)
    hours = len(activity)
    out = np.empty(n)
    pending = np.arange(n)
    while pending.size:
        t = rng.random(pending.size) * window_s
        hour = ((start_s + t) // _S_PER_HOUR).astype(np.int64) % hours
        keep = rng.random(pending.size) < activity[hour]
        out[pending[keep]] = t[keep]
        pending = pending[~keep]
    return out


def _draw_sessions(spec: SyntheticShopSpec, rng: np.random.Generator, catalogue: _Catalogue,
                   users: _Users, n_sessions: int) -> dict[str, np.ndarray]:
    """Events of n_sessions sessions, session by session and in time order within each."""
    user = rng.choice(len(users.activity), n_sessions, p=users.activity)
    pick = (rng.random(n_sessions) * users.n_interests[user]).astype(np.int64)
    own = users.interests[user, pick]
    anywhere = np.searchsorted(np.cumsum(catalogue.category_share), rng.random(n_sessions), side="right")
    anywhere = np.minimum(anywhere, len(catalogue.category_share) - 1)
    category = np.where(rng.random(n_sessions) < spec.interest_share, own, anywhere)
    n_views = rng.geometric(1.0 / spec.mean_views_per_session, n_sessions)
    n_views = np.minimum(n_views, spec.max_views_per_session)

    view_session = np.repeat(np.arange(n_sessions), n_views)
    view_item = _sample_items(rng, catalogue, category[view_session])
    view_pos = np.arange(len(view_session)) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    clicked = rng.random(len(view_session)) < spec.p_click
    carted = clicked & (rng.random(len(view_session)) < spec.p_add_to_cart)
    bought = carted & (rng.random(len(view_session)) < spec.p_purchase)
    removed = carted & ~bought & (rng.random(len(view_session)) < spec.p_remove)
    cart_quantity = np.minimum(1 + rng.poisson(spec.mean_extra_quantity, len(view_session)), MAX_QUANTITY)

    # within a session: each view is followed by its click and cart addition; removals and then the
    # checkout (purchases) close the session
    slot = _SLOTS_PER_VIEW * view_pos
    after_views = _SLOTS_PER_VIEW * n_views[view_session]
    checkout = after_views + n_views[view_session]
    stages = ((np.ones_like(clicked), _VIEW, slot), (clicked, _CLICK, slot + 1), (carted, _CART, slot + 2),
              (removed, _REMOVE, after_views + view_pos), (bought, _PURCHASE, checkout + view_pos))
    rows = np.concatenate([np.flatnonzero(mask) for mask, _, _ in stages])
    step = np.concatenate([np.full(int(mask.sum()), code) for mask, code, _ in stages])
    order_in_session = np.concatenate([key[mask] for mask, _, key in stages])
    session = view_session[rows]
    order = np.lexsort((order_in_session, session))
    rows, step, session = rows[order], step[order], session[order]
    quantity = np.where(np.isin(step, (_CART, _REMOVE, _PURCHASE)), cart_quantity[rows], 1)

    gaps = spec.min_gap_s + rng.exponential(spec.mean_gap_s - spec.min_gap_s, len(rows))
    before = np.cumsum(gaps) - gaps
    first = np.searchsorted(session, np.arange(n_sessions))
    last = np.searchsorted(session, np.arange(n_sessions), side="right") - 1
    offset = before - before[first][session]
    duration = offset[last]
    window_s = spec.days * _S_PER_DAY
    fit = np.minimum(1.0, window_s * _WINDOW_FILL / np.maximum(duration, spec.min_gap_s))
    offset, duration = offset * fit[session], duration * fit
    begin = _diurnal_offsets(rng, n_sessions, spec.start.timestamp(), window_s)
    begin = np.clip(begin, 0.0, np.maximum(window_s - duration - spec.min_gap_s, 0.0))
    return {"user": user[session], "item": view_item[rows], "step": step, "quantity": quantity,
            "session": session, "offset_us": np.round((begin[session] + offset) * _US_PER_S).astype(np.int64)}


def _draw_events(spec: SyntheticShopSpec, rng: np.random.Generator, catalogue: _Catalogue, users: _Users,
                 item_ids: np.ndarray, user_ids: np.ndarray, progress: bool) -> pd.DataFrame:
    per_session = spec.events_per_session()
    chunks: list[dict[str, np.ndarray]] = []
    n_drawn, n_sessions = 0, 0
    with tqdm(total=spec.n_events, unit="event", desc="synthetic events", disable=not progress) as bar:
        while n_drawn < spec.n_events:
            remaining = spec.n_events - n_drawn
            size = max(1, min(math.ceil(remaining / per_session * _CHUNK_OVERSHOOT),
                              math.ceil(_EVENTS_PER_CHUNK / per_session)))
            chunk = _draw_sessions(spec, rng, catalogue, users, size)
            chunk["session"] = chunk["session"] + n_sessions
            n_sessions += size
            chunks.append(chunk)
            n_drawn += len(chunk["step"])
            bar.update(min(len(chunk["step"]), remaining))
    n = spec.n_events
    columns = {key: np.concatenate([c[key] for c in chunks])[:n] if chunks else np.empty(0, np.int64)
               for key in ("user", "item", "step", "quantity", "session", "offset_us")}
    session_ids = "s" + random_hex_ids(rng, n_sessions, _SESSION_ID_BYTES)
    start_us = round(spec.start.timestamp() * _US_PER_S)
    return events_frame({
        "event_id": random_hex_ids(rng, n),
        "user_id": user_ids[columns["user"]],
        "item_id": item_ids[columns["item"]],
        "event_type": np.asarray(EVENT_TYPES, dtype=object)[columns["step"]],
        "ts": pd.to_datetime(start_us + columns["offset_us"], unit="us", utc=True),
        "session_id": session_ids[columns["session"]],
        "quantity": columns["quantity"],
        "price": catalogue.price[columns["item"]],
    })
