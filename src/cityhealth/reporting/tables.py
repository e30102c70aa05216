"""The bulletin's tables as printed: row order, columns, wording and cell text, shared by every edition.

Everything the seed bulletin (南京卫生信息化简报 2022年第7期) prints in its statistics is decided here
once — the ordering rules, the Chinese titles and notes, "/" for a rate that is not measured, 亿 for the
cumulative total — so the Markdown, HTML and DOCX editions cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from cityhealth.reporting import telemed_passage
from cityhealth.reporting.model import (
    AppBookings,
    BookingSection,
    BulletinData,
    CityCalls,
    CollectionSection,
    DistrictCollection,
    HospitalBookings,
    HospitalCollection,
    HotlineSection,
    WorkOrderPerformance,
)

CHART_TOP = 15  # hospital charts show the largest 15; the tables always list every row
# The hotline's six call categories as the bulletin names them, in its order (domain.md §5).
CALL_CATEGORIES = (
    ("consultation", "咨询（不含专家咨询）"),
    ("complaint", "医疗服务投诉"),
    ("phone_booking", "电话预约"),
    ("manual_service", "人工服务"),
    ("crisis_intervention", "心理危机干预"),
    ("self_service_voice", "自助语音问答"),
)
WORK_ORDER_SOURCES = (
    ("city_12345", "市 12345 转来"),
    ("province_12345", "省 12345 转来"),
    ("self_received", "热线自接"),
)
BOOKING_CHANNELS = (
    ("online_12320", "12320 在线预约"),
    ("phone", "电话预约"),
    ("clinic", "诊间预约"),
    ("third_party", "第三方"),
)
NOT_MEASURED = "/"  # printed for a rate whose unit is not enrolled or has no records (domain.md §3)
_YI = Decimal(100_000_000)
_CENT = Decimal("0.01")


# --- ordering: the one place where the printed order of every table is defined ---


def booking_order(row: HospitalBookings) -> tuple[int, int, str]:
    """小计 descending; ties by 12320 online bookings descending, then name (the seed's order for its tie at 15)."""
    return (-row.subtotal, -row.online_12320, row.hospital)


def app_order(row: AppBookings) -> tuple[int, str]:
    return (-row.bookings, row.app)


def collection_order(row: DistrictCollection | HospitalCollection) -> tuple[int, str]:
    """数据上传量 descending, ties by name."""
    return (-row.uploaded_records, row.label)


def ordered(data: BulletinData) -> BulletinData:
    """The same data with every table's rows in printed order (the JSON edition is written in this order too)."""
    update: dict[str, object] = {}
    if data.booking is not None:
        update["booking"] = data.booking.model_copy(update={
            "by_hospital": sorted(data.booking.by_hospital, key=booking_order),
            "by_app": sorted(data.booking.by_app, key=app_order),
        })
    if data.collection is not None:
        update["collection"] = data.collection.model_copy(update={
            "districts": sorted(data.collection.districts, key=collection_order),
            "hospitals": sorted(data.collection.hospitals, key=collection_order),
        })
    if data.hotline is not None:
        update["hotline"] = data.hotline.model_copy(update={
            "calls_by_city": sorted(data.hotline.calls_by_city, key=city_calls_order(data.region.code)),
        })
    return data.model_copy(update=update)


def city_calls_order(region_code: str) -> Callable[[CityCalls], tuple[int, int, str]]:
    """The region city first (the bulletin's own line), then the other cities by calls descending, then code."""
    def key(row: CityCalls) -> tuple[int, int, str]:
        return (0 if row.city == region_code else 1, -row.calls, row.city)

    return key


# --- cell text ---


def percent_cell(value: Decimal | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.2f}%"


def yi(count: int) -> str:
    """A count in 亿 (10^8) with two decimals, rounded half up: 15931000000 → "159.31"."""
    return str((Decimal(count) / _YI).quantize(_CENT, rounding=ROUND_HALF_UP))


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --- the printed structures ---


@dataclass(frozen=True)
class Column:
    """A column; `sub` set means it sits under a spanning group heading (门急诊信息 → 人次)."""

    group: str
    sub: str | None = None
    numeric: bool = True

    @property
    def label(self) -> str:
        return self.group if self.sub is None else f"{self.group} {self.sub}"


@dataclass(frozen=True)
class HeaderCell:
    text: str
    span: int
    has_subcolumns: bool


def header_groups(columns: tuple[Column, ...]) -> list[HeaderCell]:
    """The first header row: consecutive columns of one group merged into one cell."""
    cells: list[HeaderCell] = []
    for column in columns:
        if column.sub is not None and cells and cells[-1].has_subcolumns and cells[-1].text == column.group:
            last = cells[-1]
            cells[-1] = HeaderCell(last.text, last.span + 1, True)
        else:
            cells.append(HeaderCell(column.group, 1, column.sub is not None))
    return cells


@dataclass(frozen=True)
class Chart:
    """A bar chart of one table; categories are in table order, so category i is the table's rank i + 1."""

    key: str
    title: str
    categories: tuple[str, ...]
    series: tuple[tuple[str, tuple[int, ...]], ...]
    unit: str


@dataclass(frozen=True)
class Table:
    key: str  # the scenario-format path it prints, e.g. "booking.by_hospital"
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    row_names: tuple[str, ...]  # the unit each row is about, for warnings
    subtitle: str | None = None
    total: tuple[str, ...] | None = None  # the 合计 row
    closing: str | None = None  # a line across the table's full width under it ("合计: 83192")
    note: str | None = None  # printed under the table ("(截止 6 月底, …)")
    chart: Chart | None = None


@dataclass(frozen=True)
class Passage:
    """Statistics the seed prints as prose, not as a table: a heading and its paragraphs."""

    key: str  # the scenario-format section it prints, e.g. "hotline"
    title: str
    paragraphs: tuple[str, ...]
    before: str | None = None  # the key of the table it is printed before; None: first among the statistics


@dataclass(frozen=True)
class Layout:
    masthead: str  # 南京卫生信息化简报
    publisher: str  # 南京市卫生信息中心
    tables: tuple[Table, ...]  # in the seed's order
    passages: tuple[Passage, ...] = ()  # each first among the statistics or before its table (print_order)


def print_order(printed: Layout) -> list[Passage | Table]:
    """The statistics as printed: passages placed first, then the tables, each passage before the table it
    names (one whose table is left out comes last, so nothing of the data is dropped)."""
    keys = {table.key for table in printed.tables}
    items: list[Passage | Table] = [p for p in printed.passages if p.before is None]
    for table in printed.tables:
        items += [p for p in printed.passages if p.before == table.key]
        items.append(table)
    return items + [p for p in printed.passages if p.before is not None and p.before not in keys]


def masthead_of(data: BulletinData) -> str:
    return f"{data.region.name.removesuffix('市')}卫生信息化简报"


def publisher_of(data: BulletinData) -> str:
    return f"{data.region.name}卫生信息中心"


def layout(data: BulletinData) -> Layout:
    """The printed statistics of a month, in the seed's order; sections the data lacks are left out."""
    data = ordered(data)
    passages: tuple[Passage, ...] = (hotline_passage(data, data.hotline),) if data.hotline is not None else ()
    if data.telemed is not None:  # after the booking tables, before data collection's (the seed's order)
        passages += (Passage(key="telemed", title=telemed_passage.TITLE, before="collection.districts",
                             paragraphs=telemed_passage.telemed_paragraphs(data, data.telemed)),)
    tables: list[Table] = []
    if data.booking is not None:
        tables.append(booking_table(data, data.booking))
        tables.append(app_table(data, data.booking))
    if data.collection is not None:
        tables.append(collection_table(data, data.collection, districts=True))
        tables.append(collection_table(data, data.collection, districts=False))
    return Layout(masthead=masthead_of(data), publisher=publisher_of(data), tables=tuple(tables),
                  passages=passages)


def hotline_passage(data: BulletinData, section: HotlineSection) -> Passage:
    """The hotline's month in two paragraphs, as the seed lays it out: the region city's line by category
    (and its work orders by source, with their on-time closure and satisfaction), then the province's lines
    city by city."""
    city = data.region.name.removesuffix("市")
    month = f"{data.month_number} 月"
    categories = section.calls_by_category
    by_category = "；".join(f"{label} {getattr(categories, field)} 个" for field, label in CALL_CATEGORIES)
    first = (f"{month}份，{city} 12320 卫生热线共接听来电 {section.calls_of(data.region.code)} 个。"
             f"按来电类别统计：{by_category}。")
    if section.work_orders is not None:
        orders = "；".join(f"{label} {getattr(section.work_orders, field)} 件" for field, label in WORK_ORDER_SOURCES)
        first += f"本月热线受理工单：{orders}。"
    if section.work_order_performance is not None:
        first += work_order_sentence(section.work_order_performance)
    paragraphs = [first]
    if section.calls_by_city:
        cities = "；".join(f"{row.name} {row.calls} 人次" for row in section.calls_by_city)
        total = sum(row.calls for row in section.calls_by_city)
        paragraphs.append(f"{month}份，全省各市 12320 热线合计接听 {total} 人次，分城市为：{cities}。")
    return Passage(key="hotline", title=f"{city} 12320 卫生热线 {data.year_number} 年 {month}数据统计",
                   paragraphs=tuple(paragraphs))


def work_order_sentence(worked: WorkOrderPerformance) -> str:
    """The month's closings judged by their deadlines, and the callers' satisfaction when called back."""
    return (f"当月办结工单 {worked.closed} 件，在办理时限内办结 {worked.closed_on_time} 件，"
            f"按时办结率 {percent_cell(worked.on_time_rate_pct)}；回访 {worked.callbacks} 件，其中满意 "
            f"{worked.satisfied} 件、基本满意 {worked.basically_satisfied} 件、不满意 {worked.dissatisfied} 件，"
            f"满意率 {percent_cell(worked.satisfaction_rate_pct)}。")


def booking_table(data: BulletinData, section: BookingSection) -> Table:
    rows = section.by_hospital
    channel_totals = [sum(getattr(row, field) for row in rows) for field, _ in BOOKING_CHANNELS]
    return Table(
        key="booking.by_hospital",
        title=f"{data.year_number} 年 {data.month_number} 月预约挂号服务统计",
        columns=(
            Column("序号"), Column("单位", numeric=False),
            *(Column(label) for _, label in BOOKING_CHANNELS),
            Column("小计"),
        ),
        rows=tuple(
            (str(seq), row.hospital, *(str(getattr(row, field)) for field, _ in BOOKING_CHANNELS), str(row.subtotal))
            for seq, row in enumerate(rows, start=1)
        ),
        row_names=tuple(row.hospital for row in rows),
        total=("", "合计", *(str(total) for total in channel_totals), str(sum(channel_totals))),
        note=f"(截止 {data.month_number} 月底, 总预约挂号量为 {section.cumulative_at_month_end} 次)",
        chart=Chart(
            key="booking.by_hospital",
            title=f"{data.month_number} 月预约挂号量前 {CHART_TOP} 位医院（按途径）",
            categories=tuple(row.hospital for row in rows[:CHART_TOP]),
            series=tuple(
                (label, tuple(getattr(row, field) for row in rows[:CHART_TOP])) for field, label in BOOKING_CHANNELS
            ),
            unit="次",
        ),
    )


def app_table(data: BulletinData, section: BookingSection) -> Table:
    """分途径: the seed prints the apps in two side-by-side column pairs, the left one filled first."""
    apps = section.by_app
    numbered = [(str(seq), app.app, str(app.bookings)) for seq, app in enumerate(apps, start=1)]
    half = (len(numbered) + 1) // 2
    left, right = numbered[:half], numbered[half:]
    blank = ("", "", "")
    rows = tuple((*left[i], *(right[i] if i < len(right) else blank)) for i in range(half))
    pair = (Column("序号"), Column("名称", numeric=False), Column("预约数量"))
    return Table(
        key="booking.by_app",
        title=f"{data.year_number} 年 {data.month_number} 月分途径预约情况统计",
        subtitle="(不包含 12320 电话预约、医院诊间预约、医院自有途径预约)",
        columns=pair + pair,
        rows=rows,
        row_names=tuple(
            " / ".join(name for name in (left[i][1], right[i][1] if i < len(right) else "") if name)
            for i in range(half)
        ),
        closing=f"合计: {sum(app.bookings for app in apps)}",
        chart=Chart(
            key="booking.by_app",
            title=f"{data.month_number} 月分途径预约数量",
            categories=tuple(app.app for app in apps),
            series=(("预约数量", tuple(app.bookings for app in apps)),),
            unit="次",
        ),
    )


def collection_table(data: BulletinData, section: CollectionSection, *, districts: bool) -> Table:
    units: list[DistrictCollection] | list[HospitalCollection] = section.districts if districts else section.hospitals
    columns = [
        Column("接入单位", numeric=False), Column("数据上传量"), Column("数据上传天数"), Column("实时数据表单上传情况"),
        Column("门急诊信息", "人次"), Column("门急诊信息", "实时数据符合率"),
        Column("出院信息", "人次"), Column("出院信息", "实时数据符合率"),
    ]
    if districts:
        columns += [Column("健康档案累计上传总量", sub) for sub in ("基本信息", "高血压", "糖尿病")]
    rows: list[tuple[str, ...]] = []
    for unit in units:
        cells = [
            unit.label, str(unit.uploaded_records), str(unit.upload_days),
            f"{unit.realtime_forms}/{section.forms_total}",
            str(unit.outpatient_visits), percent_cell(unit.outpatient_conformance_pct),
            str(unit.discharges), percent_cell(unit.discharge_conformance_pct),
        ]
        if isinstance(unit, DistrictCollection):
            records = unit.health_records_cumulative
            cells += [str(records.basic), str(records.hypertension), str(records.diabetes)]
        rows.append(tuple(cells))
    which = "区" if districts else "医院"
    shown = units if districts else units[:CHART_TOP]
    return Table(
        key="collection.districts" if districts else "collection.hospitals",
        title=f"{data.year_number}年{data.month_number}月{data.region.name}卫生信息平台数据采集情况（{which}）",
        columns=tuple(columns),
        rows=tuple(rows),
        row_names=tuple(unit.label for unit in units),
        note=None if districts else (
            f"(截止 {data.month_number} 月底，区及医院累计校验入库数据 "
            f"{yi(section.cumulative_accepted_at_month_end)} 亿条)"
        ),
        chart=Chart(
            key=f"collection.{'districts' if districts else 'hospitals'}",
            title=(
                f"{data.month_number} 月各区数据上传量" if districts
                else f"{data.month_number} 月数据上传量前 {CHART_TOP} 位医院"
            ),
            categories=tuple(unit.label for unit in shown),
            series=(("数据上传量", tuple(unit.uploaded_records for unit in shown)),),
            unit="条",
        ),
    )


@dataclass(frozen=True)
class Issue:
    """The issue's numbering and date, as the editor gives them (the platform does not keep a register)."""

    number: int | None = None  # 第N期, within the year of publication
    total_number: int | None = None  # 总第M期
    published: date | None = None


@dataclass(frozen=True)
class FrontMatter:
    masthead: str  # 南京卫生信息化简报
    issue_line: str | None  # 2022年第7期（总第125期）
    publisher_line: str  # 南京市卫生信息中心 编印
    date_line: str | None  # 2022年7月28日


def front_matter(data: BulletinData, issue: Issue) -> FrontMatter:
    # An issue appears the month after its statistics (June's figures in the July issue), so without a
    # publication date the issue's year is the following month's.
    if issue.published is not None:
        year = issue.published.year
    else:
        year = data.year_number + (1 if data.month_number == 12 else 0)
    parts = []
    if issue.number is not None:
        parts.append(f"{year}年第{issue.number}期")
    if issue.total_number is not None:
        parts.append(f"（总第{issue.total_number}期）" if parts else f"总第{issue.total_number}期")
    return FrontMatter(
        masthead=masthead_of(data),
        issue_line="".join(parts) or None,
        publisher_line=f"{publisher_of(data)} 编印",
        date_line=chinese_date(issue.published) if issue.published is not None else None,
    )
