"""The bulletin's 远程医疗系统数据统计: printed in every edition between the booking and the data-collection
tables, written to the JSON edition in the scenario format, gathered from the telemed room and the pathology
room's totals, and checked for figures that cannot all be true."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import docx
import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.registry import service as registry_service
from cityhealth.reporting.checks import TableWarning, check
from cityhealth.reporting.model import BulletinData, Pathology, TelemedNetwork
from cityhealth.reporting.service import Edition, render
from cityhealth.reporting.sources import gather
from cityhealth.reporting.telemed_passage import TITLE
from cityhealth.telemed import pathology_statistics, statistics
from cityhealth.telemed.statistics_schemas import OpeningBalanceIn
from tests.reporting.expected import expected
from tests.telemed.support import join, organization, requester, submit

BOOKING_TITLE = "2022 年 6 月分途径预约情况统计"
DISTRICTS_TITLE = "2022年6月南京市卫生信息平台数据采集情况（区）"
# One figure of each paragraph, as the Nanjing issue prints it.
FIGURES = (
    "南京市远程会诊平台共有成员单位 50 家",
    "玄武区、秦淮区、鼓楼区尚未接入",
    "连接南京市、马鞍山市、镇江市、扬州市 4 个城市",
    "除秦淮区外 11 个区的社区卫生服务中心",
    "上传心电病例 76797 例",
    "江苏省人民医院 32788 例、南京市江宁医院 23254 例、南京医科大学第二附属医院 11328 例",
    "采集检验报告 983496 份，流转标本 14265 份",
    "影像 92134323 幅，开展远程影像会诊 399 例",
    "召开病例讨论会 8 次，开展视频讲座 5 次",
)


def _in_order(text: str) -> None:
    assert text.index(BOOKING_TITLE) < text.index(TITLE) < text.index(DISTRICTS_TITLE)
    for figure in FIGURES:
        assert figure in text, figure


def test_markdown_prints_the_section_after_booking_and_before_collection(nanjing: BulletinData) -> None:
    _in_order(render(nanjing, Edition.MD).decode("utf-8"))


def test_html_prints_the_section_after_booking_and_before_collection(nanjing: BulletinData) -> None:
    page = render(nanjing, Edition.HTML).decode("utf-8")
    _in_order(page)
    assert '<section class="passage" id="telemed">' in page


def test_docx_prints_the_section_after_booking_and_before_collection(nanjing: BulletinData) -> None:
    document = docx.Document(io.BytesIO(render(nanjing, Edition.DOCX)))
    _in_order("\n".join(paragraph.text for paragraph in document.paragraphs))


def test_the_json_edition_writes_the_section_in_the_scenario_format(
    nanjing: BulletinData, nanjing_scenario: dict[str, Any]
) -> None:
    written = json.loads(render(nanjing, Edition.JSON))
    assert list(written) == list(nanjing_scenario)
    assert json.dumps(written["telemed"], ensure_ascii=False) == json.dumps(
        nanjing_scenario["telemed"], ensure_ascii=False
    )  # key order too


def test_a_month_without_pathology_figures_prints_the_networks_only(nanjing: BulletinData) -> None:
    assert nanjing.telemed is not None
    data = nanjing.model_copy(update={"telemed": nanjing.telemed.model_copy(update={"pathology": None})})
    text = render(data, Edition.MD).decode("utf-8")
    assert "远程心电平台" in text
    assert "病理" not in text
    assert "pathology" not in json.loads(render(data, Edition.JSON))["telemed"]


# --- checks ---


def _codes(warnings: list[TableWarning]) -> set[tuple[str, str, str | None]]:
    return {(warning.code, warning.table, warning.row) for warning in warnings}


def _with_network(data: BulletinData, key: str, **changes: Any) -> BulletinData:
    assert data.telemed is not None
    network: TelemedNetwork = getattr(data.telemed, key)
    return data.model_copy(update={"telemed": data.telemed.model_copy(
        update={key: network.model_copy(update=changes)})})


def test_the_nanjing_section_adds_up(nanjing: BulletinData) -> None:
    assert {code for code in _codes(check(nanjing)) if code[1].startswith("telemed")} == set()


def test_members_by_kind_exceeding_the_members_are_flagged(nanjing: BulletinData) -> None:
    data = _with_network(nanjing, "ecg", members=19)  # 13 tertiary + 7 metro-area members
    assert _codes(check(data)) == {("kinds_exceed_members", "telemed.ecg", None)}


def test_kinds_not_adding_up_to_the_members_counted_are_flagged(nanjing: BulletinData) -> None:
    data = _with_network(nanjing, "consultation", members_counted=51)
    assert _codes(check(data)) == {("kinds_not_members", "telemed.consultation", None)}
    assert "共有成员单位 51 家" in render(data, Edition.MD).decode("utf-8")  # printed as the platform holds it


def test_top_uploaders_exceeding_the_months_volume_are_flagged(nanjing: BulletinData) -> None:
    data = _with_network(nanjing, "lab", reports_month=500000)  # the top three alone sent 565,817
    assert _codes(check(data)) == {("top_exceed_volume", "telemed.lab", None)}


def test_areas_covered_and_not_that_miss_some_of_the_citys_areas_are_flagged(nanjing: BulletinData) -> None:
    data = _with_network(nanjing, "imaging", areas_covered=9)
    assert _codes(check(data)) == {("areas_not_all", "telemed.imaging", None)}


# --- gathered from the platform ---


@dataclass(frozen=True)
class Totals:
    hospitals: int
    experts: int
    doctors: int
    cases: int
    reports: int
    case_discussions: int
    video_lectures: int


def _pathology_room(monkeypatch: pytest.MonkeyPatch, asked: list[tuple[str, datetime]]) -> None:
    """The pathology room's totals stood in for, each call recorded: pathology_totals(session, city, until)."""

    async def pathology_totals(session: Any, city_code: str, until: datetime) -> Totals:
        asked.append((city_code, until))
        return Totals(3, 4, 5, 6, 7, 1, 2)

    monkeypatch.setattr(pathology_statistics, "pathology_totals", pathology_totals)


