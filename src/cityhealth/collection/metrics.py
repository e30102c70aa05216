"""Quality metrics maintained as records arrive: deltas gathered over a batch, written in its transaction.

Nothing here rescans stored records. A batch adds to the daily counters, the rejections by rule, the
conformance counters of its events' months, the monthly stored totals and the distinct managed records;
the workload table holds the latest report per day (a re-sent report replaces; revoking a report that was
replaced leaves its replacement).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import business_date
from cityhealth.collection.models import (
    CONFORMING,
    IN_BASIS,
    NOT_COUNTED,
    FollowupFlag,
    ManagedCount,
    ManagedRecord,
    Workload,
)
from cityhealth.collection.prepare import ACCEPTED, DUPLICATE, REVOKED, Candidate
from cityhealth.collection.public_health import PROGRAM_OF_FORM, held_number, review_followup
from cityhealth.collection.repository import counters, managed_records, stored_records, table_writes
from cityhealth.collection.repository.counters import DAILY_COUNTERS
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.rules import RecordError
from cityhealth.collection.standard import load_standard

_LIST_INDEX = re.compile(r"\[\d+\]")


def field_key(name: str) -> str:
    """A field path with list positions folded (items[3].amount → items[].amount) for counting."""
    return _LIST_INDEX.sub("[]", name)


def month_of(day: date) -> int:
    return day.year * 100 + day.month


@dataclass
class MetricDeltas:
    """What one batch changes in the aggregates of one sending unit."""

    organization_id: int
    daily: dict[tuple[date, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rejections: Counter[tuple[date, str, str, str]] = field(default_factory=Counter)
    conformance: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    stored: Counter[int] = field(default_factory=Counter)  # month -> stored records
    # record id -> (report day, visits, discharges) of its latest version, None when revoked, in arrival order
    workload: dict[str, tuple[date, int, int] | None] = field(default_factory=dict)
    # The numbers records now hold (rows of the managed table), and the numbers records let go of (program,
    # health record no): a revoked record's, an amended record's former one. count_managed settles both into
    # the rows to insert (managed_new) and the numbers to delete (managed_gone).
    managed_new: list[dict[str, Any]] = field(default_factory=list)
    managed_released: list[tuple[str, str]] = field(default_factory=list)
    managed_gone: list[tuple[str, str]] = field(default_factory=list)  # (program, health record no)
    managed_counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (area, program, month)
    flags: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)  # None: cleared

    def count(self, day: date, form: str, what: str, n: int = 1) -> None:
        self.daily[(day, form)][what] += n

    def reject(self, day: date, form: str | None, errors: list[RecordError]) -> None:
        if form is None:  # unattributable rows (unknown form, unreadable line) are in the job summary only
            return
        self.daily[(day, form)]["rejected"] += 1
        for error in errors:
            self.rejections[(day, form, error.rule, field_key(error.field))] += 1

    async def flush(self, session: AsyncSession, now: datetime) -> None:
        org = self.organization_id
        await counters.add_counters(
            session,
            org,
            [
                (day, form, *(counts.get(name, 0) for name in DAILY_COUNTERS))
                for (day, form), counts in sorted(self.daily.items())
            ],
            [(day, form, rule, name, n) for (day, form, rule, name), n in sorted(self.rejections.items())],
            [
                (month, group, basis, conforming)
                for (month, group), (basis, conforming) in sorted(self.conformance.items())
                if basis or conforming
            ],
            [(month, n) for month, n in sorted(self.stored.items()) if n],
        )
        # A report's row goes wherever its latest version is (an amendment may move its day; a revocation
        # removes it), without touching the row another report of the same day put there since.
        await table_writes.delete_keys(
            session, Workload, ["organization_id", "record_id"], [(org, rid) for rid in sorted(self.workload)]
        )
        latest_of_day: dict[date, dict[str, Any]] = {}
        for rid, value in self.workload.items():
            if value is not None:
                latest_of_day[value[0]] = {
                    "organization_id": org,
                    "day": value[0],
                    "visits": value[1],
                    "discharges": value[2],
                    "record_id": rid,
                }
        await table_writes.upsert_replace(
            session,
            Workload,
            [latest_of_day[day] for day in sorted(latest_of_day)],
            ["organization_id", "day"],
            ["visits", "discharges", "record_id"],
        )
        await table_writes.delete_keys(
            session,
            ManagedRecord,
            ["organization_id", "program", "health_record_no"],
            [(org, program, number) for program, number in self.managed_gone],
        )
        await table_writes.insert_rows(session, ManagedRecord, self.managed_new)
        await table_writes.upsert_add(
            session,
            ManagedCount,
            [
                {"organization_id": org, "area_code": area, "program": program, "month": month, "added": n}
                for (area, program, month), n in sorted(self.managed_counts.items())
                if n
            ],
            ["organization_id", "area_code", "program", "month"],
            ["added"],
        )
        flagged = [
            {"organization_id": org, "form": form, "record_id": rid, **value, "flagged_at": now}
            for (form, rid), value in sorted(self.flags.items())
            if value is not None
        ]
        await table_writes.upsert_replace(
            session,
            FollowupFlag,
            flagged,
            ["organization_id", "form", "record_id"],
            ["submitted", "computed", "event_month", "flagged_at"],
        )
        await table_writes.delete_keys(
            session,
            FollowupFlag,
            ["organization_id", "form", "record_id"],
            [(org, form, rid) for (form, rid), value in self.flags.items() if value is None],
        )


# Forms whose records feed more than the daily, conformance and stored counters.
_FOLLOWUP_FORMS = frozenset({"hypertension_followup", "diabetes_followup"})
_SPECIAL_FORMS = frozenset(PROGRAM_OF_FORM) | _FOLLOWUP_FORMS


def count_decisions(
    deltas: MetricDeltas,
    sender: Sender,
    decided: list[Candidate],
    warnings: dict[int, list[dict[str, Any]]],
    day: date,
    month: int,
) -> None:
    """Add a batch's decided records to the deltas: tallied per form and status, never row by row in SQL."""
    tally: Counter[tuple[str, str]] = Counter()
    cells: Counter[tuple[int, str, int, int]] = Counter()  # (month, group, Δbasis, Δconforming) -> records
    workload_forms: set[str] = set()
    for candidate in decided:
        form = candidate.form
        status = candidate.status
        tally[(form.code, status)] += 1
        if form.kind == "workload":
            workload_forms.add(form.code)
        if status == DUPLICATE:
            continue
        if form.group is not None:
            month_key = candidate.conformance_month or candidate.event_month
            if status == ACCEPTED:
                cells[(month_key, form.group, 1, candidate.conformance == CONFORMING)] += 1
            elif candidate.previous is not None:
                previous = candidate.previous.conformance
                cells[
                    (
                        month_key,
                        form.group,
                        -(previous >= IN_BASIS and candidate.conformance == NOT_COUNTED),
                        -(previous == CONFORMING and candidate.conformance != CONFORMING),
                    )
                ] += 1
        if form.kind == "workload":
            record = candidate.record
            deltas.workload.pop(candidate.record_id, None)  # re-inserted last: the latest version wins its day
            deltas.workload[candidate.record_id] = (
                None
                if status == REVOKED
                else (
                    business_date(candidate.event_time),
                    int(record["outpatient_emergency_visits"]),
                    int(record["discharges"]),
                )
            )
        if form.code in _SPECIAL_FORMS:
            _count_public_health(deltas, sender, candidate, warnings, day, month)
    _add_tallies(deltas, tally, cells, workload_forms, day, month)


