"""The demo staff `make demo` prints: a data-quality operator and a family doctor, each with a random password
and a TOTP secret.

Not for production: the credentials are printed, and `totp_code` hands out the second factor.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Environment, Settings
from cityhealth.errors import Forbidden, NotFound
from cityhealth.security import staff
from cityhealth.security.audit import Action, record
from cityhealth.security.credentials import hash_password, new_totp_secret, provisioning_uri, totp_code
from cityhealth.security.crypto import Purpose, field_cipher
from cityhealth.security.principals import Role
from cityhealth.security.sessions import end_all_staff_sessions

DEMO_USERNAME = "demo-operator"
DEMO_ROLES = frozenset({Role.DATA_QUALITY_OPERATOR})
OPERATOR_KIND = "operator"


@dataclass(frozen=True)
class DemoOperator:
    username: str
    password: str
    totp_secret: str
    totp_uri: str
    created: bool  # False: an existing demo operator whose password and second factor were reset


def _refuse_outside_development(settings: Settings, what: str) -> None:
    if settings.env is not Environment.DEVELOPMENT:
        raise Forbidden(f"{what} is for development only (CITYHEALTH_ENV=development), not {settings.env.value}",
                        code="development_only", field="env", value=settings.env.value, rule="env.development")


async def ensure_demo_operator(session: AsyncSession, clock: Clock, settings: Settings, *,
                               actor: str) -> DemoOperator:
    """Create the demo operator, or reset its password and TOTP secret: running it twice is harmless."""
    return await ensure_demo_staff(session, clock, settings, actor=actor, username=DEMO_USERNAME,
                                   display_name="演示数据质量操作员", roles=DEMO_ROLES, organization_id=None)


async def ensure_demo_staff(session: AsyncSession, clock: Clock, settings: Settings, *, actor: str, username: str,
                            display_name: str, roles: frozenset[Role], organization_id: int | None) -> DemoOperator:
    """Create a demo member of staff with a second factor (the demo operator, the demo family doctor), or reset
    the password, TOTP secret, roles and organization of the existing one."""
    _refuse_outside_development(settings, f"the demo account {username}")
    password = secrets.token_urlsafe(18)
    existing = await staff.find_staff_user(session, username, for_update=True)
    if existing is None:
        created = await staff.create_staff_user(session, clock, settings, username=username,
                                                display_name=display_name, password=password,
                                                roles=roles, organization_id=organization_id)
        if created.totp_uri is None:
            raise Forbidden(f"the demo account {username} needs a role with a second factor", field="roles",
                            value=" ".join(sorted(roles)), rule="demo.second_factor")
        secret = str(pyotp.parse_uri(created.totp_uri).secret)
        user_id, uri = created.user.id, created.totp_uri
    else:
        # Security has no reset use case yet (asked for); this does what create_staff_user does to a new user.
        now = clock.now()
        secret = new_totp_secret()
        existing.password_hash = hash_password(password)
        existing.roles = " ".join(sorted(roles))
        existing.organization_id = organization_id
        existing.totp_secret_enc = field_cipher(settings).encrypt(Purpose.STAFF_TOTP_SECRET, secret)
        existing.totp_pending_enc = None
        existing.totp_confirmed_at = existing.totp_last_step = existing.locked_until = None
        existing.failed_logins, existing.is_active, existing.updated_at = 0, True, now
        await end_all_staff_sessions(session, clock, existing.id, "reset")
        await session.flush()
        user_id, uri = existing.id, provisioning_uri(secret, username)
    record(session, clock, None, Action.CREATE if existing is None else Action.UPDATE, "staff_user",
           resource_id=user_id, detail=f"demo account {username}", actor=actor, actor_kind=OPERATOR_KIND)
    return DemoOperator(username, password, secret, uri, created=existing is None)


async def current_totp_code(session: AsyncSession, clock: Clock, settings: Settings, username: str, *,
                            actor: str) -> str:
    """The code a staff user's authenticator shows now (development only: it bypasses the second factor)."""
    _refuse_outside_development(settings, "printing TOTP codes")
    user = await staff.find_staff_user(session, username)
    if user is None or user.totp_secret_enc is None:
        raise NotFound(f"no staff user {username!r} with a second factor", field="username", value=username)
    secret = field_cipher(settings).decrypt(Purpose.STAFF_TOTP_SECRET, user.totp_secret_enc)
    record(session, clock, None, Action.READ, "staff_totp", resource_id=user.id, detail="current code printed",
           actor=actor, actor_kind=OPERATOR_KIND)
    return totp_code(secret, clock.now())
