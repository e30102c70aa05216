"""A period's work-order figures for the bulletin, from the days' figures each counted event adds to.

Every event is appended through `append_step`, which counts it in its day (Asia/Shanghai) and its order's
source in the same transaction, under the order's row lock: orders received by the `received` event; closings
and their timeliness by each `closed` event (an order reopened and closed again counts twice, each close judged
by the deadline the projection gives it then); callbacks by each `callback` event. Rates are percentages as the
bulletin prints them (0-100, two decimals rounded half up), None when there is nothing to divide by ("not
measured" is not 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import business_date
from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.work_order_events import Step, project
from cityhealth.hotline.work_order_models import SATISFACTION, SOURCES

DAY_COUNTS = ("received", "closed", "closed_on_time", *SATISFACTION)


@dataclass(frozen=True)
class WorkOrderFigures:
    by_source: dict[str, int]  # orders received in the period: city_12345, province_12345, self_received
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


def day_counts(source: str, history: Sequence[Step], step: Step) -> dict[str, Any] | None:
    """What `step`, appended after `history`, adds to its day's figures; None for a kind not counted."""
    counts = dict.fromkeys(DAY_COUNTS, 0)
    if step.kind == "received":
        counts["received"] = 1
    elif step.kind == "closed":
        # Judged as the projection judges it: by the deadline the order has at this close.
        _, on_time = project([*history, step]).closings[-1]
        counts["closed"], counts["closed_on_time"] = 1, int(on_time)
    elif step.kind == "callback":
        counts[str(step.data["satisfaction"])] = 1
    else:
        return None
    return {"business_date": business_date(step.at), "source": source, **counts}


async def append_step(session: AsyncSession, source: str, history: Sequence[Step], values: dict[str, Any]) -> Step:
    """Append one event of an order whose row lock the caller holds, counted in its day's figures."""
    await repository.append_event(session, values)
    step = Step(values["seq"], values["kind"], values["at"], dict(values.get("data") or {}))
    counts = day_counts(source, history, step)
    if counts is not None:
        await repository.add_to_days(session, [counts])
    return step


async def work_order_figures(tx: AsyncSession, first: date, last: date) -> WorkOrderFigures:
    """The figures of the days first to last (Asia/Shanghai), both included."""
    sums = await repository.day_sums(tx, first, last, DAY_COUNTS)
    total = {name: sum(day.get(name, 0) for day in sums.values()) for name in DAY_COUNTS}
    callbacks = sum(total[name] for name in SATISFACTION)
    return WorkOrderFigures(
        by_source={source: sums.get(source, {}).get("received", 0) for source in SOURCES},
        closed=total["closed"], closed_on_time=total["closed_on_time"],
        on_time_rate=_rate(total["closed_on_time"], total["closed"]), callbacks=callbacks,
        satisfied=total["satisfied"], basically_satisfied=total["basically_satisfied"],
        dissatisfied=total["dissatisfied"],
        satisfaction_rate=_rate(total["satisfied"] + total["basically_satisfied"], callbacks))
