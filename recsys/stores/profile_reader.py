"""The one way to read users' real-time state from Redis: recent items and the profile, in one pipeline.

The speed layer's writer (before it applies a chunk), serving (per request) and the user-data endpoints all
read through `read_profiles`; the key layout and the profile's encoding are recsys.contracts.redis_keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from recsys.contracts.redis_keys import RedisKeys, decode_profile


@dataclass(frozen=True)
class StoredProfile:
    """One user's keys as stored: recent items with their times, the profile's fields and vector bytes."""

    recent: list[tuple[str, float | None]] = field(default_factory=list)  # (item_id, epoch s or None), newest first
    fields: dict = field(default_factory=dict)  # the PROFILE_* fields
    vector: bytes | None = None  # the folded-in vector (recsys.contracts.redis_keys.decode_vector)
    erased_at: float | None = None  # when the user was last erased (the deny-list), None if never


def read_profiles(client: redis.Redis, keys: RedisKeys, user_ids: Sequence[str],
                  recent_limit: int, times: bool = True) -> dict[str, StoredProfile]:
    """Each user's newest `recent_limit` recent items (all when 0), profile and erasure time, in one round trip.

    Without `times` the recent items come without their times (None), a smaller reply for serving.
    Raises redis.RedisError when Redis cannot be read."""
    pipe = client.pipeline(transaction=False)
    queue_profile_reads(pipe, keys, user_ids, recent_limit, times)
    return parse_profiles(pipe.execute(), user_ids, times)


def queue_profile_reads(pipe: redis.client.Pipeline, keys: RedisKeys, user_ids: Sequence[str],
                        recent_limit: int, times: bool = True) -> None:
    """Queue read_profiles' commands on a pipeline of the caller's (which may read more in the same trip)."""
    for user in user_ids:
        pipe.zrevrange(keys.recent_items(user), 0, recent_limit - 1, withscores=times)
        pipe.get(keys.profile(user))
        pipe.hget(keys.erased_users(), user)


def parse_profiles(replies: Sequence, user_ids: Sequence[str], times: bool = True) -> dict[str, StoredProfile]:
    """The replies of queue_profile_reads (the first 3 per user) -> each user's StoredProfile."""
    out = {}
    for n, user in enumerate(user_ids):
        recent, raw, erased_at = replies[3 * n: 3 * n + 3]
        fields, vector = decode_profile(raw)
        items = [(_text(item), float(ts)) for item, ts in recent] if times else [(_text(item), None) for item in recent]
        out[user] = StoredProfile(items, fields, vector, None if erased_at is None else float(erased_at))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