async def test_the_json_edition_is_what_expected_makes_of_the_hand_built_month(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, datetime]] = []
    _pathology_room(monkeypatch, asked)
    await join(app, await organization(app, "320102"), "both", network="teleconsultation", kind="tertiary")
    await join(app, await organization(app, "320106"), "requester", network="teleconsultation",
               kind="community_health_centre")
    async with app.state.database.transaction() as session:
        await statistics.record_opening_balance(
            session, app.state.clock, None, "teleconsultation",
            OpeningBalanceIn(as_of=date(2022, 5, 31), consultations=5), operator="test")
    busy = await requester(app, area_code="320102")  # an ECG requester, tertiary by default
    await join(app, await organization(app, "320106"), "reading_centre", kind="secondary_or_above")
    await join(app, await organization(app), "requester", kind="metro_city", city_code="340500",
               area_code="340500")
    for _ in range(2):
        await submit(client, busy)
    await join(app, await organization(app, "320111"), "requester", network="imaging", kind="secondary_or_above",
               area_code="3201JB")
    async with app.state.database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
        hospital = (await registry_service.organization_names(session, [busy.organization_id]))[
            busy.organization_id]
    written = json.loads(render(data, Edition.JSON))

    by_hand = {"telemed": {
        "consultation": {
            "members_by_kind": {"nanjing_secondary_plus": 1, "community": 1, "metro_city": 0, "aid": 0, "other": 0},
            "areas_not_covered": ["320111", "3201JB"],
            "areas_covered": 2,
            "consultations_cumulative": 5,
        },
        "ecg": {
            "members": 3,
            "cities": ["南京市", "马鞍山市"],
            "members_by_kind": {"nanjing_tertiary": 1, "metro_city": 1},
            "areas_not_covered": ["320111", "3201JB"],
            "areas_covered": 2,
            "cases_month": 2,
            "consultations_month": 0,
            "top_uploaders": [{"hospital": hospital, "count": 2}],
        },
        "lab": {
            "members": 0,
            "members_by_kind": {"nanjing_secondary_plus": 0},
            "areas_not_covered": ["320102", "320106", "320111", "3201JB"],
            "areas_covered": 0,
            "reports_month": 0,
            "specimens_routed_month": 0,
            "top_uploaders": [],
        },
        "imaging": {
            "members": 1,
            "members_by_kind": {"nanjing_secondary_plus": 1},
            "areas_not_covered": ["320102", "320106", "320111"],
            "areas_covered": 1,
            "reports_month": 0,
            "images_month": 0,
            "consultations_month": 0,
            "top_uploaders": [],
        },
        "pathology": {"hospitals": 3, "experts": 4, "doctors": 5, "cases": 6, "reports": 7, "case_discussions": 1,
                      "video_lectures": 2},
    }}
    wanted = expected(by_hand, 1)["telemed"]
    assert json.dumps(written["telemed"], ensure_ascii=False) == json.dumps(wanted, ensure_ascii=False)
    assert list(written)[-2:] == ["telemed", "collection"]
    assert asked == [("320100", datetime(2022, 6, 30, 23, 59, 59, 999999, tzinfo=BUSINESS_TZ))]  # June's last instant
    assert "南京市远程会诊平台共有成员单位 2 家" in render(data, Edition.MD).decode("utf-8")


async def test_a_platform_without_telemed_has_no_section(app: FastAPI) -> None:
    await organization(app)  # the areas, and nothing of telemed
    async with app.state.database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
    assert data.telemed is None
    assert TITLE not in render(data, Edition.MD).decode("utf-8")


async def test_pathology_comes_from_the_pathology_rooms_totals(app: FastAPI) -> None:
    await join(app, await organization(app, "320102"), "requester", kind="tertiary")
    async with app.state.database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
    assert data.telemed is not None
    # Nothing of pathology held yet: its totals, all nought, from the pathology room's own function.
    assert data.telemed.pathology == Pathology(hospitals=0, experts=0, doctors=0, cases=0, reports=0,
                                               case_discussions=0, video_lectures=0)
