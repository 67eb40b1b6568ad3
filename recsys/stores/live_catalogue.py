"""The live catalogue and the live item vectors in Redis: what reaches every serving worker in seconds.

The API writes a catalogue change here after its Delta commit (the table stays the source of truth the
batch layer reads); a Lua script raises the catalogue version, stores the item's whole row and records
which version changed it, in one step, so a worker that read version v has seen every change up to v.
Workers poll the version (one GET per serving.catalogue_poll_s) and read only the changes above theirs.
The speed layer writes item vectors it folds in for items the batch model lacks (recsys.speed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import redis

from recsys.contracts.redis_keys import RedisKeys, decode_vector

# KEYS: version, items, changes. ARGV: "put" or "patch", then JSON rows. A patch's fields are laid over the
# stored row (an item not stored yet starts empty); a put replaces it. Returns the new version.
_WRITE = """
local version = redis.call('INCR', KEYS[1])
local mode = ARGV[1]
for i = 2, #ARGV do
  local row = cjson.decode(ARGV[i])
  local id = row['item_id']
  if mode == 'patch' then
    local stored = redis.call('HGET', KEYS[2], id)
    if stored then
      local merged = cjson.decode(stored)
      for k, v in pairs(row) do merged[k] = v end
      row = merged
    end
  end
  redis.call('HSET', KEYS[2], id, cjson.encode(row))
  redis.call('ZADD', KEYS[3], version, id)
end
return version
"""


@dataclass(frozen=True)
class CatalogueChanges:
    """The rows changed above a version: item_id -> row (the ItemAttributes fields as JSON gives them)."""

    version: int
    rows: dict[str, dict]


class LiveCatalogueStore:
    """Catalogue changes and live item vectors over a Redis client (bytes replies)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._keys = RedisKeys(prefix)
        self._write = client.register_script(_WRITE)

    def write(self, rows: Sequence[Mapping], patch: bool) -> int:
        """Store the rows (whole rows, or the fields of a patch) under one new version; returns it."""
        keys = [self._keys.catalogue_version(), self._keys.catalogue_items(), self._keys.catalogue_changes()]
        args = ["patch" if patch else "put", *(json.dumps(dict(row), separators=(",", ":")) for row in rows)]
        return int(self._write(keys=keys, args=args))

    def version(self) -> int:
        return int(self._client.get(self._keys.catalogue_version()) or 0)

    def versions(self, model_version: str | None) -> tuple[int, int]:
        """(catalogue version, live item writes of `model_version`) in one round trip: what a worker polls."""
        keys = [self._keys.catalogue_version()]
        if model_version is not None:
            keys.append(self._keys.live_item_count(model_version))
        values = self._client.mget(keys)
        return int(values[0] or 0), int(values[1] or 0) if len(values) > 1 else 0

    def changes_since(self, version: int) -> CatalogueChanges:
        """The rows whose latest change is above `version`, and the highest version among them."""
        scored = self._client.zrangebyscore(self._keys.catalogue_changes(), f"({version}", "+inf", withscores=True)
        if not scored:
            return CatalogueChanges(version, {})
        ids = [item.decode() if isinstance(item, bytes) else item for item, _ in scored]
        rows = self._client.hmget(self._keys.catalogue_items(), ids)
        out = {item: json.loads(raw) for item, raw in zip(ids, rows, strict=True) if raw is not None}
        return CatalogueChanges(int(max(score for _, score in scored)), out)

    def listed(self, item_ids: Sequence[str]) -> set[str]:
        """Those of `item_ids` the live catalogue holds."""
        if not item_ids:
            return set()
        rows = self._client.hmget(self._keys.catalogue_items(), list(item_ids))
        return {item for item, raw in zip(item_ids, rows, strict=True) if raw is not None}

    def item_vectors(self, model_version: str, rank: int) -> dict[str, np.ndarray]:
        """The live item vectors folded in against `model_version` (those of another rank are skipped)."""
        stored = self._client.hgetall(self._keys.live_item_vectors(model_version))
        out = {}
        for item, raw in stored.items():
            vector = decode_vector(raw, rank)
            if vector is not None:
                out[item.decode() if isinstance(item, bytes) else item] = vector
        return out
