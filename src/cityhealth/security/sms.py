"""One-time SMS codes and the SMS outbox (the resident app's sign-in and registration).

A code is six random digits, kept only as a keyed HMAC bound to its challenge's random token (the browser
carries the token between the steps; the table keeps only the token's digest). A code lives `CODE_TTL`,
takes `MAX_ATTEMPTS` wrong tries before it is burnt, is used once, and one phone gets a new code at most
every `RESEND_AFTER`. The text sent is queued in the outbox, encrypted, and its body is erased once a
gateway (or, outside production, the development sink) has taken it or the code has lapsed.

How fast codes can be asked for per phone and per address is the authentication limiter's business (the
caller counts each request there, security/endpoints.py); this module keeps the per-challenge rules.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Environment, Settings
from cityhealth.errors import Forbidden, TooManyRequests
from cityhealth.security import repository
from cityhealth.security.crypto import Purpose, field_cipher
from cityhealth.security.models import SmsCode, SmsMessage

CODE_TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
CODE_DIGITS = 6
DEV_SINK = "dev-sink"
TEXT = "【卫生信息平台】验证码 {code}，{minutes} 分钟内有效，用于{what}。请勿告诉他人。"
WHAT = {"sign_in": "登录居民服务", "register": "注册居民账户"}


class CodePurpose(StrEnum):
    SIGN_IN = "sign_in"
    REGISTER = "register"


class CodeRefusal(StrEnum):
    UNKNOWN = "unknown"  # no such challenge, or one for another purpose
    EXPIRED = "expired"
    USED = "used"
    WRONG = "wrong"
    TOO_MANY = "too_many"  # MAX_ATTEMPTS wrong codes: the challenge is burnt


@dataclass(frozen=True)
class CodeCheck:
    challenge: SmsCode | None  # the verified challenge, or None with the refusal
    refusal: CodeRefusal | None = None


def phone_hash(settings: Settings, phone: str) -> str:
    """The phone's keyed hash, as the resident accounts index it (so a challenge finds its accounts)."""
    return field_cipher(settings).lookup_hash(Purpose.ACCOUNT_PHONE, phone)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _code_hash(settings: Settings, token: str, code: str) -> str:
    return field_cipher(settings).lookup_hash(Purpose.SMS_CODE, f"{token}:{code}")


