"""API keys: parsing, where a request sends its key, constant-time matching, scopes, and who may run open."""

import pytest

from recsys.config import ConfigError, load_settings
from recsys.services import auth
from recsys.services.auth import (
    MODE_KEYS,
    MODE_OPEN,
    MODE_PARTIAL,
    KeyRing,
    Scope,
    is_loopback,
    load_policy,
    open_mode_banner,
    presented_key,
)

pytestmark = pytest.mark.unit


def test_keys_are_comma_separated_and_blanks_dropped():
    assert auth.parse_keys(" k1, k2 ,,") == ("k1", "k2")
    assert auth.parse_keys("") == () and auth.parse_keys(None) == ()


@pytest.mark.parametrize(("headers", "key"), [
    ({"X-API-Key": "secret"}, "secret"),
    ({"Authorization": "Bearer secret"}, "secret"),
    ({"Authorization": "bearer  secret "}, "secret"),
    ({"X-API-Key": "a", "Authorization": "Bearer b"}, "a"),
    ({"Authorization": "Basic c2VjcmV0"}, None),
    ({"Authorization": "Bearer "}, None),
    ({"X-API-Key": "  "}, None),
    ({}, None),
])
def test_presented_key_from_either_header(headers, key):
    assert presented_key(headers) == key


def test_key_ring_accepts_only_its_keys(monkeypatch):
    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append(b) or real(a, b))
    ring = KeyRing(("old", "new"))
    assert ring.accepts("new") and ring.accepts("old")
    compared.clear()
    assert ring.accepts("old")
    assert compared == [b"old", b"new"]  # no early exit: every key is compared, in constant time
    assert not ring.accepts("nope") and not ring.accepts(None) and not ring.accepts("")
    assert not ring.empty and KeyRing().empty


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("[::1]", True),
                                                ("localhost", True), ("0.0.0.0", False), ("192.168.1.2", False),
                                                ("", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


AUTH = load_settings("test").auth
CLOSED = AUTH.model_copy(update={"open": False})
KEYS = {"RECSYS_READ_KEYS": "shop1,shop2", "RECSYS_INGEST_KEYS": "ing", "RECSYS_CATALOGUE_KEYS": "cat",
        "RECSYS_USER_DATA_KEYS": "crm", "RECSYS_ADMIN_KEYS": "ops,shop2"}


def test_every_scope_has_its_variable_in_config():
    assert set(AUTH.scopes.model_dump()) == {scope.value for scope in Scope}


def test_open_mode_needs_the_opt_in_and_a_loopback_host():
    for host in ("127.0.0.1", "127.0.0.9", "::1", "localhost"):
        policy = load_policy("local", AUTH, host, {})
        assert policy.mode == MODE_OPEN and all(policy.allows(scope, None) for scope in Scope)
    for host in ("0.0.0.0", "::", "10.1.2.3", "api.example.com"):
        with pytest.raises(ConfigError, match="loopback"):
            load_policy("local", AUTH, host, {})
    with pytest.raises(ConfigError, match="no API keys"):  # without the opt-in, no keys is no start
        load_policy("local", CLOSED, "127.0.0.1", {})


def test_without_the_opt_in_a_scope_without_keys_is_closed():
    policy = load_policy("cluster", CLOSED, "0.0.0.0", {"RECSYS_READ_KEYS": "shop"})
    assert policy.mode == MODE_KEYS
    assert policy.allows(Scope.READ, "shop")
    for scope in (Scope.INGEST, Scope.CATALOGUE, Scope.USER_DATA, Scope.ADMIN):
        assert not policy.is_open(scope) and not policy.allows(scope, None) and not policy.allows(scope, "shop")


def test_a_key_opens_only_the_scopes_listing_it():
    policy = load_policy("cluster", CLOSED, "0.0.0.0", KEYS)
    assert policy.scopes_of("shop1") == [Scope.READ]
    assert policy.scopes_of("shop2") == [Scope.READ, Scope.ADMIN]
    assert policy.scopes_of("crm") == [Scope.USER_DATA] and policy.scopes_of("nope") == []
    assert policy.allows(Scope.ADMIN, "ops") and not policy.allows(Scope.ADMIN, "shop1")
    assert not policy.allows(Scope.USER_DATA, "shop1") and not policy.allows(Scope.CATALOGUE, "ing")


def test_the_legacy_all_powerful_variable_is_refused():
    with pytest.raises(ConfigError, match="RECSYS_API_KEYS"):
        load_policy("cluster", CLOSED, "0.0.0.0", {**KEYS, "RECSYS_API_KEYS": "k"})


def test_keys_in_open_mode_guard_their_scopes_only():
    policy = load_policy("local", AUTH, "127.0.0.1", {"RECSYS_INGEST_KEYS": "i1"})
    assert policy.mode == MODE_PARTIAL
    assert policy.allows(Scope.READ, None) and not policy.allows(Scope.INGEST, None)
    assert "ingest" not in open_mode_banner(policy, "127.0.0.1", 8000).split("checked for:")[1].split(".")[0]