def counted_by_columns(forms: set[str]) -> bool:
    """Whether new records of these forms feed only the daily, conformance and stored counters."""
    standard = load_standard().forms
    return not (forms & _SPECIAL_FORMS) and all(standard[form].kind != "workload" for form in forms)


def count_new_columns(
    deltas: MetricDeltas, forms: list[str], event_months: list[int], on_time: list[bool], day: date, month: int
) -> None:
    """count_decisions for a batch of new records, all accepted, given as columns (counted_by_columns(forms)):
    each is a version 1 in the basis of its event's month, conforming when on time, as ingest._decide says."""
    standard = load_standard().forms
    tally: Counter[tuple[str, str]] = Counter((form, ACCEPTED) for form in forms)
    cells: Counter[tuple[int, str, int, int]] = Counter()
    for (form, event_month, timely), n in Counter(zip(forms, event_months, on_time, strict=True)).items():
        group = standard[form].group
        if group is not None:
            cells[(event_month, group, 1, bool(timely))] += n
    _add_tallies(deltas, tally, cells, set(), day, month)


def _add_tallies(
    deltas: MetricDeltas,
    tally: Counter[tuple[str, str]],
    cells: Counter[tuple[int, str, int, int]],
    workload_forms: set[str],
    day: date,
    month: int,
) -> None:
    for (form_code, status), n in tally.items():
        deltas.count(day, form_code, "received", n)
        deltas.count(day, form_code, status, n)
        # Workload reports are a separate feed (domain.md §3): not records accepted into the store.
        if status != DUPLICATE and form_code not in workload_forms:
            deltas.stored[month] += n
    for (month_key, group, basis, conforming), n in cells.items():
        cell = deltas.conformance[(month_key, group)]
        cell[0] += basis * n
        cell[1] += conforming * n


