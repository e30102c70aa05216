"""The patient messages' queries: the outbox (booking_notifications) and the hospitals' message settings."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, exists, false, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import Booking, MessageSettings, Notification
from cityhealth.registry.models import Department, Organization, Resident

_OUTBOX: Table = Notification.__table__  # type: ignore[assignment]
_ONE_PER_BOOKING = {"index_elements": ["booking_id", "kind"], "index_where": _OUTBOX.c.booking_id.isnot(None)}


def _insert(tx: AsyncSession) -> Any:
    dialect = tx.get_bind().dialect.name
    return postgresql.insert(_OUTBOX) if dialect == "postgresql" else sqlite.insert(_OUTBOX)


async def add(tx: AsyncSession, values: dict[str, Any]) -> None:
    """One outbox row; nothing when the booking has its message of this kind already."""
    await tx.execute(_insert(tx).values(**values).on_conflict_do_nothing(**_ONE_PER_BOOKING))


async def add_named(tx: AsyncSession, kind: str, setting: str, rows: list[dict[str, Any]], now: datetime) -> None:
    """Outbox rows whose text is `head` + hospital name + department name + `tail`, in one statement, each
    unless its hospital turned `setting` off; `rows` hold resident_id, booking_id, organization_id,
    department_id, head and tail."""
    enabled = ~exists().where(MessageSettings.organization_id == bindparam("organization_id"),
                              getattr(MessageSettings, setting).is_(false()))
    source: Any = (select(bindparam("resident_id"), bindparam("booking_id"), literal(kind),
                     bindparam("head") + Organization.name + Department.local_name + bindparam("tail"),
                     literal("pending"), literal(0), literal(now, type_=Notification.created_at.type))
              .select_from(Organization).join(Department, Department.id == bindparam("department_id"))
              .where(Organization.id == bindparam("organization_id"), enabled))
    statement = _insert(tx).from_select(
        ["resident_id", "booking_id", "kind", "message", "status", "attempts", "created_at"], source,
    ).on_conflict_do_nothing(**_ONE_PER_BOOKING)
    await tx.execute(statement, rows)


async def names(tx: AsyncSession, organization_id: int, department_id: int) -> tuple[str, str]:
    """The hospital's and the department's names as residents read them."""
    row = (await tx.execute(select(Organization.name, Department.local_name).select_from(Organization)
                            .join(Department, Department.id == department_id)
                            .where(Organization.id == organization_id))).first()
    return ("", "") if row is None else (row[0], row[1])


async def calendar_bookings(tx: AsyncSession, booking_ids: Collection[int], replaced_by: Collection[int],
                            ) -> list[tuple[Booking, str, str]]:
    """The bookings `booking_ids` and those that the bookings `replaced_by` replaced (reschedules), each with its
    hospital's and department's names, in one read."""
    if not booking_ids:
        return []
    replaced = Booking.rescheduled_to_id.in_(sorted(replaced_by)) if replaced_by else false()
    statement = (select(Booking, Organization.name, Department.local_name)
                 .join(Organization, Organization.id == Booking.organization_id)
                 .join(Department, Department.id == Booking.department_id)
                 .where(Booking.id.in_(sorted(booking_ids)) | replaced).order_by(Booking.id))
    return [(row[0], row[1], row[2]) for row in (await tx.execute(statement)).all()]


async def pending(tx: AsyncSession, limit: int, *, skip_locked: bool) -> list[Any]:
    """The oldest pending messages, with the phone's ciphertext and what decides whether each is still due."""
    statement = (select(Notification.id, Notification.resident_id, Notification.kind, Notification.message,
                        Notification.attempts, Notification.booking_id,
                        Resident.phone_enc, Booking.status.label("booking_status"), Booking.hold_expires_at,
                        Booking.starts_at)
                 .join(Resident, Resident.id == Notification.resident_id)
                 .outerjoin(Booking, Booking.id == Notification.booking_id)
                 .where(Notification.status == "pending").order_by(Notification.id).limit(limit))
    if skip_locked:
        statement = statement.with_for_update(of=Notification, skip_locked=True)
    return list((await tx.execute(statement)).all())


async def set_message(tx: AsyncSession, notification_id: int, values: dict[str, Any]) -> None:
    await tx.execute(update(Notification).where(Notification.id == notification_id).values(**values))


async def any_pending(tx: AsyncSession) -> bool:
    return bool((await tx.execute(select(exists().where(Notification.status == "pending")))).scalar_one())


async def settings_of(tx: AsyncSession, organization_ids: Iterable[int] | None = None) -> list[MessageSettings]:
    statement = select(MessageSettings)
    if organization_ids is not None:
        statement = statement.where(MessageSettings.organization_id.in_(list(organization_ids)))
    return list((await tx.execute(statement)).scalars())


async def store_settings(tx: AsyncSession, values: dict[str, Any]) -> None:
    dialect = tx.get_bind().dialect.name
    table: Table = MessageSettings.__table__  # type: ignore[assignment]
    statement = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(**values)
    await tx.execute(statement.on_conflict_do_update(
        index_elements=["organization_id"], set_={k: v for k, v in values.items() if k != "organization_id"}))


async def reminders_due(tx: AsyncSession, day: date, *, only: set[int] | None, excluded: set[int],
                        limit: int) -> list[Any]:
    """Booked appointments of `day` without a reminder yet, of the hospitals `only` (None: all) but `excluded`."""
    reminded = exists().where(Notification.booking_id == Booking.id, Notification.kind == "booking_reminder")
    statement = (select(Booking.id, Booking.resident_id, Booking.organization_id, Booking.department_id,
                        Booking.service_date, Booking.estimated_at, Booking.slot_no,
                        Organization.name, Department.local_name)
                 .join(Organization, Organization.id == Booking.organization_id)
                 .join(Department, Department.id == Booking.department_id)
                 .where(Booking.service_date == day, Booking.status == "booked", ~reminded)
                 .order_by(Booking.id).limit(limit))
    if only is not None:
        statement = statement.where(Booking.organization_id.in_(sorted(only)) if only else false())
    if excluded:
        statement = statement.where(Booking.organization_id.not_in(sorted(excluded)))
    return list((await tx.execute(statement)).all())

