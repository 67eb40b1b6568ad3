"""The Redis key layout shared by the speed layer (writer) and serving (reader).

Every key starts with the configured, versioned prefix (redis.key_prefix, e.g. "recsys:v1"), so a
layout change ships under a new prefix and old keys simply expire. Per-user keys carry a TTL
(redis.user_ttl_s) that every write refreshes. See docs/contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    def recent_items(self, user_id: str) -> str:
        """ZSET item_id -> last event time (epoch seconds); capped to redis.recent_items_max."""
        return f"{self.prefix}:user:{user_id}:recent"

    def purchased(self, user_id: str) -> str:
        """SET of item_ids the user bought; excluded from recommendations."""
        return f"{self.prefix}:user:{user_id}:purchased"

    def user_pattern(self, user_id: str) -> str:
        """Pattern matching every key of one user (for forgetting a user)."""
        return f"{self.prefix}:user:{user_id}:*"

    def stream_progress(self) -> str:
        """HASH with the stream's last applied batch id, counts and timing (operators' view of the stream)."""
        return f"{self.prefix}:stream:progress"
