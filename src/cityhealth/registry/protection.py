"""The FieldCipher protecting residents' ID and phone numbers, for services, the API and the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cityhealth.config import Settings
from cityhealth.context import SettingsDep
from cityhealth.security.crypto import FieldCipher, Purpose, field_cipher

# The purposes bind each ciphertext and lookup hash to its column; `cityhealth keys rotate` uses the same.
ID_NUMBER = Purpose.RESIDENT_ID_NUMBER
PHONE = Purpose.RESIDENT_PHONE


def cipher_for(settings: Settings) -> FieldCipher:
    """The cipher under the configured keys (built once per key set; previous keys still decrypt)."""
    return field_cipher(settings)


async def get_cipher(settings: SettingsDep) -> FieldCipher:
    return cipher_for(settings)


CipherDep = Annotated[FieldCipher, Depends(get_cipher)]