def _count_public_health(
    deltas: MetricDeltas,
    sender: Sender,
    candidate: Candidate,
    warnings: dict[int, list[dict[str, Any]]],
    day: date,
    month: int,
) -> None:
    form = candidate.form
    status = candidate.status
    record = candidate.record
    key = (form.code, candidate.record_id)
    review = review_followup(form.code, record) if status != REVOKED else None
    if review is not None:
        warnings[candidate.index] = review.warnings()
        if review.disagrees:
            deltas.count(day, form.code, "flagged")
            deltas.flags[key] = {
                "submitted": review.submitted,
                "computed": review.computed,
                "event_month": candidate.event_month,
            }
        else:
            deltas.flags[key] = None
    elif status == REVOKED and form.code in _FOLLOWUP_FORMS:
        deltas.flags[key] = None
    number = held_number(form.code, record)
    if number is None:
        return
    program = PROGRAM_OF_FORM[form.code][0]
    # The number the record held until now (None for a new record, and for one stored before records kept it).
    before = candidate.previous.health_record_no if candidate.previous is not None else None
    if status == REVOKED:
        deltas.managed_released.append((program, before or number))
        return
    if before is not None and before != number:  # an amendment moved the record to another number
        deltas.managed_released.append((program, before))
    deltas.managed_new.append(_managed_row(sender, program, number, month))


def _managed_row(sender: Sender, program: str, number: str, month: int) -> dict[str, Any]:
    return {
        "organization_id": sender.id,
        "program": program,
        "health_record_no": number,
        "area_code": sender.area_code or number[:6],
        "month": month,
    }


_FORM_OF_PROGRAM = {program: form for form, (program, _) in PROGRAM_OF_FORM.items()}


async def count_managed(session: AsyncSession, sender: Sender, deltas: MetricDeltas, month: int) -> None:
    """Settle the batch's managed numbers, after its records are stored: a number is managed while a live record
    holds it, so it arrives with its first holder and leaves only when no live record holds it any more.

    Numbers only arriving are held by what the batch just stored; a number released by one record may still be
    held by another (two records of one resident, a follow-up among many, or a later row of the same file), so
    only released numbers are looked up among the stored records. Counted per area in the batch's month.
    """
    arriving: dict[str, dict[str, dict[str, Any]]] = {}
    for row in deltas.managed_new:
        arriving.setdefault(row["program"], {}).setdefault(row["health_record_no"], row)
    released: dict[str, list[str]] = {}
    for program, number in deltas.managed_released:
        released.setdefault(program, []).append(number)
    fresh: list[dict[str, Any]] = []
    gone: list[tuple[str, str]] = []
    for program in sorted(arriving.keys() | released.keys()):
        rows = arriving.get(program, {})
        candidates = list(dict.fromkeys(released.get(program, [])))
        still_held = (
            await stored_records.live_holders(session, sender.id, _FORM_OF_PROGRAM[program], candidates)
            if candidates
            else set()
        )
        leaving = [number for number in candidates if number not in still_held]
        for number in leaving:
            rows.pop(number, None)
        for number in still_held:
            rows.setdefault(number, _managed_row(sender, program, number, month))
        held = await managed_records.managed_areas(session, sender.id, program, [*leaving, *rows])
        for number in leaving:
            if number in held:
                deltas.managed_counts[(held[number][0], program, month)] -= 1
                gone.append((program, number))
        for number, row in rows.items():
            if number not in held:
                fresh.append(row)
                deltas.managed_counts[(row["area_code"], program, month)] += 1
    deltas.managed_new = fresh
    deltas.managed_gone = gone
