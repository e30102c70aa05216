"""From a scenario and a scale to a month of activity: who sends what, on which day, valid or not.

The plan holds counts, never the records themselves: at scale 1 a month is ≈201 million records, so the
records are produced day by day from these counts (see records.py). Every figure of the bulletin follows
from the plan by the metric definitions of domain.md §3:
- conforming records arrive on the day of their event (within the real-time window) and are never amended;
- late records arrive two days after their event, so they count in the basis but not as conforming;
- accepted records outside the basis carry an event time in the previous month (a backlog);
- rejected records break one validation rule each and count only as uploaded;
- `realtime_forms` is met exactly: accepted records go only to that many of the 11 forms.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.scenario import CollectionRow, DistrictRow, Scenario, round_half_up, scaled

OUTPATIENT_FORMS = ("2", "3", "4", "5", "6")
INPATIENT_FORMS = ("7", "8", "9", "10", "11")
# The order in which a unit's accepted forms are chosen: visits and discharges first, as senders do.
FORM_PRIORITY = ("2", "10", "1", "3", "7", "11", "4", "5", "6", "8", "9")
PUBLIC_HEALTH_FORMS = ("health_record", "hypertension_followup", "diabetes_followup")
REJECTED_SHARE = Decimal("0.02")  # of the records outside the bases: realistic senders fail ~2%
LATE_DELAY_DAYS = 2


@dataclass(frozen=True)
class RateTarget:
    basis: int
    conforming: int


@dataclass(frozen=True)
class UnitPlan:
    """One sending unit's month: the district platform of an area, or a hospital."""

    name: str
    area_code: str | None  # district rows only
    uploaded: int
    upload_days: tuple[int, ...]  # days of the month on which it sends
    forms: tuple[str, ...]  # the forms that receive accepted records (len == realtime_forms)
    outpatient: RateTarget | None  # None: not enrolled for the outpatient group
    inpatient: RateTarget | None
    visits: int
    discharges: int
    backlog_accepted: int  # accepted, event time before the month: outside the bases
    public_health: dict[str, int]  # new public-health records by form (district platforms)
    rejected: int
    health_records_target: dict[str, int] = field(default_factory=dict)  # cumulative at month end

    @property
    def accepted(self) -> int:
        bases = sum(rate.basis for rate in (self.outpatient, self.inpatient) if rate)
        return bases + self.backlog_accepted + sum(self.public_health.values())


@dataclass(frozen=True)
class BookingCell:
    hospital: str
    channel: str  # online_12320 | phone | clinic | third_party
    app: str | None  # a listed client app, or None for the channel's own front-end
    count: int


@dataclass(frozen=True)
class CallCell:
    """A city's calls of one category over the month (phone-booking calls follow the phone bookings instead)."""

    city: str
    category: str
    count: int


@dataclass(frozen=True)
class WorkOrderPlan:
    """The month's work orders received, by source: the self-received ones are the region's complaint calls."""

    city_12345: int
    province_12345: int
    self_received: int  # one per complaint call, created on it (expected(): the scaled `complaint`)


@dataclass(frozen=True)
class HotlinePlan:
    lines: tuple[tuple[str, str, str], ...]  # (line, city code, city name): one 12320 line per city
    region_city: str
    cells: tuple[CallCell, ...]  # every call but the phone-booking calls that go with bookings
    phone_bookings_follow_bookings: bool  # True: one phone-booking call per phone booking, on its day
    work_orders: WorkOrderPlan | None = None  # None: the scenario states no work orders

    def line_of(self, city: str) -> str:
        return next(line for line, code, _ in self.lines if code == city)


@dataclass(frozen=True)
class MonthPlan:
    month: date  # first day
    days_in_month: int
    scale: Decimal
    units: tuple[UnitPlan, ...]
    cumulative_accepted_target: int
    bookings: tuple[BookingCell, ...]
    bookings_cumulative_target: int
    hotline: HotlinePlan | None = None

    @property
    def accepted_in_month(self) -> int:
        return sum(unit.accepted for unit in self.units)

    @property
    def bookings_in_month(self) -> int:
        return sum(cell.count for cell in self.bookings)


def _rate(basis: int | None, pct: str | None, scale: Decimal) -> RateTarget | None:
    if basis is None or pct is None:
        return None
    scaled_basis = max(1, scaled(basis, scale))
    return RateTarget(scaled_basis, round_half_up(Decimal(scaled_basis) * Decimal(pct) / 100))


