"""Liveness of the callers behind access tokens: staff and resident sessions, machine-client revocation.

An access token lives at most 300 s, but a logout, an idle session or a revoked client must stop working
sooner. Every request therefore checks the token's session (staff, residents) or client (machines):
sessions are read on every request and written only when `last_seen_at` is stale by a minute, so a busy
user does not turn every read into a write; client state is cached in memory for at most
CLIENT_STATE_CACHE_S, which bounds how long a revoked client keeps working.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Unauthenticated
from cityhealth.security import repository
from cityhealth.security.audit import Action, record
from cityhealth.security.models import ResidentSession, StaffSession
from cityhealth.security.principals import Principal, PrincipalKind

# Issue 3: revocation of a client takes effect within 60 s. Half that leaves room for a slow request.
CLIENT_STATE_CACHE_S = 30
# `last_seen_at` is rewritten at most this often (and at least ten times per idle timeout).
SESSION_TOUCH_S = 60


@dataclass
class ClientStateCache:
    """client_id -> (is usable, when checked). One per app; each worker process has its own."""

    entries: dict[str, tuple[bool, datetime]] = field(default_factory=dict)
    # client_id -> the database check under way: concurrent requests of a client whose state is not cached
    # (at a release moment, or when the entry expires) wait for one check instead of each opening its own.
    checking: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def get(self, client_id: str, now: datetime) -> bool | None:
        entry = self.entries.get(client_id)
        if entry is None or (now - entry[1]).total_seconds() >= CLIENT_STATE_CACHE_S or now < entry[1]:
            return None
        return entry[0]

    def put(self, client_id: str, usable: bool, now: datetime) -> None:
        self.entries[client_id] = (usable, now)

    def forget(self, client_id: str) -> None:
        self.entries.pop(client_id, None)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def subject_id(principal: Principal) -> str:
    """The id part of a subject such as `staff:12` or `client:his-gulou`."""
    return principal.subject.split(":", 1)[1] if ":" in principal.subject else ""


async def open_staff_session(session: AsyncSession, clock: Clock, user_id: int,
                             source_address: str | None) -> StaffSession:
    now = clock.now()
    row = StaffSession(id=new_session_id(), staff_user_id=user_id, created_at=now, last_seen_at=now,
                       source_address=source_address)
    session.add(row)
    await session.flush()
    return row


async def open_resident_session(session: AsyncSession, clock: Clock, account_id: int,
                                source_address: str | None) -> ResidentSession:
    now = clock.now()
    row = ResidentSession(id=new_session_id(), resident_account_id=account_id, created_at=now,
                          last_seen_at=now, source_address=source_address)
    session.add(row)
    await session.flush()
    return row


async def end_session(session: AsyncSession, clock: Clock, principal: Principal, reason: str) -> bool:
    """End the session behind `principal`'s token; False when it had already ended."""
    model = StaffSession if principal.kind is PrincipalKind.STAFF else ResidentSession
    if principal.session_id is None or principal.kind is PrincipalKind.CLIENT:
        return False
    return await repository.end_live_session(session, model, principal.session_id, now=clock.now(), reason=reason)


async def end_all_staff_sessions(session: AsyncSession, clock: Clock, user_id: int, reason: str) -> None:
    await repository.end_live_staff_sessions(session, user_id, now=clock.now(), reason=reason)


def _idle_check(row: StaffSession | ResidentSession | None, owner_id: int | None, now: datetime,
                idle_timeout_s: int) -> StaffSession | ResidentSession:
    owner = None if row is None else (
        row.staff_user_id if isinstance(row, StaffSession) else row.resident_account_id)
    if row is None or owner != owner_id or row.ended_at is not None:
        raise Unauthenticated("the session behind this token has ended; log in again", code="session_ended")
    if now - row.last_seen_at > timedelta(seconds=idle_timeout_s):
        raise Unauthenticated("the session expired after inactivity; log in again", code="session_expired")
    return row


def _touch(row: StaffSession | ResidentSession, now: datetime, idle_timeout_s: int) -> None:
    if (now - row.last_seen_at).total_seconds() >= min(SESSION_TOUCH_S, idle_timeout_s / 10):
        row.last_seen_at = now


def client_live_from_cache(principal: Principal, clients: ClientStateCache, now: datetime) -> bool:
    """True when the cache alone shows a machine client usable; refuses one it shows revoked.

    False means the database must decide (`ensure_live`): a staff or resident token, or a client whose
    state is not cached (or is older than CLIENT_STATE_CACHE_S). Saves a transaction per request for the
    busiest callers, the apps and hospital systems.
    """
    if principal.kind is not PrincipalKind.CLIENT:
        return False
    usable = clients.get(subject_id(principal), now)
    if usable is None:
        return False
    if not usable:
        raise Unauthenticated("this client is unknown or has been revoked", code="client_revoked")
    return True


async def ensure_live(session: AsyncSession, clock: Clock, principal: Principal, *,
                      idle_timeout_s: int, clients: ClientStateCache, touch: bool = True) -> None:
    """Refuse the token unless its session is live (refreshing it) or its client is not revoked."""
    now = clock.now()
    owner = subject_id(principal)
    if principal.kind is PrincipalKind.CLIENT:
        usable = clients.get(owner, now)
        if usable is None:
            usable = await repository.client_is_usable(session, owner)
            clients.put(owner, usable, now)
        if not usable:
            raise Unauthenticated("this client is unknown or has been revoked", code="client_revoked")
        return
    if principal.session_id is None:
        raise Unauthenticated("this token carries no session; log in again", code="session_ended")
    owner_id = int(owner) if owner.isdigit() else None
    row: StaffSession | ResidentSession
    if principal.kind is PrincipalKind.STAFF:
        found = await repository.staff_session_of_active_user(session, principal.session_id)
        row = _idle_check(found, owner_id, now, idle_timeout_s)
    else:
        # The session alone decides: a liveness check that read resident_accounts would count as an access to
        # personal data. (Nothing disables a resident account yet; whatever does must end its sessions too.)
        found_r = await session.get(ResidentSession, principal.session_id)
        row = _idle_check(found_r, owner_id, now, idle_timeout_s)
    if touch:
        _touch(row, now, idle_timeout_s)


async def live_sessions(session: AsyncSession, principal: Principal) -> list[StaffSession | ResidentSession]:
    """The live sessions of the person behind `principal`, newest first (none for a machine client)."""
    owner = subject_id(principal)
    if not owner.isdigit() or principal.kind is PrincipalKind.CLIENT:
        return []
    if principal.kind is PrincipalKind.STAFF:
        return list(await repository.live_staff_sessions(session, int(owner)))
    return list(await repository.live_resident_sessions(session, int(owner)))


async def logout(session: AsyncSession, clock: Clock, principal: Principal) -> None:
    """End the caller's session: every token minted for it stops working at once."""
    await end_session(session, clock, principal, "logout")
    resource = "staff_session" if principal.kind is PrincipalKind.STAFF else "resident_session"
    record(session, clock, principal, Action.LOGOUT, resource, resident_ids=[principal.resident_id])
