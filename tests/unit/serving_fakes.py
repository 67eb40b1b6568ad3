"""An in-memory OnlineStore for serving unit tests: fixed state, optional outage, counted round trips."""

from __future__ import annotations

import numpy as np
import redis

from recsys.stores.attribute_arrays import ItemCatalogue
from recsys.stores.model_store import FactorModel
from recsys.stores.online_store import ItemSignals, RealtimeState


class DownRedis:
    """A redis client whose every command (pipeline, script, ...) fails as an unreachable Redis does."""

    def __getattr__(self, name):
        def down(*args, **kwargs):
            raise redis.ConnectionError("down")

        return down


class FakeOnline:
    def __init__(self, recent=(), purchased=(), down=False, vector=None, interests=None, co_views=None,
                 trending=None, cart=(), signals_down=False, version="v1", erased_at=None):
        self.recent, self.bought, self.down, self.vector = list(recent), set(purchased), down, vector
        self.interests, self.cart = dict(interests or {}), list(cart)
        self.co_view_lists = dict(co_views or {})
        self.trending_list = list(trending or [])
        self.signals_down, self.version = signals_down, version
        self.erased_at = erased_at  # the deny-list entry of every user asked about
        self.calls: list[str] = []

    def _check(self, name: str, down: bool) -> None:
        self.calls.append(name)
        if down:
            raise redis.ConnectionError("down")

    def user_state(self, user_id, model_version, rank, recent_limit, half_life_s):
        self._check("user_state", self.down)
        vector = self.vector if model_version == self.version else None
        return RealtimeState(recent=self.recent[:recent_limit], purchased=frozenset(self.bought), cart=self.cart,
                             interests=self.interests, vector=None if vector is None else np.asarray(vector),
                             erased_at=self.erased_at)

    def item_signals(self, item_ids, co_view_k, trending_k):
        self._check("item_signals", self.down or self.signals_down)
        return ItemSignals({i: self.co_view_lists.get(i, [])[:co_view_k] for i in item_ids},
                           self.trending_list[:trending_k])

    def request_state(self, user_id, model_version, rank, recent_limit, half_life_s, co_view_sources, co_view_k,
                      trending_k):
        """One round trip in production (a Lua script); here the two reads it replaces, each failing alike."""
        state = self.user_state(user_id, model_version, rank, recent_limit, half_life_s)
        sources = state.recent[:co_view_sources]
        if not sources and trending_k == 0:
            return state, ItemSignals()
        return state, self.item_signals(sources, co_view_k, trending_k)

    def trending(self, k):
        self._check("trending", self.down)
        return self.trending_list[:k]

    def recent_items(self, user_id, limit):
        self._check("recent_items", self.down)
        return self.recent[:limit]

    def purchased(self, user_id):
        self._check("purchased", self.down)
        return self.bought

    def user_vector(self, user_id, model_version, rank):
        self._check("user_vector", self.down)
        return self.vector if model_version == self.version else None

    def ping(self):
        return not self.down


def shop_model(**overrides) -> FactorModel:
    """Eight items in three categories plus one of which the catalogue knows nothing; factors: shoes along
    the first axis, bags along the second, hats in between; "u1" likes shoes."""
    ids = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "x1"]
    factors = np.array([[1, 0], [0.9, 0.1], [0.8, 0], [0, 1], [0.1, 0.9], [0, 0.8], [0.5, 0.5], [0.45, 0.5],
                        [0.3, 0.3]], dtype=np.float32)
    catalogue = ItemCatalogue.from_rows({
        "a1": ("shoes", "acme", 10.0), "a2": ("shoes", "acme", 20.0), "a3": ("shoes", "acme", 30.0),
        "b1": ("bags", "bolt", 40.0), "b2": ("bags", "bolt", 50.0), "b3": ("bags", "bolt", None),
        "c1": ("hats", "acme", 5.0), "c2": ("hats", "cap-co", 15.0), "x1": (None, None, None),
    })
    fields = dict(version="v1", user_ids={"u1": 0}, user_factors=np.array([[1, 0]], dtype=np.float32),
                  item_ids=ids, item_factors=factors,
                  popularity=np.array([5, 4, 3, 30, 20, 10, 2, 1, 1], dtype=np.float32), catalogue=catalogue)
    return FactorModel(**{**fields, **overrides})