async def send_code(session: AsyncSession, clock: Clock, settings: Settings, *, phone: str, purpose: CodePurpose,
                    deliver: bool) -> str:
    """Open a challenge for `phone` and queue its code in the outbox (when `deliver`); the challenge's token.

    `deliver` is False for a sign-in on a phone that backs no account: the challenge exists (the answer and
    the timing are those of any other phone) but no text goes out, so no code can ever match it.
    429 while the phone's last code is younger than RESEND_AFTER.
    """
    now = clock.now()
    hashed_phone = phone_hash(settings, phone)
    last = await repository.last_sms_code_at(session, hashed_phone)
    if last is not None and now - last < RESEND_AFTER:
        wait_s = int((RESEND_AFTER - (now - last)).total_seconds()) + 1
        error = TooManyRequests(f"a code was sent to this phone less than {int(RESEND_AFTER.total_seconds())} s "
                                f"ago; retry after {wait_s} s", code="sms_resend_too_soon", field="phone",
                                rule="sms.resend_interval")
        error.headers = {"Retry-After": str(wait_s)}  # type: ignore[attr-defined]  # read by the handler
        raise error
    token = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    cipher = field_cipher(settings)
    session.add(SmsCode(token_hash=_token_hash(token), phone_hash=hashed_phone, purpose=purpose.value,
                        phone_enc=cipher.encrypt(Purpose.SMS_PHONE, phone),
                        code_hash=_code_hash(settings, token, code), attempts=0, created_at=now,
                        expires_at=now + CODE_TTL))
    if deliver:
        text = TEXT.format(code=code, minutes=int(CODE_TTL.total_seconds() // 60), what=WHAT[purpose.value])
        session.add(SmsMessage(phone_enc=cipher.encrypt(Purpose.OUTBOX_PHONE, phone),
                               body_enc=cipher.encrypt(Purpose.OUTBOX_BODY, text), created_at=now,
                               expires_at=now + CODE_TTL))
    await session.flush()
    return token


async def check_code(session: AsyncSession, clock: Clock, settings: Settings, *, token: str, code: str,
                     purpose: CodePurpose) -> CodeCheck:
    """Check `code` against its challenge, counting a wrong one (the caller commits either way)."""
    now = clock.now()
    challenge = await repository.sms_code(session, _token_hash(token), for_update=True)
    if challenge is None or challenge.purpose != purpose.value:
        return CodeCheck(None, CodeRefusal.UNKNOWN)
    if challenge.used_at is not None:
        return CodeCheck(None, CodeRefusal.USED)
    if challenge.expires_at <= now:
        return CodeCheck(None, CodeRefusal.EXPIRED)
    if challenge.attempts >= MAX_ATTEMPTS:
        return CodeCheck(None, CodeRefusal.TOO_MANY)
    if not hmac.compare_digest(_code_hash(settings, token, code.strip()), challenge.code_hash):
        challenge.attempts += 1
        await session.flush()
        return CodeCheck(None, CodeRefusal.TOO_MANY if challenge.attempts >= MAX_ATTEMPTS else CodeRefusal.WRONG)
    if challenge.verified_at is None:
        challenge.verified_at = now
        await session.flush()
    return CodeCheck(challenge)


async def verified_challenge(session: AsyncSession, clock: Clock, *, token: str,
                             purpose: CodePurpose) -> SmsCode | None:
    """A challenge whose code was checked, not yet used and still live (the account-choice step), else None."""
    challenge = await repository.sms_code(session, _token_hash(token), for_update=True)
    if (challenge is None or challenge.purpose != purpose.value or challenge.verified_at is None
            or challenge.used_at is not None or challenge.expires_at <= clock.now()):
        return None
    return challenge


def challenge_phone(settings: Settings, challenge: SmsCode) -> str:
    """The phone a verified challenge proved (a registration opens its account on it)."""
    return field_cipher(settings).decrypt(Purpose.SMS_PHONE, challenge.phone_enc)


def use(challenge: SmsCode, clock: Clock) -> None:
    """Spend the challenge: its code opens nothing more."""
    challenge.used_at = clock.now()


@dataclass(frozen=True)
class Delivered:
    phone: str  # masked
    text: str
    created_at: str


def _mask(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) >= 8 else "*" * len(phone)


async def deliver_to_dev_sink(session: AsyncSession, clock: Clock, settings: Settings, *,
                              limit: int = 20) -> list[Delivered]:
    """Take the waiting texts as a gateway would (marked delivered, bodies erased) and return them to show.

    Refused in production: there the texts go to the SMS gateway only, never to a screen.
    """
    if settings.env is Environment.PRODUCTION:
        raise Forbidden("the development SMS sink is disabled in production", code="dev_sink_disabled",
                        field="env", value=settings.env.value, rule="sms.dev_sink")
    now = clock.now()
    await repository.erase_lapsed_sms(session, now)
    cipher = field_cipher(settings)
    shown = []
    for message in await repository.undelivered_sms(session, limit):
        assert message.body_enc is not None  # noqa: S101 - selected so
        shown.append(Delivered(_mask(cipher.decrypt(Purpose.OUTBOX_PHONE, message.phone_enc)),
                               cipher.decrypt(Purpose.OUTBOX_BODY, message.body_enc),
                               message.created_at.isoformat(timespec="seconds")))
        message.body_enc, message.delivered_at, message.delivered_by = None, now, DEV_SINK
    await session.flush()
    return shown
