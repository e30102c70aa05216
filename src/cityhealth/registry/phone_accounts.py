"""The resident app's accounts by phone: a one-time SMS code to sign in or to register, for real-name residents.

The registry owns this because both steps need the master index: registration is the real-name check (the
ID number and the name must match an active resident, as /api/auth/residents/register checks them), and a
sign-in opens only an account whose resident is still active. The account itself, its session and the rule
that one phone backs at most three accounts stay security's (security/residents.py, create_account); the
code and the outbox are security/sms.py's.

A phone can back up to three accounts (a parent registering the children): a sign-in on such a phone lists
them, names masked, and the resident picks one with the same verified challenge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.identifiers import mask_phone
from cityhealth.registry.lookups import parse_id_number
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER, cipher_for
from cityhealth.security import residents, sms
from cityhealth.security.audit import Action, Outcome, record
from cityhealth.security.models import ResidentAccount, SmsCode
from cityhealth.security.principals import Principal, PrincipalKind
from cityhealth.security.sms import CodePurpose, CodeRefusal

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_ACTOR = "resident-app:phone"
NO_ACCOUNT = "no_account"
REAL_NAME_MISMATCH = "real_name_mismatch"


def checked_phone(value: str) -> str:
    """A mainland mobile number (11 digits, 13…–19…), or 422 naming only its masked form."""
    phone = value.strip()
    if not _MOBILE.fullmatch(phone):
        raise ValidationFailed(f"phone: {mask_phone(phone)} is not a mainland mobile number (11 digits, 13-19…)",
                               field="phone", value=mask_phone(phone), rule="phone.mobile")
    return phone


def mask_name(name: str) -> str:
    """张三丰 → 张**."""
    return name[:1] + "*" * (len(name) - 1)


@dataclass(frozen=True)
class AccountChoice:
    account_id: int
    masked_name: str


@dataclass(frozen=True)
class PhoneSignIn:
    """A code sign-in's outcome: the session opened, the accounts to choose from, or the refusal."""

    principal: Principal | None = None
    choices: tuple[AccountChoice, ...] = ()
    refusal: str | None = None  # a CodeRefusal value, or NO_ACCOUNT


async def request_code(session: AsyncSession, clock: Clock, settings: Settings, *, phone: str,
                       purpose: CodePurpose) -> str:
    """Send a code to `phone` (the challenge's token back). A sign-in code goes only to a phone that backs an
    account; the answer is the same either way, so the form cannot tell which phones are registered."""
    phone = checked_phone(phone)
    deliver, resident_ids = True, list[int]()
    if purpose is CodePurpose.SIGN_IN:
        accounts = await residents.accounts_of_phone(session, sms.phone_hash(settings, phone))
        deliver, resident_ids = bool(accounts), [account.resident_id for account in accounts]
    token = await sms.send_code(session, clock, settings, phone=phone, purpose=purpose, deliver=deliver)
    # Each resident the phone backs sees in their log that a sign-in code went to it.
    record(session, clock, None, Action.CREATE, "sms_code", resident_ids=resident_ids or [None], actor=_ACTOR,
           actor_kind=PrincipalKind.RESIDENT.value,
           detail=f"{purpose.value} code {'sent' if deliver else 'not sent: no account on the phone'}")
    return token


async def _real_name_accounts(session: AsyncSession, phone_hash: str) -> list[tuple[ResidentAccount, Resident]]:
    found = []
    for account in await residents.accounts_of_phone(session, phone_hash):
        resident = await repository.get_resident(session, account.resident_id)
        if account.is_active and resident is not None and resident.is_active:
            found.append((account, resident))
    return found


def _refused(session: AsyncSession, clock: Clock, reason: str, resident_ids: list[int | None]) -> PhoneSignIn:
    record(session, clock, None, Action.LOGIN, "resident_session", outcome=Outcome.DENIED,
           detail=f"sms_code: {reason}", resident_ids=resident_ids or [None], actor=_ACTOR,
           actor_kind=PrincipalKind.RESIDENT.value)
    return PhoneSignIn(refusal=reason)


