"""Protection of personal data at rest: a keyed HMAC for lookup and AES-256-GCM for the value.

A database dump reveals neither an ID number nor a phone number; equality lookups still work through
the HMAC column. Ciphertexts carry a key id, so `cityhealth keys rotate` can re-encrypt row by row while
the platform keeps reading both generations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cityhealth.config import Settings

_VERSION = "v1"


class Purpose:
    """The `purpose` of each encrypted or indexed column, bound into every ciphertext and lookup hash.

    `cityhealth keys rotate` re-encrypts the columns listed in security/keys.py under these purposes, so a
    column's purpose never changes once data is written. The registry's two match registry/protection.py.
    """

    RESIDENT_ID_NUMBER = "resident.id_number"
    RESIDENT_PHONE = "resident.phone"
    ACCOUNT_PHONE = "resident_account.phone"
    STAFF_TOTP_SECRET = "staff_user.totp_secret"  # noqa: S105 - a column's name, not a secret
    SMS_CODE = "sms_code.code"  # a one-time code's keyed hash (bound to its challenge's token)
    SMS_PHONE = "sms_code.phone"  # the phone a registration opens its account on
    OUTBOX_PHONE = "sms_outbox.phone"
    OUTBOX_BODY = "sms_outbox.body"


@lru_cache(maxsize=8)
def _cipher(encryption_key: bytes, lookup_key: bytes, previous_keys: tuple[bytes, ...]) -> FieldCipher:
    return FieldCipher(encryption_key, lookup_key, list(previous_keys))


def field_cipher(settings: Settings) -> FieldCipher:
    """The cipher under the configured keys (built once per key set); previous keys still decrypt."""
    return _cipher(settings.secret("field_encryption_key"), settings.secret("lookup_hmac_key"),
                   tuple(settings.previous_secrets()))


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, stored with each ciphertext."""
    return hashlib.sha256(b"cityhealth-key-id" + key).hexdigest()[:8]


class FieldCipher:
    """Encrypts and indexes personal fields. `purpose` binds a ciphertext to its column (no swapping)."""

    def __init__(self, encryption_key: bytes, lookup_key: bytes, previous_keys: list[bytes] | None = None):
        self._current = AESGCM(hashlib.sha256(b"cityhealth-aead" + encryption_key).digest())
        self.current_key_id = key_id(encryption_key)
        self._keys = {self.current_key_id: self._current}
        for old in previous_keys or []:
            self._keys.setdefault(key_id(old), AESGCM(hashlib.sha256(b"cityhealth-aead" + old).digest()))
        # The HMAC with its key absorbed, copied for each value: keying it anew cost more than hashing the value.
        self._lookup = hmac.new(hashlib.sha256(b"cityhealth-lookup" + lookup_key).digest(), digestmod=hashlib.sha256)

    def lookup_hash(self, purpose: str, value: str) -> str:
        """Deterministic keyed HMAC-SHA256 of a normalised value, for equality lookup and uniqueness."""
        mac = self._lookup.copy()
        mac.update(f"{purpose}\0{value}".encode())
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def encrypt(self, purpose: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._current.encrypt(nonce, value.encode(), purpose.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self.current_key_id}.{blob}"

    def decrypt(self, purpose: str, token: str) -> str:
        try:
            version, kid, blob = token.split(".", 2)
        except ValueError as exc:
            raise ValueError("not a cityhealth ciphertext") from exc
        if version != _VERSION:
            raise ValueError(f"unknown ciphertext version {version!r}")
        cipher = self._keys.get(kid)
        if cipher is None:
            raise ValueError(f"ciphertext encrypted under unknown key {kid}; configure it as a previous key")
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        try:
            return cipher.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("ciphertext failed authentication (tampered, or wrong key/column)") from exc

    @property
    def current_prefix(self) -> str:
        """How every ciphertext under the current key begins (rotation selects the others in SQL)."""
        return f"{_VERSION}.{self.current_key_id}."
