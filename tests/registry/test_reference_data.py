from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

# Copied from the scenario (scenarios/nanjing-2022-06.json), whose spelling is authoritative, so that
# this test runs without it; test_expectations_match_the_scenario_file checks the copy when it is there.
BOOKING_HOSPITALS = [
    "南京市儿童医院",
    "南京鼓楼医院",
    "南京鼓楼医院江北国际医院",
    "南京市妇幼保健院",
    "中国医学科学院皮肤病研究所",
    "南京市中医院",
    "南京市第一医院",
    "南京市胸科医院",
    "东南大学附属中大医院",
    "南京市口腔医院",
    "南京医科大学第二附属医院",
    "南京市高淳人民医院",
    "南京市中西医结合医院",
    "南京医科大学附属眼科医院",
    "南京市江宁医院（湖山路）",
    "江苏省肿瘤医院",
    "泰康仙林鼓楼医院",
    "南京市第二医院",
    "江苏省第二中医院",
    "南京明基医院",
    "江苏省中西医结合医院",
    "南京同仁医院",
    "南京市六合区人民医院",
    "江苏省人民医院",
    "南京市高淳中医院",
    "南京江北人民医院",
    "南京雨花口腔医院",
    "东部战区空军医院",
    "南京医科大学附属逸夫医院",
    "江苏省省级机关医院",
    "南京市中心医院",
    "中央门社区卫生服务中心",
    "建宁路社区卫生服务中心",
    "南京市溧水区中医院",
    "南京仁品耳鼻喉专科医院",
    "南京市职业病防治院",
    "南京医科大学友谊整形外科医院",
    "南京市玄武医院",
]
COLLECTION_HOSPITALS = [
    "江苏省中医院",
    "南京鼓楼医院",
    "江苏省人民医院",
    "南京市儿童医院",
    "南京市第一医院",
    "东部战区总医院",
    "东南大学附属中大医院",
    "南京市中医院",
    "南京市妇幼保健院",
    "江苏省肿瘤医院",
    "南京市第二医院",
    "南京医科大学第二附属医院",
    "南京同仁医院",
    "南京明基医院",
    "江苏省中西医结合医院",
    "南京医科大学第四附属医院",
    "南京市中西医结合医院",
    "南京脑科医院",
    "中国医学科学院皮肤病研究所",
    "泰康仙林鼓楼医院",
    "江苏省省级机关医院",
    "南京江北人民医院",
    "南京市口腔医院",
    "江苏省第二中医院",
    "南京市中心医院",
    "江苏省口腔医院",
    "东部战区总医院秦淮医疗区",
    "南京市胸科医院",
    "南京医科大学附属眼科医院",
    "东部战区空军医院",
    "南京市职业病防治院",
]
TELEMED_TOP_UPLOADERS = [
    "江苏省人民医院", "南京市江宁医院", "南京医科大学第二附属医院",  # ECG
    "南京市妇幼保健院", "南京市第二医院", "南京市高淳人民医院",  # lab
    "南京鼓楼医院", "东南大学附属中大医院", "南京市中医院",  # imaging
]  # fmt: skip
NEWS_INSTITUTIONS = ["滁州市第一人民医院儿童医院", "溧阳市戴埠镇中心卫生院"]
SCENARIO_AREAS = {
    "320102": "玄武区", "320104": "秦淮区", "320105": "建邺区", "320106": "鼓楼区", "320111": "浦口区",
    "320113": "栖霞区", "320114": "雨花台区", "320115": "江宁区", "320116": "六合区", "320117": "溧水区",
    "320118": "高淳区", "3201JB": "江北新区",
}  # fmt: skip
CLIENT_APPS = [
    "健康南京客户端", "我的南京客户端", "南京卫生 12320 微信平台", "12320 快速预约", "江苏省预约挂号网",
    "南京卫生 12320 网", "就医 160",
]  # fmt: skip