async def _open(session: AsyncSession, clock: Clock, account: ResidentAccount, challenge_use: SmsCode,
                source_address: str | None) -> PhoneSignIn:
    result = await residents.login_with_code(session, clock, account, source_address)
    if result.principal is None:
        return PhoneSignIn(refusal=NO_ACCOUNT)
    sms.use(challenge_use, clock)
    return PhoneSignIn(principal=result.principal)


async def sign_in_with_code(session: AsyncSession, clock: Clock, settings: Settings, *, token: str, code: str,
                            source_address: str | None) -> PhoneSignIn:
    """Check the code (a wrong one counts; the caller commits even a refusal), then open the phone's one
    account, or list its accounts (names masked, the listing audited) to choose from."""
    check = await sms.check_code(session, clock, settings, token=token, code=code, purpose=CodePurpose.SIGN_IN)
    if check.challenge is None:
        assert check.refusal is not None  # noqa: S101 - a check without a challenge has its refusal
        return _refused(session, clock, check.refusal.value, [])
    accounts = await _real_name_accounts(session, check.challenge.phone_hash)
    if not accounts:
        return _refused(session, clock, NO_ACCOUNT, [])
    if len(accounts) == 1:
        return await _open(session, clock, accounts[0][0], check.challenge, source_address)
    record(session, clock, None, Action.LIST, "resident_account", detail="sms_code: choose an account",
           resident_ids=[resident.id for _, resident in accounts], actor=_ACTOR,
           actor_kind=PrincipalKind.RESIDENT.value)
    return PhoneSignIn(choices=tuple(AccountChoice(account.id, mask_name(resident.name))
                                     for account, resident in accounts))


async def choose_account(session: AsyncSession, clock: Clock, *, token: str, account_id: int,
                         source_address: str | None) -> PhoneSignIn:
    """Open the chosen account of a verified challenge's phone; any other account is refused alike."""
    challenge = await sms.verified_challenge(session, clock, token=token, purpose=CodePurpose.SIGN_IN)
    if challenge is None:
        return _refused(session, clock, CodeRefusal.EXPIRED.value, [])
    for account, _ in await _real_name_accounts(session, challenge.phone_hash):
        if account.id == account_id:
            return await _open(session, clock, account, challenge, source_address)
    return _refused(session, clock, NO_ACCOUNT, [])


async def check_registration_code(session: AsyncSession, clock: Clock, settings: Settings, *, token: str,
                                  code: str) -> CodeRefusal | None:
    """The registration's first step, committed on its own: a wrong code counts even if the rest fails."""
    check = await sms.check_code(session, clock, settings, token=token, code=code, purpose=CodePurpose.REGISTER)
    if check.refusal is not None:
        _refused(session, clock, check.refusal.value, [])
    return check.refusal


async def register_with_code(session: AsyncSession, clock: Clock, settings: Settings, *, token: str,
                             id_number: str, name: str, password: str, source_address: str | None) -> PhoneSignIn:
    """Open a real-name account on the verified phone and sign it in; 409 from security for a resident with an
    account already or a 4th account on the phone (the caller rolls back, the challenge stays verified)."""
    challenge = await sms.verified_challenge(session, clock, token=token, purpose=CodePurpose.REGISTER)
    if challenge is None:
        return _refused(session, clock, CodeRefusal.EXPIRED.value, [])
    number = parse_id_number(id_number.strip(), clock).number
    resident = await repository.resident_by_id_number_hash(session, cipher_for(settings).lookup_hash(ID_NUMBER, number))
    if resident is None or not resident.is_active or resident.name != name.strip():
        # Audited against the resident the ID number names: they see the attempt in their log.
        record(session, clock, None, Action.CREATE, "resident_account", outcome=Outcome.DENIED,
               resident_ids=[None if resident is None else resident.id], detail=REAL_NAME_MISMATCH, actor=_ACTOR,
               actor_kind=PrincipalKind.RESIDENT.value)
        return PhoneSignIn(refusal=REAL_NAME_MISMATCH)
    phone = sms.challenge_phone(settings, challenge)
    account = await residents.create_account(session, clock, settings, resident_id=resident.id, phone=phone,
                                             password=password)
    return await _open(session, clock, account, challenge, source_address)
