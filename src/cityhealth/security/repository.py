"""Every query of the security tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import column, delete, func, select, table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.security.models import (
    AuditEvent,
    AuthFailureWindow,
    MachineClient,
    ResidentAccount,
    ResidentSession,
    StaffSession,
    StaffUser,
    UsedJti,
)

# The registry's organizations, seen through a lightweight table so security never imports the registry
# (it sits above security): only the name is read, to tell a resident which organization accessed them.
_organizations = table("organizations", column("id"), column("name"))
_client_apps = table("client_apps", column("id"))


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
