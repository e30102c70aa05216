"""Every table checks its own sums: the real bulletin passes, each kind of broken figure is named."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from cityhealth.reporting.checks import TableWarning, attainable, check
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.tables import Layout, Table, layout


def _codes(warnings: list[TableWarning]) -> set[tuple[str, str, str | None]]:
    return {(warning.code, warning.table, warning.row) for warning in warnings}


def _with_table(printed: Layout, key: str, **changes: Any) -> Layout:
    tables = tuple(dataclasses.replace(t, **changes) if t.key == key else t for t in printed.tables)
    return dataclasses.replace(printed, tables=tables)


def _table(printed: Layout, key: str) -> Table:
    return next(table for table in printed.tables if table.key == key)


def _with_hospital(data: BulletinData, name: str, **changes: Any) -> BulletinData:
    assert data.collection is not None
    hospitals = [row.model_copy(update=changes) if row.hospital == name else row for row in data.collection.hospitals]
    return data.model_copy(update={"collection": data.collection.model_copy(update={"hospitals": hospitals})})


def test_the_real_bulletin_passes_every_check(nanjing: BulletinData) -> None:
    assert check(nanjing) == []


def test_a_broken_row_subtotal_is_named_by_table_and_row(nanjing: BulletinData) -> None:
    printed = layout(nanjing)
    rows = list(_table(printed, "booking.by_hospital").rows)
    rows[1] = (*rows[1][:-1], "199963")  # 南京鼓楼医院: 20566 + 108701 + 23328 + 47367 = 199962
    warnings = check(nanjing, _with_table(printed, "booking.by_hospital", rows=tuple(rows)))
    assert ("row_sum", "booking.by_hospital", "南京鼓楼医院") in _codes(warnings)
    assert ("column_sum", "booking.by_hospital", "合计") in _codes(warnings)  # the 小计 column no longer adds up
    assert "199963" in str(warnings[0])
    assert "199962" in str(warnings[0])


def test_a_broken_channel_total_is_named(nanjing: BulletinData) -> None:
    printed = layout(nanjing)
    total = list(_table(printed, "booking.by_hospital").total or ())
    total[3] = "249260"  # 电话预约
    warnings = check(nanjing, _with_table(printed, "booking.by_hospital", total=tuple(total)))
    assert _codes(warnings) == {("column_sum", "booking.by_hospital", "合计")}
    assert "电话预约" in warnings[0].message


def test_a_broken_app_total_is_named(nanjing: BulletinData) -> None:
    warnings = check(nanjing, _with_table(layout(nanjing), "booking.by_app", closing="合计: 83193"))
    assert _codes(warnings) == {("column_sum", "booking.by_app", "合计")}


def test_apps_booking_more_than_the_online_channels_are_flagged(nanjing: BulletinData) -> None:
    assert nanjing.booking is not None
    apps = [nanjing.booking.by_app[0].model_copy(update={"bookings": 150000}), *nanjing.booking.by_app[1:]]
    data = nanjing.model_copy(update={"booking": nanjing.booking.model_copy(update={"by_app": apps})})
    assert _codes(check(data)) == {("apps_exceed_channels", "booking.by_app", "合计")}


def test_cumulative_bookings_below_the_months_are_flagged(nanjing: BulletinData) -> None:
    assert nanjing.booking is not None
    booking = nanjing.booking.model_copy(update={"cumulative_at_month_end": 519794})  # the month alone is 519795
    data = nanjing.model_copy(update={"booking": booking})
    assert _codes(check(data)) == {("cumulative_below_month", "booking.by_hospital", None)}


def test_a_rate_without_a_basis_is_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "南京鼓楼医院", outpatient_conformance_basis=None)
    assert _codes(check(data)) == {("pct_without_basis", "collection.hospitals", "南京鼓楼医院")}


def test_a_basis_without_a_rate_is_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "南京市第一医院", discharge_conformance_basis=57550)
    assert _codes(check(data)) == {("basis_without_pct", "collection.hospitals", "南京市第一医院")}


def test_a_rate_above_100_is_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "江苏省中医院", discharge_conformance_pct=Decimal("100.50"))
    assert _codes(check(data)) == {("pct_out_of_range", "collection.hospitals", "江苏省中医院")}


def test_a_rate_no_count_can_produce_is_flagged(nanjing: BulletinData) -> None:
    # 1 conforming out of 3 is 33.33%, 2 is 66.67%: 50.00% is impossible.
    data = _with_hospital(nanjing, "江苏省中医院", discharge_conformance_basis=3, discharge_conformance_pct=Decimal(50))
    assert _codes(check(data)) == {("pct_unattainable", "collection.hospitals", "江苏省中医院")}


def test_more_realtime_forms_than_exist_are_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "南京脑科医院", realtime_forms=12)
    assert _codes(check(data)) == {("forms_over_total", "collection.hospitals", "南京脑科医院")}


def test_more_upload_days_than_the_month_has_are_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "南京脑科医院", upload_days=31)  # June has 30
    assert _codes(check(data)) == {("upload_days_over_month", "collection.hospitals", "南京脑科医院")}


def test_fewer_uploaded_records_than_upload_days_are_flagged(nanjing: BulletinData) -> None:
    data = _with_hospital(nanjing, "南京市职业病防治院", uploaded_records=29)  # it uploaded on 30 days
    assert _codes(check(data)) == {("uploaded_below_floor", "collection.hospitals", "南京市职业病防治院")}


def test_a_district_outside_the_bulletins_areas_is_flagged(nanjing: BulletinData) -> None:
    # (The telemed networks name that area too: their own checks are tests/reporting/test_telemed_section.py's.)
    data = nanjing.model_copy(
        update={"areas": [area for area in nanjing.areas if area.code != "320104"], "telemed": None}
    )
    assert _codes(check(data)) == {("unknown_area", "collection.districts", "秦淮区")}


def test_duplicate_rows_are_flagged(nanjing: BulletinData) -> None:
    assert nanjing.collection is not None
    hospitals = [*nanjing.collection.hospitals, nanjing.collection.hospitals[-1]]
    data = nanjing.model_copy(update={"collection": nanjing.collection.model_copy(update={"hospitals": hospitals})})
    assert _codes(check(data)) == {("duplicate_row", "collection.hospitals", "南京市职业病防治院")}


def test_attainable_rates() -> None:
    assert attainable(Decimal("66.67"), 3)
    assert attainable(Decimal("0.00"), 1)
    assert attainable(Decimal("100.00"), 1)
    assert not attainable(Decimal("50.00"), 3)
    assert not attainable(Decimal("10.00"), 0)
