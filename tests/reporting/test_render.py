"""Each edition of the Nanjing June 2022 bulletin prints the seed's tables: same rows, order and figures."""

from __future__ import annotations

import io
import json
import random
from datetime import date
from typing import Any

import docx
import pytest

from cityhealth.reporting import charts
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.service import Edition, render
from cityhealth.reporting.tables import Chart, Issue
from tests.reporting.tables_in import html_tables, markdown_tables

BOOKING_TITLE = "2022 年 6 月预约挂号服务统计"
APPS_TITLE = "2022 年 6 月分途径预约情况统计"
DISTRICTS_TITLE = "2022年6月南京市卫生信息平台数据采集情况（区）"
HOSPITALS_TITLE = "2022年6月南京市卫生信息平台数据采集情况（医院）"
NEWS = """\
## 六月全市预约挂号逾 51 万人次

7月25日，六月全市预约挂号逾 51 万人次人，
电话预约仍占近一半。<script>alert("x")</script>

## 简讯

- 6月，区域影像平台开展远程影像会诊399例。
- 6月下旬，市卫生信息中心组织数据质量专项核查。

## 页脚

地址：南京市紫竹林3号
"""


def _text(data: BulletinData, edition: Edition, news: str | None = NEWS) -> str:
    return render(data, edition, news, issue=Issue(7, 125, date(2022, 7, 28))).decode("utf-8")


def _shuffled(data: BulletinData) -> BulletinData:
    assert data.booking is not None
    assert data.collection is not None
    generator = random.Random(6)
    by_hospital, by_app = list(data.booking.by_hospital), list(data.booking.by_app)
    districts, hospitals = list(data.collection.districts), list(data.collection.hospitals)
    for rows in (by_hospital, by_app, districts, hospitals):
        generator.shuffle(rows)
    return data.model_copy(update={
        "booking": data.booking.model_copy(update={"by_hospital": by_hospital, "by_app": by_app}),
        "collection": data.collection.model_copy(update={"districts": districts, "hospitals": hospitals}),
    })


# --- JSON edition ---


def test_json_edition_reproduces_the_booking_and_collection_sections(
    nanjing: BulletinData, nanjing_scenario: dict[str, Any]
) -> None:
    exported = json.loads(render(nanjing, Edition.JSON))
    assert exported["booking"] == nanjing_scenario["booking"]
    assert exported["collection"] == nanjing_scenario["collection"]


def test_json_edition_of_the_whole_scenario_is_byte_identical(nanjing: BulletinData, nanjing_text: str) -> None:
    assert render(nanjing, Edition.JSON).decode("utf-8") == nanjing_text


def test_json_edition_orders_rows_by_the_printed_rule(nanjing: BulletinData, nanjing_text: str) -> None:
    assert render(_shuffled(nanjing), Edition.JSON).decode("utf-8") == nanjing_text


def test_json_edition_leaves_out_sections_not_built(nanjing: BulletinData) -> None:
    data = nanjing.model_copy(update={"hotline": None, "telemed": None})
    exported = json.loads(render(data, Edition.JSON, NEWS))
    assert list(exported) == ["format", "title", "month", "region", "areas", "booking", "collection"]
    assert exported["format"] == "cityhealth-scenario/1"


# --- Markdown edition ---


def test_markdown_booking_table_has_every_hospital_in_the_seed_order(
    nanjing: BulletinData, nanjing_scenario: dict[str, Any]
) -> None:
    rows = markdown_tables(_text(nanjing, Edition.MD))[BOOKING_TITLE]
    assert rows[0] == ["序号", "单位", "12320 在线预约", "电话预约", "诊间预约", "第三方", "小计"]
    assert [row[1] for row in rows[1:-1]] == [row["hospital"] for row in nanjing_scenario["booking"]["by_hospital"]]
    assert rows[1] == ["1", "南京市儿童医院", "7875", "98431", "130217", "3775", "240298"]
    assert rows[33:35] == [
        ["33", "建宁路社区卫生服务中心", "15", "0", "0", "0", "15"],
        ["34", "南京市溧水区中医院", "13", "1", "0", "1", "15"],
    ]
    assert rows[-1] == ["", "合计", "50090", "249261", "153599", "66845", "519795"]


