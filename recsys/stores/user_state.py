"""One user's whole real-time state in Redis, to show it or to forget it: an interface and its Redis
implementation. Recommendation reads stay in RedisOnlineStore; this store serves the user-data endpoints
(GET /v1/users/<id>/history, DELETE /v1/users/<id>).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import redis

from recsys.config import RedisConfig
from recsys.contracts.catalogue import check_id
from recsys.contracts.redis_keys import RedisKeys
from recsys.redis_client import redis_client
from recsys.stores.profile_reader import read_profiles


@dataclass(frozen=True)
class StoredUserState:
    """What the speed layer keeps for one user: recent items and the decoded profile."""

    recent: list[tuple[str, float]] = field(default_factory=list)  # (item_id, epoch seconds), newest first
    profile: dict = field(default_factory=dict)  # the PROFILE_* fields (recsys.contracts.redis_keys)
    has_vector: bool = False  # a folded-in vector is stored (its bytes are not user-readable)


class UserStateStore(Protocol):
    def state(self, user_id: str) -> StoredUserState: ...

    def forget(self, user_id: str, erased_at: float) -> int: ...


class RedisUserStateStore:
    """Reads and deletes the per-user keys of the contract (RedisKeys.user_keys) and nothing else.

    Deleting by RedisKeys.user_pattern would be wrong: ids may contain ':', so the pattern of user `a`
    also matches the keys of user `a:b`.
    """

    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None) -> None:
        self._keys = RedisKeys(cfg.key_prefix)
        self._client = client or redis_client(cfg)

    def state(self, user_id: str) -> StoredUserState:
        """Both keys in one round trip; raises redis.RedisError when Redis cannot be read."""
        check_id(user_id)
        stored = read_profiles(self._client, self._keys, [user_id], 0)[user_id]
        return StoredUserState(recent=stored.recent, profile=stored.fields, has_vector=stored.vector is not None)

    def forget(self, user_id: str, erased_at: float) -> int:
        """Deny-list the user as of erased_at (epoch seconds), delete every per-user key and the user's entry in
        the served index, in one transaction (the stream's chunks WATCH the deny-list, so none writes the user
        back from events ingested before); returns how many keys existed."""
        check_id(user_id)
        with self._client.pipeline(transaction=True) as tx:
            tx.hset(self._keys.erased_users(), user_id, repr(float(erased_at)))
            tx.delete(*self._keys.user_keys(user_id))
            tx.zrem(self._keys.served_index(), user_id)
            return int(tx.execute()[1])


