"""The FieldCipher protecting residents' ID and phone numbers, for services and the CLI (the API's dependency
is in registry/api.py, so that code outside a request does not import the web framework)."""

from __future__ import annotations

from cityhealth.config import Settings
from cityhealth.security.crypto import FieldCipher, Purpose, field_cipher

# The purposes bind each ciphertext and lookup hash to its column; `cityhealth keys rotate` uses the same.
ID_NUMBER = Purpose.RESIDENT_ID_NUMBER
PHONE = Purpose.RESIDENT_PHONE


def cipher_for(settings: Settings) -> FieldCipher:
    """The cipher under the configured keys (built once per key set; previous keys still decrypt)."""
    return field_cipher(settings)