def test_markdown_prints_the_seed_notes_and_totals(nanjing: BulletinData) -> None:
    text = _text(nanjing, Edition.MD)
    assert "(截止 6 月底, 总预约挂号量为 29863286 次)" in text
    assert "(不包含 12320 电话预约、医院诊间预约、医院自有途径预约)" in text
    assert "(截止 6 月底，区及医院累计校验入库数据 159.31 亿条)" in text
    apps = markdown_tables(text)[APPS_TITLE]
    assert apps[1] == ["1", "健康南京客户端", "32583", "5", "江苏省预约挂号网", "2829"]
    assert apps[4] == ["4", "12320 快速预约", "3849", "", "", ""]
    assert apps[5][0] == "合计: 83192"


def test_markdown_collection_tables_print_rates_and_slashes_as_the_seed(nanjing: BulletinData) -> None:
    tables = markdown_tables(_text(nanjing, Edition.MD))
    districts, hospitals = tables[DISTRICTS_TITLE], tables[HOSPITALS_TITLE]
    assert [row[0] for row in districts[1:]] == [
        "江宁区", "溧水区", "六合区", "高淳区", "浦口区", "鼓楼区",
        "栖霞区", "雨花台区", "江北新区", "玄武区", "建邺区", "秦淮区",
    ]
    assert districts[1] == [
        "江宁区", "13466971", "30", "6/11", "776460", "78.00%", "5667", "62.00%", "940320", "91231", "33303",
    ]
    assert districts[7] == [
        "栖霞区", "2571590", "29", "7/11", "85879", "46.30%", "925", "/", "666592", "78784", "31004",
    ]
    assert len(hospitals) == 1 + 31
    assert hospitals[21] == ["江苏省省级机关医院", "1632392", "30", "11/11", "75744", "53.30%", "0", "/"]
    assert hospitals[-1] == ["南京市职业病防治院", "22429", "30", "3/11", "979", "92.80%", "9", "88.90%"]


def test_markdown_places_articles_before_and_briefs_after_the_statistics(nanjing: BulletinData) -> None:
    text = _text(nanjing, Edition.MD)
    assert text.startswith(
        "# 南京卫生信息化简报\n\n2022年第7期（总第125期）\n\n南京市卫生信息中心 编印\n\n2022年7月28日\n"
    )
    article = text.index("## 六月全市预约挂号逾 51 万人次")
    statistics = text.index("## 统计数据")
    briefs = text.index("## 简 讯")
    assert article < statistics < text.index(BOOKING_TITLE) < text.index(HOSPITALS_TITLE) < briefs
    assert "- 6月下旬，市卫生信息中心组织数据质量专项核查。" in text
    assert "\\<script\\>" in text
    assert "<script>" not in text


# --- HTML edition ---


def test_html_tables_have_every_row_in_the_seed_order(
    nanjing: BulletinData, nanjing_scenario: dict[str, Any]
) -> None:
    tables = html_tables(_text(nanjing, Edition.HTML))
    booking = tables["booking.by_hospital"]
    assert [row[1] for row in booking[1:-1]] == [row["hospital"] for row in nanjing_scenario["booking"]["by_hospital"]]
    assert booking[1] == ["1", "南京市儿童医院", "7875", "98431", "130217", "3775", "240298"]
    assert booking[-1] == ["", "合计", "50090", "249261", "153599", "66845", "519795"]
    assert tables["booking.by_app"][-1] == ["合计: 83192"]
    districts = tables["collection.districts"]
    assert districts[0] == [
        "接入单位", "数据上传量", "数据上传天数", "实时数据表单上传情况",
        "门急诊信息", "出院信息", "健康档案累计上传总量",
    ]
    assert districts[1] == ["人次", "实时数据符合率", "人次", "实时数据符合率", "基本信息", "高血压", "糖尿病"]
    assert districts[8][0] == "栖霞区"
    assert districts[8][7] == "/"
    assert [row[0] for row in tables["collection.hospitals"][2:]] == [
        row["hospital"] for row in nanjing_scenario["collection"]["hospitals"]
    ]


def test_html_is_self_contained_with_inline_charts(nanjing: BulletinData) -> None:
    page = _text(nanjing, Edition.HTML)
    assert page.count("<svg") == 4
    assert "<link" not in page
    assert "src=" not in page
    assert "<?xml" not in page
    assert "159.31 亿条" in page
    assert "(截止 6 月底, 总预约挂号量为 29863286 次)" in page


def test_html_escapes_the_editors_markdown(nanjing: BulletinData) -> None:
    page = _text(nanjing, Edition.HTML)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "<li>6月，区域影像平台开展远程影像会诊399例。</li>" in page
    assert "<p>地址：南京市紫竹林3号</p>" in page


