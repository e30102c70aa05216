"""Every table checks its own sums: warnings about figures that do not add up or cannot all be true.

The sum checks read the tables as printed (tables.Layout), so they vouch for what the reader sees, not
for an intermediate value; the plausibility checks read the data. Warnings never change a figure: the
bulletin prints what the platform holds, and the editor decides (a clamped figure would hide the fault).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cityhealth.reporting.model import (
    BookingSection,
    BulletinData,
    CollectionSection,
    DistrictCollection,
    HospitalCollection,
    days_in_month,
)
from cityhealth.reporting.tables import Layout, Table, layout
from cityhealth.reporting.telemed_checks import telemed_checks

_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TableWarning:
    code: str  # stable, e.g. "row_sum"
    table: str  # the scenario-format path of the table, e.g. "booking.by_hospital"
    row: str | None  # the unit's name, "合计" for the total row, None for the table as a whole
    message: str

    def __str__(self) -> str:
        where = self.table if self.row is None else f"{self.table} [{self.row}]"
        return f"{where}: {self.message} ({self.code})"


def check(data: BulletinData, printed: Layout | None = None) -> list[TableWarning]:
    """All warnings for a month's bulletin, in table order; an empty list when everything adds up."""
    printed = printed if printed is not None else layout(data)
    warnings: list[TableWarning] = []
    for table in printed.tables:
        if table.key == "booking.by_hospital":
            warnings += _booking_sums(table)
        elif table.key == "booking.by_app":
            warnings += _app_sum(table)
    if data.booking is not None:
        warnings += _booking_plausibility(data.booking)
    if data.telemed is not None:
        warnings += [TableWarning(*finding) for finding in telemed_checks(data, data.telemed)]
    if data.collection is not None:
        warnings += _collection_plausibility(data, data.collection)
    return warnings


def _number(cell: str) -> int | None:
    try:
        return int(cell)
    except ValueError:
        return None


def _booking_sums(table: Table) -> Iterator[TableWarning]:
    channel_columns = range(2, len(table.columns) - 1)  # 序号, 单位, four channels, 小计
    subtotal_column = len(table.columns) - 1
    column_sums = dict.fromkeys([*channel_columns, subtotal_column], 0)
    for name, row in zip(table.row_names, table.rows, strict=True):
        figures = [_number(row[i]) for i in (*channel_columns, subtotal_column)]
        if any(figure is None for figure in figures):
            yield TableWarning("unreadable_cell", table.key, name, f"a figure is not a whole number: {row}")
            continue
        *channels, subtotal = [figure for figure in figures if figure is not None]
        if subtotal != sum(channels):
            yield TableWarning(
                "row_sum", table.key, name,
                f"小计 {subtotal} is not the sum of its channels {' + '.join(map(str, channels))} = {sum(channels)}",
            )
        for column, figure in zip(column_sums, (*channels, subtotal), strict=True):
            column_sums[column] += figure
    if table.total is None:
        yield TableWarning("missing_total", table.key, "合计", "the table has no 合计 row")
        return
    for column, expected in column_sums.items():
        printed = _number(table.total[column])
        if printed != expected:
            yield TableWarning(
                "column_sum", table.key, "合计",
                f"{table.columns[column].label} total {table.total[column]} is not the column's sum {expected}",
            )


def _app_sum(table: Table) -> Iterator[TableWarning]:
    count_columns = [i for i, column in enumerate(table.columns) if column.group == "预约数量"]
    expected = sum(_number(row[i]) or 0 for row in table.rows for i in count_columns)
    printed = _number((table.closing or "").removeprefix("合计:").strip())
    if printed != expected:
        yield TableWarning(
            "column_sum", table.key, "合计", f"printed {table.closing!r} is not the apps' sum {expected}"
        )


def _duplicates(table: str, names: Iterable[str]) -> Iterator[TableWarning]:
    for name, count in Counter(names).items():
        if count > 1:
            yield TableWarning("duplicate_row", table, name, f"{count} rows for the same unit")


