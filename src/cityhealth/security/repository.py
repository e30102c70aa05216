"""Every query of the security tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    and_,
    column,
    delete,
    func,
    not_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.security.models import (
    AuditEvent,
    AuthFailureWindow,
    MachineClient,
    ResidentAccount,
    ResidentSession,
    SmsCode,
    SmsMessage,
    StaffSession,
    StaffUser,
    UsedJti,
)

# The registry's organizations, seen through a lightweight table so security never imports the registry
# (it sits above security): only the name is read, to tell a resident which organization accessed them.
_organizations = table("organizations", column("id"), column("name"))
_client_apps = table("client_apps", column("id"))
# The audit trail read untyped, for its verification: a tampered value must be reported as an edit, not
# crash the column type's converter.
_raw_audit_events = table("audit_events", *(column(c.name, Integer if c.name == "id" else String)
                                            for c in AuditEvent.__table__.columns))


async def organization_exists(session: AsyncSession, organization_id: int) -> bool:
    query = select(_organizations.c.id).where(_organizations.c.id == organization_id)
    return (await session.execute(query)).first() is not None


async def client_app_exists(session: AsyncSession, client_app_id: int) -> bool:
    query = select(_client_apps.c.id).where(_client_apps.c.id == client_app_id)
    return (await session.execute(query)).first() is not None


async def staff_user_by_username(session: AsyncSession, username: str, *, for_update: bool = False
                                 ) -> StaffUser | None:
    query = select(StaffUser).where(StaffUser.username == username)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def staff_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> StaffUser | None:
    query = select(StaffUser).where(StaffUser.id == user_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def staff_users(session: AsyncSession, *, organization_id: int | None = None) -> Sequence[StaffUser]:
    query = select(StaffUser).order_by(StaffUser.id)
    if organization_id is not None:
        query = query.where(StaffUser.organization_id == organization_id)
    return (await session.execute(query)).scalars().all()


async def resident_account(session: AsyncSession, account_id: int, *, for_update: bool = False
                           ) -> ResidentAccount | None:
    query = select(ResidentAccount).where(ResidentAccount.id == account_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def account_of_resident(session: AsyncSession, resident_id: int, *, for_update: bool = False
                              ) -> ResidentAccount | None:
    query = select(ResidentAccount).where(ResidentAccount.resident_id == resident_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def accounts_on_phone(session: AsyncSession, phone_hash: str) -> int:
    query = select(func.count()).select_from(ResidentAccount).where(ResidentAccount.phone_hash == phone_hash)
    return int((await session.execute(query)).scalar_one())


async def machine_client(session: AsyncSession, client_id: str, *, for_update: bool = False
                         ) -> MachineClient | None:
    query = select(MachineClient).where(MachineClient.client_id == client_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def machine_clients(session: AsyncSession) -> Sequence[MachineClient]:
    return (await session.execute(select(MachineClient).order_by(MachineClient.client_id))).scalars().all()


async def remember_jti(session: AsyncSession, client_id: str, jti: str, expires_at: datetime) -> bool:
    """Store a used `jti`; False when it was already there (a replay). Safe under concurrent replays."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(UsedJti).values(client_id=client_id, jti=jti, expires_at=expires_at)
    result = await session.execute(statement.on_conflict_do_nothing(index_elements=["client_id", "jti"]))
    return bool(getattr(result, "rowcount", 0))