def test_html_charts_name_the_bars_as_text_whatever_fonts_the_server_has(
    nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    page = _text(nanjing, Edition.HTML)
    booking_chart = page[page.index("<svg"):page.index("</svg>")]
    assert '<text x="' in booking_chart
    assert ">南京市儿童医院</text>" in booking_chart
    assert ">240,298</text>" in booking_chart  # the row's total after its bar
    assert ">12320 在线预约</text>" in booking_chart  # the channel legend
    assert '<table class="legend">' not in page


def test_html_chart_text_is_escaped() -> None:
    chart = Chart(key="k", title="<t>", categories=("<b>&",), series=(("s", (3,)),), unit="次")
    image = charts.render(chart, "svg").image.decode()
    assert "&lt;b&gt;&amp;</text>" in image
    assert "<b>" not in image


def test_chart_ticks_are_round_and_cover_the_largest_bar() -> None:
    assert charts._ticks(240298) == [0, 50000, 100000, 150000, 200000, 250000]
    assert charts._ticks(7) == [0, 2, 4, 6, 8]
    assert charts._ticks(0) == [0, 1]


def test_png_chart_without_a_chinese_font_is_labelled_by_rank(
    nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    chart = Chart(key="k", title="t", categories=("南京市儿童医院", "南京鼓楼医院"),
                  series=(("在线", (5, 1)), ("电话", (2, 0))), unit="次")
    rendered = charts.render(chart, "png")
    assert rendered.ranks_only
    assert rendered.legend == ((1, "南京市儿童医院"), (2, "南京鼓楼医院"))
    assert rendered.image.startswith(b"\x89PNG")
    assert rendered.image == charts.render(chart, "png").image  # same figures, same bytes


def test_docx_without_a_chinese_font_prints_the_legend_beside_each_chart(
    nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    document = docx.Document(io.BytesIO(render(nanjing, Edition.DOCX)))
    legends = [table for table in document.tables if table.rows[0].cells[0].text == "1"
               and len(table.columns) == 2]
    assert len(legends) == 4
    assert [cell.text for cell in legends[0].rows[0].cells] == ["1", "南京市儿童医院"]


# --- DOCX edition ---


def test_docx_opens_with_the_tables_and_charts(nanjing: BulletinData) -> None:
    document = docx.Document(io.BytesIO(render(nanjing, Edition.DOCX, NEWS, issue=Issue(7, 125, date(2022, 7, 28)))))
    tables = {
        tuple(cell.text for cell in table.rows[0].cells): table for table in document.tables
        if table.rows[0].cells[0].text in ("序号", "接入单位")
    }
    booking = tables[("序号", "单位", "12320 在线预约", "电话预约", "诊间预约", "第三方", "小计")]
    assert [cell.text for cell in booking.rows[1].cells] == [
        "1", "南京市儿童医院", "7875", "98431", "130217", "3775", "240298",
    ]
    assert [cell.text for cell in booking.rows[-1].cells] == [
        "", "合计", "50090", "249261", "153599", "66845", "519795",
    ]
    apps = tables[("序号", "名称", "预约数量", "序号", "名称", "预约数量")]
    assert apps.rows[-1].cells[0].text == "合计: 83192"
    districts = next(table for header, table in tables.items() if "健康档案累计上传总量" in header)
    assert [cell.text for cell in districts.rows[1].cells][4:] == [
        "人次", "实时数据符合率", "人次", "实时数据符合率", "基本信息", "高血压", "糖尿病",
    ]
    assert [cell.text for cell in districts.rows[8].cells][:8] == [
        "栖霞区", "2571590", "29", "7/11", "85879", "46.30%", "925", "/",
    ]
    assert len(document.inline_shapes) == 4
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert "(截止 6 月底，区及医院累计校验入库数据 159.31 亿条)" in text
    assert "2022年第7期（总第125期）" in text


# --- order and independence from the source's order ---


@pytest.mark.parametrize("edition", [Edition.MD, Edition.HTML])
def test_row_order_is_the_rule_not_the_sources(nanjing: BulletinData, edition: Edition) -> None:
    assert _text(_shuffled(nanjing), edition) == _text(nanjing, edition)


def test_missing_sections_are_left_out_of_the_printed_bulletin(nanjing: BulletinData) -> None:
    text = _text(nanjing.model_copy(update={"collection": None}), Edition.MD, news=None)
    assert BOOKING_TITLE in text
    assert DISTRICTS_TITLE not in text
    assert "亿条" not in text
    assert "## 简 讯" not in text
