"""Charts worth printing: units on the axis, small bars not hidden by large ones, 300 dpi, text in the SVG."""

from __future__ import annotations

import io
import re

from PIL import Image

from cityhealth.reporting import charts
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.tables import Chart, layout


def _chart(nanjing: BulletinData, key: str) -> Chart:
    chart = next(table.chart for table in layout(nanjing).tables if table.key == key)
    assert chart is not None
    return chart


def test_the_axis_breaks_only_when_the_largest_bars_dwarf_the_next() -> None:
    assert charts.axis_limit([240298, 199962, 46528, 4579, 879]) == 46528  # two bars drawn broken
    assert charts.axis_limit([21646120, 19439769, 12614755, 10383696]) == 21646120  # no break
    assert charts.axis_limit([900, 100, 50]) == 100
    assert charts.axis_limit([10, 0]) == 10  # nothing to compare with a bar of nought
    assert charts.axis_limit([]) == 0


def test_the_smallest_booking_bar_is_wide_enough_to_see(nanjing: BulletinData) -> None:
    chart = _chart(nanjing, "booking.by_hospital")
    svg = charts.render(chart, "svg").image.decode("utf-8")
    rows = {}
    for y, width in re.findall(r'<rect x="[0-9.]+" y="([0-9.]+)" width="([0-9.]+)" height="14"', svg):
        rows[float(y)] = rows.get(float(y), 0.0) + float(width)
    last = rows[max(rows)]
    assert chart.categories[-1] == "南京市江宁医院（湖山路）"
    assert last >= 8  # 879 of an axis to 50,000 over ~580 px; on a 250,000 axis it was a 2 px sliver


def test_broken_bars_carry_the_break_mark_and_their_full_value(nanjing: BulletinData) -> None:
    svg = charts.render(_chart(nanjing, "booking.by_hospital"), "svg").image.decode("utf-8")
    assert svg.count('fill="#ffffff"') == 2  # the cut across each of the two largest bars
    assert ">240,298</text>" in svg
    assert ">199,962</text>" in svg
    assert ">50,000</text>" in svg
    assert ">250,000</text>" not in svg


def test_each_axis_names_its_unit(nanjing: BulletinData) -> None:
    assert ">单位：次</text>" in charts.render(_chart(nanjing, "booking.by_hospital"), "svg").image.decode()
    assert ">单位：条</text>" in charts.render(_chart(nanjing, "collection.hospitals"), "svg").image.decode()


def test_svg_labels_are_text_a_reader_can_select(nanjing: BulletinData) -> None:
    svg = charts.render(_chart(nanjing, "booking.by_hospital"), "svg").image.decode("utf-8")
    assert ">南京市儿童医院</text>" in svg
    assert "<path" not in svg  # no label turned into outlines
    assert "pointer-events" not in svg
    assert "user-select" not in svg


def test_the_png_prints_at_300_dpi_or_more_at_its_printed_width(nanjing: BulletinData) -> None:
    image = Image.open(io.BytesIO(charts.render(_chart(nanjing, "booking.by_hospital"), "png").image))
    assert image.width / (charts.PRINT_WIDTH_CM / 2.54) >= 300
    assert min(image.info["dpi"]) >= 300