def _upload_days(count: int, days_in_month: int) -> tuple[int, ...]:
    """`count` days spread evenly over the month, always including its last day (room for late records)."""
    if count == 0:
        return ()
    return tuple(sorted({days_in_month - (i * days_in_month) // count for i in range(count)}))


def _forms(name: str, count: int, outpatient: RateTarget | None, inpatient: RateTarget | None) -> tuple[str, ...]:
    chosen: list[str] = []
    if outpatient:
        chosen.append("2")
    if inpatient:
        chosen.append("10")
    if len(chosen) > count:
        raise ValidationFailed(
            f"{name}: realtime_forms={count} cannot hold accepted records of both groups",
            field="realtime_forms", value=count, rule="scenario.infeasible")
    for form in FORM_PRIORITY:
        if len(chosen) == count:
            break
        if form not in chosen:
            chosen.append(form)
    return tuple(chosen)


def plan_unit(row: CollectionRow, scale: Decimal, days_in_month: int) -> UnitPlan:
    name = row.name if isinstance(row, DistrictRow) else row.hospital  # type: ignore[attr-defined]
    outpatient = _rate(row.outpatient_conformance_basis, row.outpatient_conformance_pct, scale)
    inpatient = _rate(row.discharge_conformance_basis, row.discharge_conformance_pct, scale)
    bases = sum(rate.basis for rate in (outpatient, inpatient) if rate)
    uploaded = max(scaled(row.uploaded_records, scale), row.upload_days, row.realtime_forms, bases)
    if row.upload_days > days_in_month:
        raise ValidationFailed(f"{name}: {row.upload_days} upload days in a month of {days_in_month}",
                               field="upload_days", value=row.upload_days, rule="scenario.infeasible")
    if uploaded > 0 and row.upload_days == 0:
        raise ValidationFailed(f"{name}: records uploaded on no day", field="upload_days", value=0,
                               rule="scenario.infeasible")
    forms = _forms(name, row.realtime_forms, outpatient, inpatient)
    # Each accepted form needs at least one accepted record: the bases cover forms 2 and 10.
    needs_own_record = [form for form in forms if not ((form == "2" and outpatient) or (form == "10" and inpatient))]
    remaining = uploaded - bases
    if remaining < len(needs_own_record):
        raise ValidationFailed(f"{name}: too few records for {len(forms)} accepted forms",
                               field="uploaded_records", value=row.uploaded_records, rule="scenario.infeasible")
    if not forms:
        rejected = remaining  # a unit with no accepted form: everything it sent failed validation
    else:
        rejected = min(remaining - len(needs_own_record), round_half_up(Decimal(remaining) * REJECTED_SHARE))
    accepted_extra = remaining - rejected

    public_health: dict[str, int] = {}
    targets: dict[str, int] = {}
    if isinstance(row, DistrictRow):
        targets = {
            "health_record": scaled(row.health_records_cumulative.basic, scale),
            "hypertension_followup": scaled(row.health_records_cumulative.hypertension, scale),
            "diabetes_followup": scaled(row.health_records_cumulative.diabetes, scale),
        }
        # A district platform also sends public-health records: up to a tenth of its extra records,
        # never more than the cumulative figure it must reach (the rest is the opening balance).
        budget = max(0, (accepted_extra - len(needs_own_record)) // 10) if forms else 0
        for form in PUBLIC_HEALTH_FORMS:
            public_health[form] = min(targets[form], budget // len(PUBLIC_HEALTH_FORMS))
        accepted_extra -= sum(public_health.values())

    return UnitPlan(
        name=name,
        area_code=row.area if isinstance(row, DistrictRow) else None,
        uploaded=uploaded,
        upload_days=_upload_days(row.upload_days, days_in_month),
        forms=forms,
        outpatient=outpatient,
        inpatient=inpatient,
        visits=scaled(row.outpatient_visits, scale),
        discharges=scaled(row.discharges, scale),
        backlog_accepted=accepted_extra,
        public_health=public_health,
        rejected=rejected,
        health_records_target=targets,
    )


def plan_bookings(scenario: Scenario, scale: Decimal, app_channels: dict[str, str]) -> tuple[BookingCell, ...]:
    """Assign every scaled booking a hospital, a channel and an app, matching both booking tables.

    `app_channels` gives each known app's home channel; an app the registry lacks may book through either
    app channel (the simulator registers it so). The platform's own apps fill the online channel first,
    then third-party cells (the published figures show them carrying hospitals' pools too); third-party
    platforms book in third-party cells; what is left of a hospital's third-party cell came through the
    hospital's own channel.
    """
    section = scenario.booking
    if section is None:
        return ()
    apps = {row.app: scaled(row.bookings, scale) for row in section.by_app}
    online_apps = [name for name in apps if app_channels.get(name, "online_12320") == "online_12320"]
    other_apps = [name for name in apps if name not in online_apps]
    cells: list[BookingCell] = []

    def take(pool: list[str], demand: int, hospital: str, channel: str) -> int:
        for app in pool:
            if demand == 0:
                break
            used = min(apps[app], demand)
            if used:
                cells.append(BookingCell(hospital, channel, app, used))
                apps[app] -= used
                demand -= used
        return demand

    rows = [(row.hospital, {ch: scaled(getattr(row, ch), scale) for ch in
                            ("online_12320", "phone", "clinic", "third_party")}) for row in section.by_hospital]
    for hospital, counts in rows:
        left = take(online_apps, counts["online_12320"], hospital, "online_12320")
        if left:  # online bookings beyond what the listed apps made came through unlisted 12320 fronts
            cells.append(BookingCell(hospital, "online_12320", None, left))
        for channel in ("phone", "clinic"):
            if counts[channel]:
                cells.append(BookingCell(hospital, channel, None, counts[channel]))
    for hospital, counts in rows:
        left = take(other_apps, counts["third_party"], hospital, "third_party")
        left = take(online_apps, left, hospital, "third_party")
        if left:
            cells.append(BookingCell(hospital, "third_party", None, left))
    unplaced = {app: count for app, count in apps.items() if count}
    if unplaced:
        raise ValidationFailed(f"app bookings exceed the hospitals' online and third-party bookings: {unplaced}",
                               field="booking.by_app", rule="scenario.infeasible")
    return tuple(cells)


# The categories a call of another city of the province is given: the bulletin reports only their number.
OTHER_CITY_CATEGORIES = ("consultation", "manual_service")
CATEGORY_ORDER = ("consultation", "complaint", "phone_booking", "manual_service", "crisis_intervention",
                  "self_service_voice")


def line_name(city: str) -> str:
    """The name the simulated telephony system gives a city's 12320 line."""
    return f"12320-{city}"


def plan_hotline(scenario: Scenario, scale: Decimal) -> HotlinePlan | None:
    """Every scaled call a city and a category (expected()'s rules): the region city's calls are its scaled
    categories, its phone-booking calls one per phone booking when the scenario books (else scaled too).

    A scenario that books but states no hotline still has its phone bookings made on calls (an agent books
    for a resident only within a call): the region city's line alone, and no call but theirs — so the month's
    hotline figures are its phone-booking calls, one per phone booking, as the scenario format's rule derives
    them from the booking table."""
    section = scenario.hotline
    region = scenario.region.code
    if section is None:
        if scenario.booking is None:
            return None
        return HotlinePlan(lines=((line_name(region), region, scenario.region.name),), region_city=region,
                           cells=(), phone_bookings_follow_bookings=True)
    categories = section.calls_by_category
    follows = scenario.booking is not None
    cells = [CallCell(region, category, scaled(getattr(categories, category), scale)) for category in CATEGORY_ORDER
             if not (follows and category == "phone_booking")]
    for row in section.calls_by_city:
        if row.city == region:
            continue
        shares = spread(scaled(row.calls, scale), len(OTHER_CITY_CATEGORIES))
        cells += [CallCell(row.city, category, count) for category, count in zip(OTHER_CITY_CATEGORIES, shares,
                                                                                 strict=True)]
    lines = tuple((line_name(row.city), row.city, row.name) for row in section.calls_by_city)
    if region not in {row.city for row in section.calls_by_city}:
        lines += ((line_name(region), region, scenario.region.name),)
    orders = None
    if section.work_orders is not None:
        orders = WorkOrderPlan(scaled(section.work_orders.city_12345, scale),
                               scaled(section.work_orders.province_12345, scale),
                               scaled(categories.complaint, scale))
    return HotlinePlan(lines=lines, region_city=region, cells=tuple(cell for cell in cells if cell.count),
                       phone_bookings_follow_bookings=follows, work_orders=orders)


def spread(count: int, parts: int) -> list[int]:
    """`count` in `parts` as even as whole numbers go, the larger shares first."""
    base, extra = divmod(count, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def plan_month(scenario: Scenario, scale: Decimal, app_channels: dict[str, str] | None = None) -> MonthPlan:
    if not (Decimal(0) < scale <= 1):
        raise ValidationFailed(f"scale must be in (0, 1], got {scale}", field="scale", value=str(scale),
                               rule="scale.range")
    year, month = (int(part) for part in scenario.month.split("-"))
    days = calendar.monthrange(year, month)[1]
    units: list[UnitPlan] = []
    cumulative_target = 0
    if scenario.collection is not None:
        rows: list[CollectionRow] = [*scenario.collection.districts, *scenario.collection.hospitals]
        units = [plan_unit(row, scale, days) for row in rows]
        cumulative_target = scaled(scenario.collection.cumulative_accepted_at_month_end, scale)
    bookings = plan_bookings(scenario, scale, app_channels or {})
    plan = MonthPlan(
        month=date(year, month, 1),
        days_in_month=days,
        scale=scale,
        units=tuple(units),
        cumulative_accepted_target=cumulative_target,
        bookings=bookings,
        bookings_cumulative_target=scaled(scenario.booking.cumulative_at_month_end, scale) if scenario.booking else 0,
        hotline=plan_hotline(scenario, scale),
    )
    if plan.accepted_in_month > plan.cumulative_accepted_target and scenario.collection is not None:
        raise ValidationFailed("the month accepts more records than the cumulative total at its end",
                               field="collection.cumulative_accepted_at_month_end", rule="scenario.infeasible")
    return plan
