"""A period's work-order figures for the bulletin, computed from the orders' events (never a stored status).

Orders received count by the `received` event; closings and their timeliness by each `closed` event (an order
reopened and closed again counts twice, each close judged by the deadline it then had); callbacks by each
`callback` event. Rates are percentages as the bulletin prints them (0-100, two decimals rounded half up), None
when there is nothing to divide by ("not measured" is not 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.work_order_events import project
from cityhealth.hotline.work_order_models import SOURCES


@dataclass(frozen=True)
class WorkOrderFigures:
    by_source: dict[str, int]  # orders received in [start, end): city_12345, province_12345, self_received
    closed: int
    closed_on_time: int
    on_time_rate: Decimal | None  # 100 × closed_on_time / closed
    callbacks: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    satisfaction_rate: Decimal | None  # 100 × (satisfied + basically satisfied) / callbacks, as 12345 counts it


def _rate(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def work_order_figures(tx: AsyncSession, start: datetime, end: datetime) -> WorkOrderFigures:
    """The figures of the orders' events in [start, end)."""
    ids = await repository.orders_with_events(tx, ("received", "closed", "callback"), start, end)
    steps = await repository.steps_of(tx, ids)
    sources = await repository.sources_of(tx, ids)
    by_source = dict.fromkeys(SOURCES, 0)
    closed = on_time = 0
    satisfaction = {"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}
    for order_id, order_steps in steps.items():
        for step in order_steps:
            if not start <= step.at < end:
                continue
            if step.kind == "received":
                by_source[sources[order_id]] += 1
            elif step.kind == "callback":
                satisfaction[str(step.data["satisfaction"])] += 1
        # Each close judged by the deadline the order had when it closed: the projection up to that close.
        for closed_at, was_on_time in project(order_steps).closings:
            if start <= closed_at < end:
                closed += 1
                on_time += was_on_time
    callbacks = sum(satisfaction.values())
    return WorkOrderFigures(
        by_source=by_source, closed=closed, closed_on_time=on_time, on_time_rate=_rate(on_time, closed),
        callbacks=callbacks, satisfied=satisfaction["satisfied"],
        basically_satisfied=satisfaction["basically_satisfied"], dissatisfied=satisfaction["dissatisfied"],
        satisfaction_rate=_rate(satisfaction["satisfied"] + satisfaction["basically_satisfied"], callbacks))
