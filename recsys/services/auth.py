"""API keys: which keys open which scopes, open mode, and checking a presented key in constant time.

Every guarded endpoint belongs to one scope (read, ingest, catalogue, user_data, admin). auth.scopes names,
per scope, the environment variable holding its keys (comma-separated, so a key can be rotated by listing
the old and the new one for a while); a key opens the scopes whose variables list it, and nothing else. The
keys come from the environment, never from conf/.

Outside open mode a scope without keys is closed to everyone. Open mode (no key needed where a scope has
none) needs both the explicit opt-in auth.open and a loopback serving.host, and is announced loudly at
start-up; a deployment that binds to anything else refuses to start open.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from recsys.config import AuthConfig, ConfigError

# RECSYS_API_KEYS used to open every guarded endpoint; it is refused so a deployment that still sets it
# does not silently change meaning (docs/operations.md#the-api).
LEGACY_KEYS_ENV = "RECSYS_API_KEYS"
LOOPBACK_NAMES = frozenset({"localhost"})

API_KEY_HEADER = "X-API-Key"
AUTHORIZATION_HEADER = "Authorization"
BEARER_SCHEME = "bearer"

MODE_OPEN = "open"  # no scope needs a key
MODE_KEYS = "keys"  # every scope needs a key
MODE_PARTIAL = "partial"  # open mode, but some scopes have keys (and need them)


class Scope(StrEnum):
    """What a key may do; each guarded endpoint names one (api/blueprints)."""

    READ = "read"  # recommendations, similar, trending, items, status, the demo page's data
    INGEST = "ingest"  # POST /v1/events
    CATALOGUE = "catalogue"  # PUT /v1/items
    USER_DATA = "user_data"  # PUT /v1/users, GET /v1/users/<id>/history, DELETE /v1/users/<id>
    ADMIN = "admin"  # POST /v1/admin/models/<version>/activate


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


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: an address other machines cannot reach."""
    if host.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class KeyRing:
    """The keys of one scope."""

    keys: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
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
    """The key ring of each scope for one process, and whether it runs in open mode."""

    env: str
    rings: Mapping[Scope, KeyRing]
    open_mode: bool = False

    def is_open(self, scope: Scope) -> bool:
        """No key needed: open mode and no keys for the scope."""
        return self.open_mode and self.rings[scope].empty

    def allows(self, scope: Scope, presented: str | None) -> bool:
        return self.is_open(scope) or self.rings[scope].accepts(presented)

    def scopes_of(self, presented: str | None) -> list[Scope]:
        """The scopes `presented` opens (to tell a wrong key from a key of another scope)."""
        return [scope for scope in Scope if self.rings[scope].accepts(presented)]

    @property
    def mode(self) -> str:
        """`open`, `keys` or `partial` (reported by /readyz and logged at start)."""
        open_scopes = [scope for scope in Scope if self.is_open(scope)]
        if len(open_scopes) == len(Scope):
            return MODE_OPEN
        return MODE_KEYS if not open_scopes else MODE_PARTIAL


def load_policy(env: str, cfg: AuthConfig, host: str, environ: Mapping[str, str]) -> AccessPolicy:
    """Read each scope's keys from the environment; raise ConfigError when the API must not start this way:
    the legacy RECSYS_API_KEYS is set, open mode on a non-loopback host, or no key at all outside open mode."""
    if environ.get(LEGACY_KEYS_ENV, "").strip():
        raise ConfigError(
            f"{LEGACY_KEYS_ENV} is no longer read (it opened every endpoint): list each key in the variables of "
            f"the scopes it may open ({_variables(cfg)})")
    rings = {scope: KeyRing(parse_keys(environ.get(getattr(cfg.scopes, scope.value)))) for scope in Scope}
    if cfg.open and not is_loopback(host):
        raise ConfigError(
            f"auth.open is set but serving.host is {host!r}: open mode (no API keys) only binds to loopback "
            f"(127.0.0.1, ::1). Set keys and auth.open: false to listen on other addresses.")
    if not cfg.open and all(ring.empty for ring in rings.values()):
        raise ConfigError(
            f"no API keys are set in environment '{env}': the API refuses to start. Set the keys of each scope "
            f"({_variables(cfg)}), comma-separated; or, "
            f"on a development machine only, opt in to open mode with auth.open: true (RECSYS__AUTH__OPEN=true) "
            f"and a loopback serving.host.")
    return AccessPolicy(env=env, rings=rings, open_mode=cfg.open)


def _variables(cfg: AuthConfig) -> str:
    return ", ".join(f"{scope}: {variable}" for scope, variable in cfg.scopes.model_dump().items())


def open_mode_banner(policy: AccessPolicy, host: str, port: int) -> str:
    """What start-up says, loudly, when any scope runs without keys."""
    open_scopes = ", ".join(scope.value for scope in Scope if policy.is_open(scope))
    return (f"\n{'!' * 78}\n!! OPEN MODE (auth.open, env={policy.env}): NO API KEY is checked for: {open_scopes}.\n"
            f"!! Anyone who can reach {host}:{port} may read, post events, change the catalogue, delete shoppers\n"
            f"!! and activate models. Bound to loopback only; never run like this where others can connect.\n"
            f"{'!' * 78}")
