"""API keys: parsing, where a request sends its key, constant-time matching, and who may run open."""

import pytest

from recsys.config import ConfigError
from recsys.services import auth
from recsys.services.auth import MODE_KEYS, MODE_OPEN, MODE_PARTIAL, KeyRing, Scope, load_policy, presented_key

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
    assert not ring.open and KeyRing().open


def test_no_keys_runs_open_in_local_and_test_only():
    for env in ("local", "test"):
        policy = load_policy(env, {})
        assert policy.mode == MODE_OPEN and policy.allows(Scope.API, None) and policy.allows(Scope.INGEST, None)
    with pytest.raises(ConfigError, match=r"RECSYS_API_KEYS.*cluster"):
        load_policy("cluster", {})
    with pytest.raises(ConfigError):  # ingest keys alone do not protect the other endpoints
        load_policy("cluster", {"RECSYS_INGEST_KEYS": "i1"})


def test_api_keys_open_everything_and_ingest_keys_only_ingest():
    policy = load_policy("cluster", {"RECSYS_API_KEYS": "a1,a2", "RECSYS_INGEST_KEYS": "i1"})
    assert policy.mode == MODE_KEYS
    assert policy.allows(Scope.API, "a2") and policy.allows(Scope.INGEST, "a1")
    assert policy.allows(Scope.INGEST, "i1") and not policy.allows(Scope.API, "i1")
    assert not policy.allows(Scope.API, None) and not policy.allows(Scope.INGEST, "wrong")


def test_api_keys_alone_also_guard_ingest():
    policy = load_policy("cluster", {"RECSYS_API_KEYS": "a1"})
    assert not policy.is_open(Scope.INGEST) and policy.allows(Scope.INGEST, "a1")


def test_only_ingest_keys_in_an_open_env_is_partial():
    policy = load_policy("local", {"RECSYS_INGEST_KEYS": "i1"})
    assert policy.mode == MODE_PARTIAL
    assert policy.allows(Scope.API, None) and not policy.allows(Scope.INGEST, None)
