"""The Redis key layout shared by the speed layer (writer) and serving (reader).

Every key starts with the configured, versioned prefix (redis.key_prefix, e.g. "recsys:v1"), so a
layout change ships under a new prefix and old keys simply expire. Per-user keys carry a TTL
(redis.user_ttl_s) that every write refreshes. See docs/contracts.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# The speed layer's streaming queries (their names key their progress HASH and checkpoints).
REALTIME_QUERY = "events_to_redis"
BRONZE_QUERY = "events_to_bronze"

# The per-user profile is one STRING (one key, one GET): a 2-byte little-endian length, that many bytes of
# the folded-in vector (float16 little-endian; 0 bytes when there is none), then compact UTF-8 JSON with
# the fields below. One value keeps a user's state small: a HASH holding a 128-byte vector leaves
# Redis's compact listpack encoding and costs several times more memory.
PROFILE_MODEL = "mv"  # model version the vector was computed against (serving ignores other versions)
PROFILE_EVENTS = "n"  # events applied to this user by the speed layer (exactly once per event)
PROFILE_INTERESTS = "i"  # {"c:<category>" | "b:<brand>": weight at PROFILE_INTERESTS_TS}
PROFILE_INTERESTS_TS = "it"  # epoch seconds the interest weights refer to (decay them to now)
PROFILE_SESSIONS = "s"  # [[first_ts, seconds, events], ...], latest first (stream.max_sessions)
PROFILE_SESSION_ID = "sid"  # the latest session's id when events carry one
PROFILE_PURCHASED = "p"  # items bought, oldest first (the latest stream.purchased_max); excluded from lists
PROFILE_CART = "c"  # items in the cart (added, not removed or bought since), oldest first
PROFILE_EVENT_IDS = "e"  # digests of the latest stream.dedupe_ids event_ids applied: a retry of one is skipped

# Interest keys in PROFILE_INTERESTS: "<kind>:<name>", the kind one letter.
INTEREST_CATEGORY = "c"
INTEREST_BRAND = "b"
INTEREST_KINDS = {INTEREST_CATEGORY: "category", INTEREST_BRAND: "brand"}


def interest_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def split_interest(key: str) -> tuple[str, str]:
    """(kind letter, name) of an interest key."""
    kind, _, name = key.partition(":")
    return kind, name


def decay(weight: float, elapsed_s: float, half_life_s: float) -> float:
    """Interests decay exponentially: weights are stored as of PROFILE_INTERESTS_TS and multiplied by
    2^(-elapsed / half-life) whenever they are read or updated."""
    return weight * 2.0 ** (-max(elapsed_s, 0.0) / half_life_s)


def current_interests(profile: Mapping[str, Any], now: float, half_life_s: float) -> dict[str, float]:
    """Interest weights decayed to `now` (what serving reads)."""
    weights, ref = profile.get(PROFILE_INTERESTS), profile.get(PROFILE_INTERESTS_TS)
    if not weights or ref is None:
        return {}
    factor = decay(1.0, now - float(ref), half_life_s)
    return {key: weight * factor for key, weight in weights.items()}


def encode_vector(x: np.ndarray) -> bytes:
    """float16, little-endian: 2 bytes per factor keeps a rank-64 vector at 128 bytes in Redis."""
    return np.asarray(x, dtype="<f2").tobytes()


def decode_vector(raw: bytes | None, rank: int) -> np.ndarray | None:
    if not raw or len(raw) != 2 * rank:
        return None
    return np.frombuffer(raw, dtype="<f2").astype(np.float64)


def encode_profile(fields: dict, vector: bytes | None) -> bytes:
    vector = vector or b""
    return len(vector).to_bytes(2, "little") + vector + json.dumps(fields, separators=(",", ":")).encode()


def decode_profile(raw: bytes | None) -> tuple[dict, bytes | None]:
    """(fields, vector bytes or None); an absent key is an empty profile."""
    if not raw:
        return {}, None
    size = int.from_bytes(raw[:2], "little")
    return json.loads(raw[2 + size:] or b"{}"), (raw[2:2 + size] or None)


def event_id_digest(event_id: str) -> str:
    """8 hex characters of an event id: what the profile keeps per id (PROFILE_EVENT_IDS) and a pending entry
    carries (a uuid would cost 4 times the bytes; a collision among one user's latest ids is about one in 10^8)."""
    return hashlib.blake2b(event_id.encode(), digest_size=4).hexdigest()


# --- Read your own writes: the per-user pending list (written by POST /v1/events, read by serving) ---------
# One entry per acknowledged event, compact JSON with these fields. The stream never reads it: an entry stops
# counting once the user's profile holds its id digest (PROFILE_EVENT_IDS) or the stream's offset watermark of
# its partition (RedisKeys.stream_offset, set in the same transaction as the state) reaches its offset.
PENDING_ID = "e"  # event_id_digest(event_id)
PENDING_ITEM = "i"
PENDING_TYPE = "t"
PENDING_TS = "ts"  # event time, epoch seconds
PENDING_QUANTITY = "q"
PENDING_TOPIC = "k"  # Kafka topic, partition and offset the broker acknowledged
PENDING_PARTITION = "p"
PENDING_OFFSET = "o"


def encode_pending(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def decode_pending(raw: bytes | str) -> dict[str, Any] | None:
    """An entry's fields, or None for an unreadable one (it is skipped, and expires with the list)."""
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


# A value of the per-user served HASH: "<rec_id>|<variant>|<served_at whole epoch seconds>" (ids never hold "|").
SERVED_SEP = "|"


def encode_served(rec_id: str, variant: str, served_at: float) -> str:
    return SERVED_SEP.join((rec_id, variant, str(int(served_at))))


def decode_served(raw: bytes | str | None) -> tuple[str, str, int] | None:
    """(rec_id, variant, served_at), or None for an absent or unreadable value."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    parts = (text or "").split(SERVED_SEP)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    def recent_items(self, user_id: str) -> str:
        """ZSET item_id -> last event time (epoch seconds); capped to redis.recent_items_max."""
        return f"{self.prefix}:user:{user_id}:recent"

    def profile(self, user_id: str) -> str:
        """STRING: the folded-in vector and the PROFILE_* fields, purchases and cart included
        (encode_profile / decode_profile)."""
        return f"{self.prefix}:user:{user_id}:profile"

    def served(self, user_id: str) -> str:
        """HASH item_id -> encode_served(rec_id, variant, served_at) of the latest list that showed the item;
        written by serving, TTL experiments.attribution_window_s (recsys.services.attribution)."""
        return f"{self.prefix}:user:{user_id}:served"

    def served_index(self) -> str:
        """ZSET user_id -> when a list was last served to them: the users holding a `served` HASH, so their
        number stays under experiments.served_users_max (the oldest are dropped); TTL the attribution window."""
        return f"{self.prefix}:served:index"

    def pending(self, user_id: str) -> str:
        """LIST of encode_pending entries, newest first: events Kafka acknowledged that the stream may not have
        applied yet; capped to redis.pending_max, TTL redis.pending_ttl_s (refreshed by every write)."""
        return f"{self.prefix}:user:{user_id}:pending"

    def user_keys(self, user_id: str) -> list[str]:
        """Every per-user key (the speed layer's, serving's attribution key and the pending list): what
        forgetting a user deletes."""
        return [self.recent_items(user_id), self.profile(user_id), self.served(user_id), self.pending(user_id)]

    def user_pattern(self, user_id: str) -> str:
        """Pattern matching every key of one user."""
        return f"{self.prefix}:user:{user_id}:*"

    def trending_bucket(self, bucket: int) -> str:
        """ZSET item_id -> weighted event count in time bucket `bucket` (epoch // stream.trending_bucket_s)."""
        return f"{self.prefix}:trending:bucket:{bucket}"

    def trending(self) -> str:
        """ZSET item_id -> exponentially decayed count over the recent buckets (rebuilt by the stream)."""
        return f"{self.prefix}:trending:view"

    def co_views(self, item_id: str) -> str:
        """ZSET other item_id -> how often shoppers viewed both close together; capped, with a TTL."""
        return f"{self.prefix}:item:{item_id}:coviews"

    def applied_marker(self, query_id: str, batch_id: int | str, records: str) -> str:
        """STRING set in the same transaction as one chunk's adjustments: a replay finds it and skips.
        `records` names the chunk's events: `<topic>/<partition>/<first offset>-<last offset>` for Kafka records,
        else `task<Spark partition>/<chunk number>`."""
        return f"{self.prefix}:applied:{query_id}:{batch_id}:{records}"

    def stream_offset(self, query: str, topic: str, partition: int) -> str:
        """STRING, no TTL: the highest Kafka offset of (topic, partition) whose event `query` applied, set in
        the same transaction as the state. Any replay (an expired marker, a new checkpoint and query id, a
        restart from earliest) skips offsets at or below it."""
        return f"{self.prefix}:stream:{query}:offset:{topic}:{partition}"

    def erased_users(self) -> str:
        """HASH user_id -> erased_at (epoch seconds), no TTL: the deny-list of forgotten users. The stream
        drops their events ingested (Kafka timestamp) at or before it; serving ignores their batch factors
        from models trained before it."""
        return f"{self.prefix}:erased"

    def catalogue_version(self) -> str:
        """STRING, no TTL: a counter raised by every catalogue change (PUT/PATCH /v1/items); workers poll it
        every serving.catalogue_poll_s and read only the changes above the version they hold."""
        return f"{self.prefix}:catalogue:version"

    def catalogue_items(self) -> str:
        """HASH item_id -> the item's whole row as JSON (the ItemAttributes fields), no TTL: the live
        catalogue serving overlays on the one loaded with the model."""
        return f"{self.prefix}:catalogue:items"

    def catalogue_changes(self) -> str:
        """ZSET item_id -> catalogue_version of the item's latest change, no TTL."""
        return f"{self.prefix}:catalogue:changes"

    def live_item_vectors(self, model_version: str) -> str:
        """HASH item_id -> float16 vector (encode_vector) folded in by the speed layer for an item the batch
        model `model_version` has no factors for; TTL stream.live_items_ttl_s. A new version's key starts
        empty: its batch factors supersede these."""
        return f"{self.prefix}:items:live:{model_version}"

    def live_item_count(self, model_version: str) -> str:
        """STRING: raised with every write of live_item_vectors(model_version): workers re-read the HASH
        only when it moved; same TTL."""
        return f"{self.prefix}:items:live:{model_version}:n"

    def stream_progress(self, query: str) -> str:
        """HASH with a query's last batch id, counts, freshness lag and Kafka lag (operators' view)."""
        return f"{self.prefix}:stream:{query}:progress"