def _booking_plausibility(booking: BookingSection) -> Iterator[TableWarning]:
    yield from _duplicates("booking.by_hospital", (row.hospital for row in booking.by_hospital))
    yield from _duplicates("booking.by_app", (row.app for row in booking.by_app))
    month_total = sum(row.subtotal for row in booking.by_hospital)
    if booking.cumulative_at_month_end < month_total:
        yield TableWarning(
            "cumulative_below_month", "booking.by_hospital", None,
            f"cumulative bookings at month end {booking.cumulative_at_month_end} are fewer than "
            f"the month's own {month_total}",
        )
    # Apps carry only online and third-party bookings, and unlisted apps are not reported: at most equal.
    app_total = sum(row.bookings for row in booking.by_app)
    online_total = sum(row.online_12320 + row.third_party for row in booking.by_hospital)
    if app_total > online_total:
        yield TableWarning(
            "apps_exceed_channels", "booking.by_app", "合计",
            f"bookings by app {app_total} exceed the online and third-party bookings by hospital {online_total}",
        )


def attainable(pct: Decimal, basis: int) -> bool:
    """Whether some count of conforming records out of `basis` rounds (half up) to `pct` percent."""
    if basis <= 0:
        return False
    nearest = int((basis * pct / _HUNDRED).to_integral_value(rounding=ROUND_HALF_UP))
    return any(
        (_HUNDRED * conforming / basis).quantize(_CENT, rounding=ROUND_HALF_UP) == pct
        for conforming in (nearest - 1, nearest, nearest + 1)
        if 0 <= conforming <= basis
    )


def _collection_plausibility(data: BulletinData, section: CollectionSection) -> Iterator[TableWarning]:
    days = days_in_month(data.month)
    area_codes = {area.code for area in data.areas}
    yield from _duplicates("collection.districts", (unit.area for unit in section.districts))
    yield from _duplicates("collection.hospitals", (unit.hospital for unit in section.hospitals))
    for district in section.districts:
        if area_codes and district.area not in area_codes:
            yield TableWarning(
                "unknown_area", "collection.districts", district.name,
                f"area {district.area} is not among the bulletin's areas",
            )
    units: list[tuple[str, DistrictCollection | HospitalCollection]] = [
        *(("collection.districts", unit) for unit in section.districts),
        *(("collection.hospitals", unit) for unit in section.hospitals),
    ]
    for table, unit in units:
        yield from _unit_checks(table, unit, section.forms_total, days)


def _unit_checks(
    table: str, unit: DistrictCollection | HospitalCollection, forms_total: int, days: int
) -> Iterator[TableWarning]:
    name = unit.label
    if unit.realtime_forms > forms_total:
        yield TableWarning(
            "forms_over_total", table, name, f"实时数据表单 {unit.realtime_forms}/{forms_total} exceeds the form count"
        )
    if unit.upload_days > days:
        yield TableWarning(
            "upload_days_over_month", table, name,
            f"数据上传天数 {unit.upload_days} exceeds the {days} days of the month",
        )
    # Each upload day and each form with an accepted record implies at least one uploaded record.
    floor = max(unit.upload_days, unit.realtime_forms)
    if unit.uploaded_records < floor:
        yield TableWarning(
            "uploaded_below_floor", table, name,
            f"数据上传量 {unit.uploaded_records} is below {floor} (its upload days or forms with records)",
        )
    rates = (
        ("门急诊", unit.outpatient_conformance_pct, unit.outpatient_conformance_basis),
        ("出院", unit.discharge_conformance_pct, unit.discharge_conformance_basis),
    )
    for group, pct, basis in rates:
        yield from _rate_checks(table, name, group, pct, basis)


def _rate_checks(table: str, name: str, group: str, pct: Decimal | None, basis: int | None) -> Iterator[TableWarning]:
    if pct is None:
        if basis is not None:
            yield TableWarning(
                "basis_without_pct", table, name, f"{group}实时数据符合率 is '/' but has a basis of {basis} records"
            )
        return
    if basis is None:
        yield TableWarning(
            "pct_without_basis", table, name, f"{group}实时数据符合率 {pct}% has no basis (records measured)"
        )
        return
    if not Decimal(0) <= pct <= _HUNDRED:
        yield TableWarning("pct_out_of_range", table, name, f"{group}实时数据符合率 {pct}% is outside 0–100")
    elif not attainable(pct, basis):
        yield TableWarning(
            "pct_unattainable", table, name,
            f"{group}实时数据符合率 {pct}% cannot arise from any count out of {basis} records",
        )