async def count_auth_failure(session: AsyncSession, *, source_address: str, window_start: datetime,
                             now: datetime, detail: str, rate_limited: bool) -> int:
    """Count one failed authentication (or one 429) of a source in a window; the count of its kind so far.

    One upsert, so concurrent workers counting the same source and window never lose a count, and exactly
    one of them sees 1.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    counted = AuthFailureWindow.rate_limited if rate_limited else AuthFailureWindow.failures
    statement = insert(AuthFailureWindow).values(
        source_address=source_address, window_start=window_start, failures=0 if rate_limited else 1,
        rate_limited=1 if rate_limited else 0, first_at=now, last_at=now, last_detail=detail[:64])
    upsert = statement.on_conflict_do_update(
        index_elements=["source_address", "window_start"],
        set_={counted.key: counted + 1, "last_at": now, "last_detail": detail[:64]},
    ).returning(counted)
    return int((await session.execute(upsert)).scalar_one())


async def purge_auth_failures(session: AsyncSession, before: datetime) -> int:
    """Delete the failure counters of windows that started before `before`; how many rows went."""
    result = await session.execute(delete(AuthFailureWindow).where(AuthFailureWindow.window_start < before))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_used_jtis(session: AsyncSession, now: datetime) -> None:
    """Forget jtis whose assertion has expired: an expired assertion is refused on `exp` anyway."""
    await session.execute(delete(UsedJti).where(UsedJti.expires_at < now))


async def live_staff_sessions(session: AsyncSession, user_id: int) -> Sequence[StaffSession]:
    query = (select(StaffSession).where(StaffSession.staff_user_id == user_id, StaffSession.ended_at.is_(None))
             .order_by(StaffSession.created_at.desc()))
    return (await session.execute(query)).scalars().all()


async def live_resident_sessions(session: AsyncSession, account_id: int) -> Sequence[ResidentSession]:
    query = (select(ResidentSession)
             .where(ResidentSession.resident_account_id == account_id, ResidentSession.ended_at.is_(None))
             .order_by(ResidentSession.created_at.desc()))
    return (await session.execute(query)).scalars().all()


async def events_about_resident(session: AsyncSession, resident_id: int, *, before_id: int | None,
                                limit: int) -> Sequence[tuple[AuditEvent, str | None]]:
    """A resident's access log, newest first, with the accessing organization's name."""
    query = (select(AuditEvent, _organizations.c.name)
             .outerjoin(_organizations, _organizations.c.id == AuditEvent.organization_id)
             .where(AuditEvent.resident_id == resident_id)
             .order_by(AuditEvent.id.desc()).limit(limit))
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = (await session.execute(query)).all()
    return [(row[0], row[1]) for row in rows]


async def lock_phone_for_registration(session: AsyncSession, phone_hash: str) -> None:
    """Serialise registrations on one phone until the transaction ends.

    Two at once must not both count "2 accounts". PostgreSQL takes an advisory lock; SQLite's write lock
    already serialises them.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"phone:{phone_hash}"})


async def end_live_session(session: AsyncSession, model: type[StaffSession] | type[ResidentSession],
                           session_id: str, *, now: datetime, reason: str) -> bool:
    """End one session; False when it had already ended (or never existed)."""
    result = await session.execute(
        update(model).where(model.id == session_id, model.ended_at.is_(None)).values(ended_at=now, end_reason=reason))
    return bool(getattr(result, "rowcount", 0))


async def end_live_staff_sessions(session: AsyncSession, user_id: int, *, now: datetime, reason: str) -> None:
    await session.execute(
        update(StaffSession).where(StaffSession.staff_user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason))


async def client_is_usable(session: AsyncSession, client_id: str) -> bool:
    """True when the machine client exists and is not revoked."""
    found = (await session.execute(
        select(MachineClient.revoked_at).where(MachineClient.client_id == client_id))).first()
    return found is not None and found[0] is None


async def staff_session_of_active_user(session: AsyncSession, session_id: str) -> StaffSession | None:
    return await session.scalar(
        select(StaffSession).join(StaffUser, StaffUser.id == StaffSession.staff_user_id)
        .where(StaffSession.id == session_id, StaffUser.is_active.is_(True)))


async def raw_audit_events(session: AsyncSession, *, after_id: int | None, limit: int) -> Sequence[Row[Any]]:
    """The next `limit` audit events in id order, every column read untyped (as stored)."""
    query = select(_raw_audit_events).order_by(_raw_audit_events.c.id).limit(limit)
    if after_id is not None:
        query = query.where(_raw_audit_events.c.id > after_id)
    return (await session.execute(query)).all()


async def audit_event_id_by_hash(session: AsyncSession, event_hash: str) -> int | None:
    found = await session.scalar(select(_raw_audit_events.c.id).where(_raw_audit_events.c.hash == event_hash))
    return None if found is None else int(found)


async def count_audit_events(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(_raw_audit_events))).scalar_one())


