"""Attribution: which served list an event that follows belongs to, so CTR and conversion can be read per variant.

Serving remembers, per user, the list that last showed each item (`remember_lists`: one HASH,
RedisKeys.served, one script per list), for at most experiments.served_users_max users (the least recently served
are forgotten first, RedisKeys.served_index), so made-up user ids cannot fill Redis. Ingestion looks the
events' users up in one pipeline (`RedisServedMemory.lookup`) and `attribute` adds {"rec_id", "variant"}
to the context of each event on an item served to its user within experiments.attribution_window_s (last
touch: the latest list that showed the item wins). Attribution is best effort and never fails a request: a
Redis error leaves the events unattributed and the list unremembered, and is logged (throttled).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from recsys.config import ExperimentsConfig, RedisConfig
from recsys.contracts.events import Event
from recsys.contracts.redis_keys import RedisKeys, decode_served, encode_served
from recsys.contracts.served import CONTEXT_REC_ID, CONTEXT_VARIANT, ServedRecommendation
from recsys.logging_setup import LogThrottle
from recsys.redis_client import redis_client
from recsys.stores.redis_breaker import guard, redis_breaker

log = logging.getLogger(__name__)

# The operations whose Redis errors are counted (and passed to a listener).
REMEMBER = "remember"
LOOKUP = "lookup"


# KEYS: the user's served HASH, the served index. ARGV: user id, serve time, TTL, max items (0: no cap), the
# encoded value, then the item ids. Returns how many users the index holds. One script rather than a MULTI
# of seven commands: a served list is remembered on every read, and each command costs the API CPU.
REMEMBER_SCRIPT = """
local key, index = KEYS[1], KEYS[2]
local served_at, ttl, max_items = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[5]
end
redis.call('HSET', key, unpack(fields))
if max_items > 0 and redis.call('HLEN', key) > max_items then
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(fields))
end
redis.call('EXPIRE', key, ttl)
redis.call('ZADD', index, ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', index, '-inf', served_at - ttl)
redis.call('EXPIRE', index, ttl)
return redis.call('ZCARD', index)
"""


@dataclass(frozen=True)
class Attribution:
    rec_id: str
    variant: str


# {user_id: item ids of their events} -> {user_id: {item_id: Attribution}} (items without one left out)
ServedLookup = Callable[[Mapping[str, Collection[str]]], Mapping[str, Mapping[str, Attribution]]]


ServedEntry = tuple[str, str, str, Iterable[str], float]  # user id, rec_id, variant, item ids, serve time


def remember_lists(client: redis.Redis, keys: RedisKeys, lists: Sequence[ServedEntry], ttl: int, *,
                   max_items: int | None = None, max_users: int | None = None,
                   script: Script | None = None) -> None:
    """Record that each list's rec_id showed its items to its user: one script (REMEMBER_SCRIPT) per list, all in
    one pipeline and in order, so the latest list that showed an item wins.

    The key's TTL is the attribution window, renewed by every list; each value carries its serve time so
    an older item is not attributed past the window. A user with more than `max_items` remembered items
    keeps only the latest list, which bounds the HASH. More than `max_users` users with a HASH drops the oldest
    users' HASHes (at most a ZPOPMIN and a DEL more), which bounds the keys whatever ids requests make up.
    Raises redis.RedisError.
    """
    script = script or client.register_script(REMEMBER_SCRIPT)  # a kept Script: no digest per call
    index = keys.served_index()
    calls = []
    for user_id, rec_id, variant, item_ids, served_at in lists:
        items = list(dict.fromkeys(item_ids))
        if items:
            calls.append(([keys.served(user_id), index],
                          [user_id, served_at, ttl, max_items or 0, encode_served(rec_id, variant, served_at), *items]))
    if not calls:
        return
    if len(calls) == 1:
        users = script(keys=calls[0][0], args=calls[0][1])
    else:
        try:
            users = _remember_pipelined(client, script.sha, calls)
        except NoScriptError:  # Redis lost its scripts (a restart, SCRIPT FLUSH): load it and send once more
            client.script_load(REMEMBER_SCRIPT)
            users = _remember_pipelined(client, script.sha, calls)
    if max_users is not None and users > max_users:
        dropped = [member.decode() if isinstance(member, bytes) else member
                   for member, _ in client.zpopmin(index, users - max_users)]
        if dropped:
            client.delete(*(keys.served(user) for user in dropped))


def _remember_pipelined(client: redis.Redis, sha: str, calls: list[tuple[list[str], list]]) -> int:
    """EVALSHA queued as it is: redis-py's Script in a pipeline asks SCRIPT EXISTS first, a second round trip."""
    pipe = client.pipeline(transaction=False)
    for script_keys, args in calls:
        pipe.evalsha(sha, len(script_keys), *script_keys, *args)
    return max(pipe.execute())


def attribute(events: Sequence[Event], lookup: ServedLookup) -> list[Event]:
    """The events in order; each one on an item served to its user gains CONTEXT_REC_ID and CONTEXT_VARIANT
    in its context (replacing any the client sent). One lookup call for all the events' users."""
    wanted: dict[str, set[str]] = {}
    for event in events:
        wanted.setdefault(event.user_id, set()).add(event.item_id)
    served = lookup(wanted) if wanted else {}
    out = []
    for event in events:
        hit = served.get(event.user_id, {}).get(event.item_id)
        if hit is None:
            out.append(event)
        else:
            context = {**(event.context or {}), CONTEXT_REC_ID: hit.rec_id, CONTEXT_VARIANT: hit.variant}
            out.append(event.model_copy(update={"context": context}))
    return out


class RedisServedMemory:
    """The Redis side of attribution for the API: remember served lists, look events' users up.

    Both never raise: Redis errors are counted and logged at most every experiments.log_interval_s.
    Use the id the events are stored under (the pseudonym when privacy.pseudonymise is on) for both.
    """

    def __init__(self, cfg: ExperimentsConfig, redis_cfg: RedisConfig, client: redis.Redis | None = None,
                 listener: Callable[[str], None] | None = None) -> None:
        self._cfg = cfg
        self._listener = listener  # called with REMEMBER or LOOKUP on each error (e.g. a Prometheus counter)
        self._keys = RedisKeys(redis_cfg.key_prefix)
        # the online store's breaker: one outage, one fast failure
        self._client = client or guard(redis_client(redis_cfg), redis_breaker(redis_cfg))
        self._throttle = LogThrottle(cfg.log_interval_s)
        self._lock = threading.Lock()
        self._errors = 0
        self._script: Script | None = None  # registered on first use, inside remember's error handling

    @property
    def errors(self) -> int:
        """Redis errors so far in this process (for /metrics): each left a list unremembered or events unattributed."""
        return self._errors

    def remember(self, served: ServedRecommendation) -> bool:
        """Remember a served list for attribution; False when Redis failed (the request goes on)."""
        return self.remember_many([served])

    def remember_many(self, lists: Sequence[ServedRecommendation]) -> bool:
        """Remember several served lists in one round trip, in order; False when Redis failed."""
        try:
            if self._script is None:
                self._script = self._client.register_script(REMEMBER_SCRIPT)
            remember_lists(self._client, self._keys,
                           [(s.user_id, s.rec_id, s.variant, s.item_ids, s.ts.timestamp()) for s in lists],
                           self._cfg.attribution_window_s, max_items=self._cfg.served_items_max,
                           max_users=self._cfg.served_users_max, script=self._script)
            return True
        except redis.RedisError as exc:
            self._failed(REMEMBER, f"could not remember {len(lists)} served list(s)", exc, len(lists))
            return False

    def dropped(self, what: str) -> None:
        """Count a list that was never sent (the write-behind queue was full) as a remember error."""
        self._failed(REMEMBER, what, None)

    def lookup(self, wanted: Mapping[str, Collection[str]], now: float | None = None
               ) -> dict[str, dict[str, Attribution]]:
        """Every user's wanted items served within the window, in one pipeline (HMGET per user); {} on a Redis
        error, so the events go on unattributed."""
        users = [(user, list(items)) for user, items in wanted.items() if items]
        if not users:
            return {}
        try:
            pipe = self._client.pipeline(transaction=False)
            for user, items in users:
                pipe.hmget(self._keys.served(user), items)
            replies = pipe.execute()
        except redis.RedisError as exc:
            self._failed(LOOKUP, "could not look served lists up; events go on unattributed", exc)
            return {}
        oldest = (time.time() if now is None else now) - self._cfg.attribution_window_s
        found: dict[str, dict[str, Attribution]] = {}
        for (user, items), values in zip(users, replies, strict=True):
            for item, raw in zip(items, values, strict=True):
                decoded = decode_served(raw)
                if decoded is not None and decoded[2] >= oldest:
                    found.setdefault(user, {})[item] = Attribution(rec_id=decoded[0], variant=decoded[1])
        return found

    def _failed(self, operation: str, what: str, exc: redis.RedisError | None, count: int = 1) -> None:
        with self._lock:
            self._errors += count
        if self._listener is not None:
            try:
                for _ in range(count):
                    self._listener(operation)
            except Exception:  # a metrics hook must not fail the request either
                log.exception("attribution error listener failed")
        held = self._throttle.due()
        if held is not None:
            log.warning("%s%s (%d more since the last warning; %d in all)", what, "" if exc is None else f": {exc}",
                        held, self.errors)
