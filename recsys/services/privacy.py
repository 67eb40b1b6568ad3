"""Pseudonymous user ids: a keyed hash replaces a shopper's id before anything is stored under it.

With `privacy.pseudonymise` on, the API replaces `user_id` in every event it sends to Kafka by
`HMAC-SHA256(key, user_id)` (hex, cut to `privacy.pseudonym_chars`), and hashes the user id of every
lookup the same way, so the speed layer's Redis state, bronze and the batch factors only ever hold the
pseudonym while clients keep using their own ids. The key comes from `RECSYS_PSEUDONYM_KEY`; without the
key a pseudonym cannot be linked back to the shopper (nor recomputed: keep the key, or every shopper
starts afresh).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from recsys.config import ConfigError, PrivacyConfig
from recsys.contracts.catalogue import UserAttributes
from recsys.contracts.events import Event

PSEUDONYM_KEY_ENV = "RECSYS_PSEUDONYM_KEY"
# Shortest key accepted (bytes of UTF-8): HMAC-SHA256 is only as strong as its key, and a short key
# would let anyone holding the data re-identify ids by guessing keys.
MIN_KEY_BYTES = 32


class Pseudonymizer:
    """Maps a user id to its pseudonym; the identity when pseudonymisation is off."""

    def __init__(self, key: bytes | None, chars: int) -> None:
        if key is not None and len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"{PSEUDONYM_KEY_ENV} must be at least {MIN_KEY_BYTES} bytes long")
        self._key = key
        self._chars = chars

    @classmethod
    def disabled(cls) -> Pseudonymizer:
        return cls(None, 0)

    @classmethod
    def from_config(cls, cfg: PrivacyConfig, environ: Mapping[str, str]) -> Pseudonymizer:
        """Off unless `privacy.pseudonymise`; then the key must be set (ConfigError otherwise)."""
        if not cfg.pseudonymise:
            return cls.disabled()
        key = environ.get(PSEUDONYM_KEY_ENV, "")
        if not key:
            raise ConfigError(f"privacy.pseudonymise is on but {PSEUDONYM_KEY_ENV} is not set")
        return cls(key.encode(), cfg.pseudonym_chars)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def user_id(self, user_id: str) -> str:
        """The id stored for `user_id`: lower-case hex (a valid id under the event contract's id rule)."""
        if self._key is None:
            return user_id
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[: self._chars]

    def user_rows(self, rows: Sequence[UserAttributes]) -> list[UserAttributes]:
        """User attribute rows (PUT /v1/users) with their user ids replaced by the pseudonyms."""
        if self._key is None:
            return list(rows)
        return [row.model_copy(update={"user_id": self.user_id(row.user_id)}) for row in rows]

    def events(self, events: Sequence[Event]) -> list[Event]:
        """The events with their user ids replaced by the pseudonyms (unchanged when off)."""
        if self._key is None:
            return list(events)
        return [event.model_copy(update={"user_id": self.user_id(event.user_id)}) for event in events]