async def audit_events_between(session: AsyncSession, start: datetime, end: datetime, *, after_id: int,
                               limit: int) -> Sequence[AuditEvent]:
    """Events with start <= occurred_at < end and id > after_id, in id (chain) order."""
    query = (select(AuditEvent).where(AuditEvent.occurred_at >= start, AuditEvent.occurred_at < end,
                                      AuditEvent.id > after_id).order_by(AuditEvent.id).limit(limit))
    return (await session.execute(query)).scalars().all()


def _ciphertexts(table_name: str, key: str, column_name: str) -> Table:
    """Any table's key and one ciphertext column, untyped: key rotation reaches every room's columns."""
    return Table(table_name, MetaData(), Column(key, Integer, primary_key=True), Column(column_name, String))


def _stale(ciphertexts: Table, column_name: str, current_prefix: str) -> Any:
    value = ciphertexts.c[column_name]
    return and_(value.is_not(None), not_(value.like(f"{current_prefix}%")))


async def count_stale_ciphertexts(session: AsyncSession, *, table_name: str, key: str, column_name: str,
                                  current_prefix: str) -> int:
    """Rows whose ciphertext is not under the current key (its prefix names the key)."""
    ciphertexts = _ciphertexts(table_name, key, column_name)
    query = select(func.count()).select_from(ciphertexts).where(_stale(ciphertexts, column_name, current_prefix))
    return int((await session.execute(query)).scalar_one())


async def stale_ciphertexts(session: AsyncSession, *, table_name: str, key: str, column_name: str,
                            current_prefix: str, after: int | None, limit: int) -> list[tuple[int, str]]:
    """The next `limit` (key, ciphertext) pairs not under the current key, in key order after `after`."""
    ciphertexts = _ciphertexts(table_name, key, column_name)
    key_column = ciphertexts.c[key]
    query = (select(key_column, ciphertexts.c[column_name])
             .where(_stale(ciphertexts, column_name, current_prefix)).order_by(key_column).limit(limit))
    if after is not None:
        query = query.where(key_column > after)
    return [(int(row_id), str(value)) for row_id, value in (await session.execute(query)).all()]


async def replace_ciphertext(session: AsyncSession, *, table_name: str, key: str, column_name: str, row_id: int,
                             old: str, new: str) -> bool:
    """Swap one ciphertext unless the row changed meanwhile; False when it had (nothing is written)."""
    ciphertexts = _ciphertexts(table_name, key, column_name)
    changed = await session.execute(
        update(ciphertexts).where(ciphertexts.c[key] == row_id, ciphertexts.c[column_name] == old)
        .values({column_name: new}))
    return bool(getattr(changed, "rowcount", 1))


# --- the resident app's SMS codes and outbox ---------------------------------------------------------------


async def accounts_of_phone(session: AsyncSession, phone_hash: str) -> list[ResidentAccount]:
    query = select(ResidentAccount).where(ResidentAccount.phone_hash == phone_hash).order_by(ResidentAccount.id)
    return list((await session.execute(query)).scalars())


async def sms_code(session: AsyncSession, token_hash: str, *, for_update: bool = False) -> SmsCode | None:
    query = select(SmsCode).where(SmsCode.token_hash == token_hash)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar()


async def last_sms_code_at(session: AsyncSession, phone_hash: str) -> datetime | None:
    query = select(func.max(SmsCode.created_at)).where(SmsCode.phone_hash == phone_hash)
    value: datetime | None = (await session.execute(query)).scalar()
    return value


async def undelivered_sms(session: AsyncSession, limit: int) -> list[SmsMessage]:
    query = (select(SmsMessage).where(SmsMessage.delivered_at.is_(None), SmsMessage.body_enc.is_not(None))
             .order_by(SmsMessage.id).limit(limit).with_for_update())
    return list((await session.execute(query)).scalars())


async def erase_lapsed_sms(session: AsyncSession, now: datetime) -> int:
    """Erase the text of every message whose code has lapsed unsent: nothing readable outlives its use."""
    result = await session.execute(update(SmsMessage).where(SmsMessage.body_enc.is_not(None),
                                                            SmsMessage.expires_at <= now).values(body_enc=None))
    return int(getattr(result, "rowcount", 0) or 0)
