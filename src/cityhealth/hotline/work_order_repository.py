"""The work orders' queries: orders, their events, the results owed to 12345, the holiday years set."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.counters import add_counts
from cityhealth.hotline.models import Call
from cityhealth.hotline.work_order_events import STATE_OF_KIND, Step
from cityhealth.hotline.work_order_models import (
    HolidayDay,
    HolidayYear,
    WorkOrder,
    WorkOrderDay,
    WorkOrderEvent,
    WorkOrderResult,
)

_ORDERS: Table = WorkOrder.__table__  # type: ignore[assignment]
_DAYS: Table = WorkOrderDay.__table__  # type: ignore[assignment]


def _insert(session: AsyncSession, table: Table) -> Any:
    return postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)


async def call_exists(session: AsyncSession, call_id: int) -> bool:
    return (await session.scalar(select(func.count()).select_from(Call).where(Call.id == call_id))) == 1


async def insert_order(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new order's id; None when an order with this intake key is held already (a repeated push)."""
    statement = (_insert(session, _ORDERS).values(**values)
                 .on_conflict_do_nothing(index_elements=["intake_key"]).returning(_ORDERS.c.id))
    return (await session.execute(statement)).scalar_one_or_none()


async def order_by_key(session: AsyncSession, intake_key: str, *, lock: bool = False) -> WorkOrder | None:
    statement = select(WorkOrder).where(WorkOrder.intake_key == intake_key)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def order(session: AsyncSession, order_id: int, *, lock: bool = False) -> WorkOrder | None:
    """An order; locked, every step of it waits for the one before (their events' sequence is one line)."""
    statement = select(WorkOrder).where(WorkOrder.id == order_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement.execution_options(populate_existing=lock))).one_or_none()


async def events(session: AsyncSession, order_id: int) -> list[WorkOrderEvent]:
    statement = select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.seq)
    return list((await session.scalars(statement)).all())


async def steps_of(session: AsyncSession, order_ids: Collection[int]) -> dict[int, list[Step]]:
    """Each order's events, as the projection reads them."""
    found: dict[int, list[Step]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return found
    statement = (select(WorkOrderEvent.work_order_id, WorkOrderEvent.seq, WorkOrderEvent.kind, WorkOrderEvent.at,
                        WorkOrderEvent.data).where(WorkOrderEvent.work_order_id.in_(order_ids))
                 .order_by(WorkOrderEvent.work_order_id, WorkOrderEvent.seq))
    for row in await session.execute(statement):
        found[row.work_order_id].append(Step(row.seq, row.kind, row.at, dict(row.data)))
    return found


async def event_by_key(session: AsyncSession, order_id: int, request_key: str) -> WorkOrderEvent | None:
    statement = select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order_id,
                                             WorkOrderEvent.request_key == request_key)
    return (await session.scalars(statement)).one_or_none()


async def append_event(session: AsyncSession, values: dict[str, Any]) -> None:
    session.add(WorkOrderEvent(**values))
    await session.flush()


def _state_of(order_id: Any) -> Any:
    """The order's current state, from its latest state-changing event (the same rule as the projection)."""
    return (select(WorkOrderEvent.kind).where(WorkOrderEvent.work_order_id == order_id,
                                              WorkOrderEvent.kind.in_(list(STATE_OF_KIND)))
            .order_by(WorkOrderEvent.seq.desc()).limit(1).correlate(WorkOrder).scalar_subquery())


async def orders_page(session: AsyncSession, *, organization_id: int | None, source: str | None,
                      category: str | None, state: str | None, text: str | None,
                      received_from: datetime | None, received_to: datetime | None,
                      before_id: int | None, limit: int) -> list[WorkOrder]:
    """Newest first, by the filters given."""
    statement: Select[Any] = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(limit)
    if organization_id is not None:
        statement = statement.where(WorkOrder.organization_id == organization_id)
    if source is not None:
        statement = statement.where(WorkOrder.source == source)
    if category is not None:
        statement = statement.where(WorkOrder.category == category)
    if state is not None:
        statement = statement.where(_state_of(WorkOrder.id) == state)
    if text is not None:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(WorkOrder.title.like(pattern, escape="\\")
                                    | WorkOrder.content.like(pattern, escape="\\"))
    if received_from is not None:
        statement = statement.where(WorkOrder.received_at >= received_from)
    if received_to is not None:
        statement = statement.where(WorkOrder.received_at < received_to)
    if before_id is not None:
        statement = statement.where(WorkOrder.id < before_id)
    return list((await session.scalars(statement)).all())


