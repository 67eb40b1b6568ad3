"""Pseudonymous user ids: keyed, stable, valid ids; events carry the pseudonym; off means unchanged."""

import hashlib
import hmac
import re

import pytest

from recsys.config import ConfigError, PrivacyConfig
from recsys.contracts.events import ID_PATTERN, Event
from recsys.services.privacy import MIN_KEY_BYTES, PSEUDONYM_KEY_ENV, Pseudonymizer

pytestmark = pytest.mark.unit

KEY = "k" * MIN_KEY_BYTES
ON = PrivacyConfig(pseudonymise=True, pseudonym_chars=32)


def test_pseudonym_is_truncated_hmac_sha256_and_a_valid_id():
    pseudo = Pseudonymizer.from_config(ON, {PSEUDONYM_KEY_ENV: KEY})
    expected = hmac.new(KEY.encode(), b"u000042", hashlib.sha256).hexdigest()[:32]
    assert pseudo.enabled and pseudo.user_id("u000042") == expected
    assert pseudo.user_id("u000042") == pseudo.user_id("u000042") != pseudo.user_id("u000043")
    assert re.match(ID_PATTERN, expected) and len(expected) == ON.pseudonym_chars


def test_another_key_gives_other_pseudonyms():
    one = Pseudonymizer.from_config(ON, {PSEUDONYM_KEY_ENV: KEY})
    other = Pseudonymizer.from_config(ON, {PSEUDONYM_KEY_ENV: "x" * MIN_KEY_BYTES})
    assert one.user_id("u1") != other.user_id("u1")


def test_events_get_the_pseudonym_and_keep_everything_else():
    pseudo = Pseudonymizer.from_config(ON, {PSEUDONYM_KEY_ENV: KEY})
    event = Event(user_id="u1", item_id="i1", event_type="view", session_id="s1")
    [hashed] = pseudo.events([event])
    assert hashed.user_id == pseudo.user_id("u1")
    assert hashed.model_dump(exclude={"user_id"}) == event.model_dump(exclude={"user_id"})


def test_off_is_the_identity_and_needs_no_key():
    pseudo = Pseudonymizer.from_config(PrivacyConfig(pseudonymise=False, pseudonym_chars=32), {})
    event = Event(user_id="u1", item_id="i1", event_type="view")
    assert not pseudo.enabled and pseudo.user_id("u1") == "u1" and pseudo.events([event]) == [event]


def test_on_without_a_key_or_with_a_short_key_refuses():
    with pytest.raises(ConfigError, match=PSEUDONYM_KEY_ENV):
        Pseudonymizer.from_config(ON, {})
    with pytest.raises(ConfigError, match="at least"):
        Pseudonymizer.from_config(ON, {PSEUDONYM_KEY_ENV: "short"})