ORG_KINDS = {"hospital", "community_health_centre", "district_platform", "external"}
AREA_LEVELS = {"province", "city", "district", "reporting_unit"}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    text = resources.files("cityhealth.registry.reference").joinpath("nanjing.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _org_names(reference: dict[str, Any]) -> set[str]:
    return {o["name"] for o in reference["organizations"]}


def test_header(reference: dict[str, Any]) -> None:
    assert reference["format"] == "cityhealth-reference/1"
    assert reference["region"] == {"code": "320100", "name": "南京市"}


@pytest.mark.parametrize(
    "names",
    [BOOKING_HOSPITALS, COLLECTION_HOSPITALS, TELEMED_TOP_UPLOADERS, NEWS_INSTITUTIONS],
    ids=["booking", "collection", "telemed", "news"],
)
def test_every_institution_the_bulletin_names_is_present_by_exact_name(
    reference: dict[str, Any], names: list[str]
) -> None:
    assert set(names) - _org_names(reference) == set()


def test_the_twelve_reporting_areas_are_present_with_their_names(reference: dict[str, Any]) -> None:
    areas = {a["code"]: a for a in reference["areas"]}
    for code, name in SCENARIO_AREAS.items():
        assert areas[code]["name"] == name
        assert areas[code]["parent_code"] == "320100"
    assert areas["3201JB"]["level"] == "reporting_unit"
    assert areas["3201JB"]["maps_to"] == ["320111", "320116", "320113"]


def test_areas_form_a_tree(reference: dict[str, Any]) -> None:
    areas = {a["code"]: a for a in reference["areas"]}
    for area in reference["areas"]:
        assert area["level"] in AREA_LEVELS
        if area["level"] == "province":
            assert area["parent_code"] is None
        else:
            assert area["parent_code"] in areas
        if area["level"] != "reporting_unit":
            # GB/T 2260 codes are 6 digits; only a reporting unit has a platform-local code.
            assert len(area["code"]) == 6
            assert area["code"].isascii()
            assert area["code"].isdigit()
        for code in area.get("maps_to", []):
            assert areas[code]["level"] == "district"


def test_every_organization_sits_in_a_known_area(reference: dict[str, Any]) -> None:
    areas = {a["code"]: a for a in reference["areas"]}
    for org in reference["organizations"]:
        code = org["area_code"]
        if code is None:
            continue
        assert code in areas, org["name"]
        if org["kind"] != "district_platform":
            assert areas[code]["level"] != "reporting_unit", org["name"]


def test_organization_fields(reference: dict[str, Any]) -> None:
    names = _org_names(reference)
    for org in reference["organizations"]:
        assert org["kind"] in ORG_KINDS, org["name"]
        assert org["level"] in {"三级", "二级", "一级", None}, org["name"]
        assert org["uscc"] is None, org["name"]  # never invented
        assert (org["ws218_type"] is None) == (org["ws218_type_name"] is None), org["name"]
        assert org["campus_of"] is None or org["campus_of"] in names, org["name"]
    chcs = [o for o in reference["organizations"] if o["kind"] == "community_health_centre"]
    assert all(o["ws218_type"] == "B100" for o in chcs)


def test_each_reporting_area_has_one_district_platform(reference: dict[str, Any]) -> None:
    platforms = [o for o in reference["organizations"] if o["kind"] == "district_platform"]
    assert sorted(o["area_code"] for o in platforms) == sorted(SCENARIO_AREAS)


def test_the_seven_client_apps_are_present(reference: dict[str, Any]) -> None:
    apps = reference["client_apps"]
    assert [a["name"] for a in apps] == CLIENT_APPS
    channels = {a["name"]: a["channel"] for a in apps}
    assert {n for n, c in channels.items() if c == "third_party"} == {"江苏省预约挂号网", "就医 160"}
    assert set(channels.values()) == {"online_12320", "third_party"}
    for app in apps:
        assert app["code"].isascii()
        assert app["operator"]


def test_no_duplicate_names_or_codes(reference: dict[str, Any]) -> None:
    for items, key in [
        (reference["areas"], "code"),
        (reference["areas"], "name"),
        (reference["organizations"], "name"),
        (reference["client_apps"], "name"),
        (reference["client_apps"], "code"),
    ]:
        values = [item[key] for item in items]
        assert len(values) == len(set(values)), key
    short_names = [o["short_name"] for o in reference["organizations"] if o["short_name"] is not None]
    assert len(short_names) == len(set(short_names))


def test_expectations_match_the_scenario_file() -> None:
    path = resources.files("cityhealth.simulation").joinpath("scenarios", "nanjing-2022-06.json")
    scenario = json.loads(path.read_text("utf-8"))
    assert [h["hospital"] for h in scenario["booking"]["by_hospital"]] == BOOKING_HOSPITALS
    assert [h["hospital"] for h in scenario["collection"]["hospitals"]] == COLLECTION_HOSPITALS
    top = [h["hospital"] for k in ("ecg", "lab", "imaging") for h in scenario["telemed"][k]["top_uploaders"]]
    assert top == TELEMED_TOP_UPLOADERS
    assert {a["code"]: a["name"] for a in scenario["areas"]} == SCENARIO_AREAS
    assert [a["app"] for a in scenario["booking"]["by_app"]] == CLIENT_APPS
