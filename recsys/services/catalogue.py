"""Catalogue writes from the API: the Delta table first (the batch layer's source of truth), then the live
catalogue in Redis that every serving worker polls (recsys.stores.live_catalogue)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from recsys.contracts.catalogue import ItemAttributes, ItemPatch
from recsys.stores.attribute_store import AttributeStore, UpsertCounts
from recsys.stores.live_catalogue import LiveCatalogueStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueWrite:
    counts: UpsertCounts
    version: int | None  # the live catalogue version; None when Redis failed (served from the next model load)


class CatalogueService:
    def __init__(self, attributes: AttributeStore, live: LiveCatalogueStore) -> None:
        self._attributes = attributes
        self._live = live

    def put(self, rows: Sequence[ItemAttributes]) -> CatalogueWrite:
        """Replace whole rows."""
        counts = self._attributes.upsert_items(rows)
        return CatalogueWrite(counts, self._publish([row.model_dump() for row in rows], patch=False))

    def patch(self, rows: Sequence[ItemPatch]) -> CatalogueWrite:
        """Change only the fields each row sent."""
        counts = self._attributes.patch_items(rows)
        return CatalogueWrite(counts, self._publish([row.changes() for row in rows], patch=True))

    def _publish(self, rows: list[dict], patch: bool) -> int | None:
        try:
            return self._live.write(rows, patch)
        except redis.RedisError as exc:  # the commit stands; workers see it when they next load a model
            log.warning("catalogue change committed but not published live: %s", exc)
            return None
