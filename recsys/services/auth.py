"""API keys: which keys open which endpoints, and checking a presented key in constant time.

Keys come from the environment, never from conf/: `RECSYS_API_KEYS` opens the shopper, catalogue, admin
and delete endpoints (and ingest), `RECSYS_INGEST_KEYS` opens only `POST /v1/events`. Both are
comma-separated lists, so a key can be rotated by listing the old and the new one for a while.
Without `RECSYS_API_KEYS` only the environments in `OPEN_ENVS` may run, and then open.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from recsys.config import ConfigError

API_KEYS_ENV = "RECSYS_API_KEYS"
INGEST_KEYS_ENV = "RECSYS_INGEST_KEYS"
# Environments that may run without keys (development and the test suite). Deliberately not a
# configuration key: a deployment must not be able to switch authentication off from conf/.
OPEN_ENVS: frozenset[str] = frozenset({"local", "test"})

API_KEY_HEADER = "X-API-Key"
AUTHORIZATION_HEADER = "Authorization"
BEARER_SCHEME = "bearer"

MODE_OPEN = "open"  # no scope needs a key
MODE_KEYS = "keys"  # every scope needs a key
MODE_PARTIAL = "partial"  # some scopes need a key (only ingest keys set, in an open environment)


class Scope(StrEnum):
    """Which key list guards an endpoint."""

    API = "api"  # shoppers' recommendations and data, catalogue, admin, delete
    INGEST = "ingest"  # POST /v1/events


def parse_keys(raw: str | None) -> tuple[str, ...]:
    """`"k1, k2,,"` -> `("k1", "k2")`: comma-separated, blanks dropped."""
    return tuple(key.strip() for key in (raw or "").split(",") if key.strip())


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request sends: `X-API-Key: <key>` or `Authorization: Bearer <key>`; None when neither."""
    key = (headers.get(API_KEY_HEADER) or "").strip()
    if key:
        return key
    scheme, _, token = (headers.get(AUTHORIZATION_HEADER) or "").strip().partition(" ")
    if scheme.lower() == BEARER_SCHEME and token.strip():
        return token.strip()
    return None


@dataclass(frozen=True)
class KeyRing:
    """The keys of one scope; empty means the scope is open."""

    keys: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return not self.keys

    def accepts(self, presented: str | None) -> bool:
        """True when `presented` is one of the keys; compares with every key in constant time."""
        if presented is None:
            return False
        candidate = presented.encode()
        matched = False
        for key in self.keys:  # no early exit: the time does not tell which key (or how many) matched
            matched |= hmac.compare_digest(candidate, key.encode())
        return matched


@dataclass(frozen=True)
class AccessPolicy:
    """The key ring of each scope for one process."""

    env: str
    rings: Mapping[Scope, KeyRing]

    def is_open(self, scope: Scope) -> bool:
        return self.rings[scope].open

    def allows(self, scope: Scope, presented: str | None) -> bool:
        ring = self.rings[scope]
        return ring.open or ring.accepts(presented)

    @property
    def mode(self) -> str:
        """`open`, `keys` or `partial` (reported by /readyz and logged at start)."""
        open_scopes = [scope for scope in Scope if self.is_open(scope)]
        if len(open_scopes) == len(Scope):
            return MODE_OPEN
        return MODE_KEYS if not open_scopes else MODE_PARTIAL


def load_policy(env: str, environ: Mapping[str, str]) -> AccessPolicy:
    """Read the keys from the environment; raise ConfigError when `env` must not run without them."""
    api_keys = parse_keys(environ.get(API_KEYS_ENV))
    ingest_keys = parse_keys(environ.get(INGEST_KEYS_ENV))
    if not api_keys and env not in OPEN_ENVS:
        raise ConfigError(
            f"{API_KEYS_ENV} is not set: the API refuses to start without API keys in environment '{env}' "
            f"(only {', '.join(sorted(OPEN_ENVS))} may run open). Set {API_KEYS_ENV} (and optionally "
            f"{INGEST_KEYS_ENV} for POST /v1/events) to comma-separated keys.")
    # An API key opens ingest too, so a deployment with API keys never leaves ingest open.
    rings = {Scope.API: KeyRing(api_keys), Scope.INGEST: KeyRing(ingest_keys + api_keys)}
    return AccessPolicy(env=env, rings=rings)