async def dispatched_orders(session: AsyncSession, limit: int) -> list[int]:
    """Orders whose current state is dispatched (the ones a reminder may concern), oldest first."""
    statement = (select(WorkOrder.id).where(_state_of(WorkOrder.id) == "dispatched")
                 .order_by(WorkOrder.id).limit(limit))
    return list((await session.scalars(statement)).all())


async def add_to_days(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add to the days' figures (work_order_models.WorkOrderDay), one row a day and source."""
    await add_counts(session, _DAYS, ("business_date", "source"), rows)


async def day_sums(session: AsyncSession, first: date, last: date, counts: Sequence[str]) -> dict[str, dict[str, int]]:
    """The days' figures of [first, last] added up, by source (sources without a day absent)."""
    statement = (select(WorkOrderDay.source, *(func.sum(_DAYS.c[name]) for name in counts))
                 .where(WorkOrderDay.business_date >= first, WorkOrderDay.business_date <= last)
                 .group_by(WorkOrderDay.source))
    return {source: dict(zip(counts, (int(value) for value in values), strict=True))
            for source, *values in await session.execute(statement)}


# --- the results owed to 12345 (the outbox) ---------------------------------------------------------------------


async def add_result(session: AsyncSession, values: dict[str, Any]) -> None:
    """A result to send; nothing when this close already has one."""
    table: Table = WorkOrderResult.__table__  # type: ignore[assignment]
    await session.execute(_insert(session, table).values(**values)
                          .on_conflict_do_nothing(index_elements=["work_order_id", "close_seq"]))


async def due_results(session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool) -> list[Any]:
    """Pending results whose next attempt has come, oldest first, with what the receiver needs."""
    statement = (select(WorkOrderResult.id, WorkOrderResult.work_order_id, WorkOrderResult.close_seq,
                        WorkOrderResult.reference, WorkOrderResult.attempts, WorkOrder.source,
                        WorkOrder.source_order_id)
                 .join(WorkOrder, WorkOrder.id == WorkOrderResult.work_order_id)
                 .where(WorkOrderResult.status == "pending", WorkOrderResult.next_attempt_at <= now)
                 .order_by(WorkOrderResult.id).limit(limit))
    if skip_locked:
        statement = statement.with_for_update(of=WorkOrderResult, skip_locked=True)
    return list((await session.execute(statement)).all())


async def set_result(session: AsyncSession, result_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(WorkOrderResult).where(WorkOrderResult.id == result_id).values(**values))


async def any_pending_result(session: AsyncSession) -> bool:
    found = await session.scalar(select(func.count()).select_from(WorkOrderResult)
                                 .where(WorkOrderResult.status == "pending"))
    return bool(found)


async def results_of(session: AsyncSession, order_id: int) -> list[WorkOrderResult]:
    statement = select(WorkOrderResult).where(WorkOrderResult.work_order_id == order_id).order_by(WorkOrderResult.id)
    return list((await session.scalars(statement)).all())


# --- the holiday years set by an operator ---------------------------------------------------------------------


async def holiday_years(session: AsyncSession, years: Collection[int]) -> dict[int, tuple[HolidayYear,
                                                                                        list[HolidayDay]]]:
    found: dict[int, tuple[HolidayYear, list[HolidayDay]]] = {}
    for row in (await session.scalars(select(HolidayYear).where(HolidayYear.year.in_(years)))).all():
        found[row.year] = (row, [])
    if found:
        days = await session.scalars(select(HolidayDay).where(HolidayDay.year.in_(list(found)))
                                     .order_by(HolidayDay.day))
        for day in days:
            found[day.year][1].append(day)
    return found


async def replace_holiday_year(session: AsyncSession, year: int, note: str | None, actor: str, now: datetime,
                               days: list[tuple[date, str, str]]) -> None:
    """The year's arrangement replaced by `days` (day, kind, name)."""
    await session.execute(delete(HolidayDay).where(HolidayDay.year == year))
    held = await session.get(HolidayYear, year, with_for_update=True)
    if held is None:
        session.add(HolidayYear(year=year, note=note, set_by=actor, set_at=now))
    else:
        held.note, held.set_by, held.set_at = note, actor, now
    await session.flush()
    session.add_all([HolidayDay(day=day, year=year, kind=kind, name=name) for day, kind, name in days])
    await session.flush()
