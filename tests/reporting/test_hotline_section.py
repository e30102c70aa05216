"""The bulletin's hotline section: first among the statistics in every edition, the seed's two paragraphs in
the project's words; the JSON edition carries `hotline` in the scenario format."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import docx
import pytest
from pydantic import ValidationError

from cityhealth.reporting.model import BulletinData, WorkOrderPerformance
from cityhealth.reporting.service import Edition, render
from cityhealth.reporting.tables import layout

TITLE = "南京 12320 卫生热线 2022 年 6 月数据统计"
BOOKING_TITLE = "2022 年 6 月预约挂号服务统计"
BY_CATEGORY = ("按来电类别统计：咨询（不含专家咨询） 53513 个；医疗服务投诉 752 个；电话预约 249261 个；"
               "人工服务 142036 个；心理危机干预 294 个；自助语音问答 6932 个。")
WORK_ORDERS = "本月热线受理工单：市 12345 转来 6679 件；省 12345 转来 1727 件；热线自接 752 件。"
BY_CITY = "全省各市 12320 热线合计接听 487634 人次，分城市为：南京市 452788 人次；苏州市 34091 人次；南通市 755 人次。"


def _without_work_orders(data: BulletinData) -> BulletinData:
    assert data.hotline is not None
    return data.model_copy(update={"hotline": data.hotline.model_copy(update={"work_orders": None})})


def test_the_passage_gives_the_region_citys_categories_work_orders_and_the_province_by_city(
        nanjing: BulletinData) -> None:
    printed = layout(nanjing)
    assert printed.passages[0].title == TITLE  # the first passage; telemed's follows the booking tables
    first, second = printed.passages[0].paragraphs
    assert first.startswith("6 月份，南京 12320 卫生热线共接听来电 452788 个。")
    assert BY_CATEGORY in first
    assert first.endswith(WORK_ORDERS)
    assert second.endswith(BY_CITY)


def test_the_passage_gives_the_months_on_time_closure_and_satisfaction_when_the_platform_has_them(
        nanjing: BulletinData) -> None:
    assert nanjing.hotline is not None
    worked = WorkOrderPerformance(closed=40, closed_on_time=38, on_time_rate_pct=Decimal("95.00"), callbacks=30,
                                  satisfied=25, basically_satisfied=3, dissatisfied=2,
                                  satisfaction_rate_pct=Decimal("93.33"))
    data = nanjing.model_copy(update={"hotline": nanjing.hotline.model_copy(
        update={"work_order_performance": worked})})
    first = layout(data).passages[0].paragraphs[0]
    assert first.endswith(WORK_ORDERS + "当月办结工单 40 件，在办理时限内办结 38 件，按时办结率 95.00%；回访 30 件，"
                          "其中满意 25 件、基本满意 3 件、不满意 2 件，满意率 93.33%。")
    # Printed only: the JSON edition stays the scenario format.
    assert json.loads(render(data, Edition.JSON))["hotline"] == json.loads(render(nanjing, Edition.JSON))["hotline"]


def test_without_work_order_figures_the_passage_says_nothing_of_them(nanjing: BulletinData) -> None:
    first = layout(_without_work_orders(nanjing)).passages[0].paragraphs[0]
    assert first.endswith(BY_CATEGORY)
    assert "工单" not in first


def test_markdown_prints_the_hotline_first_among_the_statistics(nanjing: BulletinData) -> None:
    text = render(nanjing, Edition.MD).decode("utf-8")
    assert text.index("## 统计数据") < text.index(f"### {TITLE}") < text.index(BOOKING_TITLE)
    assert BY_CITY in text


def test_html_prints_the_hotline_first_among_the_statistics(nanjing: BulletinData) -> None:
    page = render(nanjing, Edition.HTML).decode("utf-8")
    section = re.search(r'<section class="passage" id="hotline">(.*?)</section>', page, re.S)
    assert section is not None
    assert f"<h3>{TITLE}</h3>" in section[1]
    assert [p.strip() for p in re.findall(r"<p>(.*?)</p>", section[1], re.S)] == list(
        layout(nanjing).passages[0].paragraphs)
    assert page.index('class="statistics"') < section.start() < page.index(BOOKING_TITLE)


def test_docx_prints_the_hotline_first_among_the_statistics(nanjing: BulletinData) -> None:
    texts = [paragraph.text for paragraph in docx.Document(io.BytesIO(render(nanjing, Edition.DOCX))).paragraphs]
    title = texts.index(TITLE)
    assert texts.index("统计数据") < title < texts.index(BOOKING_TITLE)
    assert texts[title + 2].endswith(BY_CITY)


def test_json_carries_the_hotline_in_the_scenario_format(nanjing: BulletinData,
                                                          nanjing_scenario: dict[str, Any]) -> None:
    exported = json.loads(render(nanjing, Edition.JSON))
    assert list(exported)[:6] == ["format", "title", "month", "region", "areas", "hotline"]
    assert exported["hotline"] == nanjing_scenario["hotline"]


def test_json_leaves_out_work_orders_the_platform_does_not_compute(nanjing: BulletinData,
                                                                    nanjing_scenario: dict[str, Any]) -> None:
    exported = json.loads(render(_without_work_orders(nanjing), Edition.JSON))
    assert list(exported["hotline"]) == ["calls_by_city", "calls_by_category"]
    assert exported["hotline"]["calls_by_category"] == nanjing_scenario["hotline"]["calls_by_category"]


def test_the_region_city_comes_first_then_the_busiest_cities(nanjing_scenario: dict[str, Any]) -> None:
    hotline = nanjing_scenario["hotline"]
    cities = [{"city": "320600", "name": "南通市", "calls": 755}, {"city": "320200", "name": "无锡市", "calls": 40000},
              *hotline["calls_by_city"][:2]]
    data = BulletinData.model_validate(nanjing_scenario | {"hotline": hotline | {"calls_by_city": cities}})
    exported = json.loads(render(data, Edition.JSON))
    assert [row["city"] for row in exported["hotline"]["calls_by_city"]] == ["320100", "320200", "320500", "320600"]


def test_a_region_city_whose_categories_do_not_make_its_calls_is_refused(nanjing_scenario: dict[str, Any]) -> None:
    hotline = nanjing_scenario["hotline"]
    categories = hotline["calls_by_category"] | {"crisis_intervention": 631294}  # the seed's misprint
    with pytest.raises(ValidationError, match="sum to 1083788, not to its 452788 calls"):
        BulletinData.model_validate(nanjing_scenario | {"hotline": hotline | {"calls_by_category": categories}})
