"""Secrets people hold: argon2id password hashes and TOTP (RFC 6238) second factors."""

from __future__ import annotations

import hmac
from datetime import datetime
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cityhealth.errors import ValidationFailed

TOTP_ISSUER = "cityhealth"
# One step either side tolerates a phone clock 30 s off without widening the window further.
TOTP_VALID_STEPS = 1
MIN_STAFF_PASSWORD_CHARS = 12
MIN_RESIDENT_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256  # argon2 hashes anything, but a megabyte "password" is an attack on the CPU


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches; a malformed stored hash never matches."""
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("cityhealth: no such account")


def burn_password_check(password: str) -> None:
    """Spend the time a real check would, so an unknown username answers as slowly as a known one."""
    verify_password(_dummy_hash(), password)


def check_password_policy(password: str, *, minimum: int) -> None:
    """Refuse a password too short or too long. The value itself never appears in the error."""
    if len(password) < minimum:
        raise ValidationFailed(f"password: at least {minimum} characters are required",
                               field="password", rule="password.min_length")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationFailed(f"password: at most {MAX_PASSWORD_CHARS} characters are accepted",
                               field="password", rule="password.max_length")


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) to enrol."""
    uri: str = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)
    return uri


def totp_code(secret: str, moment: datetime) -> str:
    """The code valid at `moment` (tests and the simulator use it; people use their phones)."""
    code: str = pyotp.TOTP(secret).at(moment)
    return code


def matching_totp_step(secret: str, code: str, moment: datetime, *, last_step: int | None) -> int | None:
    """The time step `code` belongs to (within ±1 step of `moment`), or None.

    A step at or before `last_step` is refused: a code, once used, is never accepted again.
    """
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current: int = totp.timecode(moment)
    for offset in range(-TOTP_VALID_STEPS, TOTP_VALID_STEPS + 1):
        step = current + offset
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
