"""The resident app's pages behind the sign-in: family doctor, readings and follow-ups, the map, family members."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.booking import World, add_resident
from tests.factories.family import ADULT_SEQ, MINOR_SEQ
from tests.records.family_support import CHRONIC, FAMILY, centre, doctor, id_number_of, package, resident, signing, team
from tests.web.app_support import Member, account_on_phone, app_sign_in
from tests.web.conftest import RESIDENT_PASSWORD, csrf_of
from tests.web.pages_support import audit_events

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry import facilities
from cityhealth.registry.facility_schemas import FacilityProfileWrite, OpeningInterval

PHONE = "13900003333"
GULOU = (32.0603, 118.7969)
CHILDREN = (32.0420, 118.7800)
ALWAYS = [OpeningInterval(weekday=day, opens="00:00", closes="24:00") for day in range(1, 8)]


async def _signed_in_member(client: httpx.AsyncClient, app: FastAPI, seq: int, phone: str) -> Member:
    """A registry resident (with an address area, as contracts need) with an account, signed in in the app."""
    resident_id = await resident(app, seq=seq)
    response = await client.post("/api/auth/residents/register", json={
        "id_number": id_number_of(seq), "name": f"居民{seq}", "phone": phone, "password": RESIDENT_PASSWORD})
    assert response.status_code == 201, response.text
    state = app.state
    signed = await app_sign_in(client, state.database, state.settings, state.clock, phone)
    assert signed.status_code == 303, signed.text
    return Member(resident_id, id_number_of(seq), f"居民{seq}", phone)


@pytest.fixture
async def member(client: httpx.AsyncClient, app: FastAPI, world: World) -> Member:
    return await _signed_in_member(client, app, 501, PHONE)


async def _contract(app: FastAPI, client: httpx.AsyncClient, resident_id: int) -> tuple[int, dict[str, str]]:
    chc = await centre(app)
    team_id, package_id = await team(app, chc), await package(app)
    headers = await doctor(app, chc)
    response = await client.post(f"{FAMILY}/contracts", headers=headers,
                                 json=signing([resident_id], team_id, package_id))
    assert response.status_code == 201, response.text
    return chc, headers


async def _followup(client: httpx.AsyncClient, headers: dict[str, str], resident_id: int, **readings: Any) -> None:
    registration = await client.post(f"{CHRONIC}/registrations", headers=headers,
                                     json={"resident_id": resident_id, "program": "hypertension"})
    assert registration.status_code in (200, 201), registration.text
    response = await client.post(f"{CHRONIC}/registrations/{registration.json()['id']}/followups", headers=headers,
                                 json={"key": "v-1", "visit_date": "2022-06-10", "sbp": 132, "dbp": 84} | readings)
    assert response.status_code == 201, response.text


# --- sign-in required ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/app/doctor", "/app/readings", "/app/map", "/app/family"])
async def test_each_page_sends_a_visitor_to_the_phone_sign_in(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/app/login?next={path}"


# --- my family doctor -----------------------------------------------------------------------------------------


async def test_my_doctor_shows_the_contract_team_and_package_and_is_audited(
        client: httpx.AsyncClient, app: FastAPI, database: Database, member: Member) -> None:
    await _contract(app, client, member.resident_id)
    response = await client.get("/app/doctor")
    assert response.status_code == 200
    assert "全科团队" in response.text
    assert "基础包" in response.text
    assert "家庭医生（主治医师）" in response.text
    assert "2022-06-15 至 2023-06-15" in response.text
    assert "365 天" in response.text
    reads = await audit_events(database, resource_type="family_contract", action="read")
    assert [e.resident_id for e in reads] == [member.resident_id]


async def test_my_doctor_without_a_contract_says_so(client: httpx.AsyncClient, member: Member) -> None:
    response = await client.get("/app/doctor")
    assert response.status_code == 200
    assert "尚未签约家庭医生" in response.text


async def test_my_doctor_never_shows_another_residents_contract(
        client: httpx.AsyncClient, app: FastAPI, member: Member) -> None:
    other = await resident(app, seq=502)
    await _contract(app, client, other)
    response = await client.get("/app/doctor")
    assert "尚未签约家庭医生" in response.text


# --- my readings and follow-ups -------------------------------------------------------------------------------


async def test_my_readings_show_each_follow_up_with_its_classification(
        client: httpx.AsyncClient, app: FastAPI, database: Database, member: Member) -> None:
    _, headers = await _contract(app, client, member.resident_id)
    await _followup(client, headers, member.resident_id, sbp=152, dbp=96)
    response = await client.get("/app/readings")
    assert response.status_code == 200
    assert "血压 152/96 mmHg" in response.text
    assert "控制不满意" in response.text
    assert "2 周内复查随访" in response.text
    reads = await audit_events(database, resource_type="chronic_registration", action="read")
    assert [e.resident_id for e in reads] == [member.resident_id]


async def test_my_readings_never_show_another_residents_follow_ups(
        client: httpx.AsyncClient, app: FastAPI, member: Member) -> None:
    other = await resident(app, seq=503)
    _, headers = await _contract(app, client, other)
    await _followup(client, headers, other, sbp=150, dbp=95)
    response = await client.get("/app/readings")
    assert "暂无慢病管理记录" in response.text
    assert "150/95" not in response.text


# --- the map ------------------------------------------------------------------------------------------------


@pytest.fixture
async def mapped(database: Database, clock: SimulatedClock, world: World) -> World:
    async with database.transaction() as session:
        await facilities.put_profile(session, clock, None, world.hospital_id, FacilityProfileWrite(
            latitude=GULOU[0], longitude=GULOU[1], phone="025-83304616", services=["outpatient"], hours=ALWAYS))
        await facilities.put_profile(session, clock, None, world.other_hospital_id, FacilityProfileWrite(
            latitude=CHILDREN[0], longitude=CHILDREN[1], services=["emergency"], hours=ALWAYS))
    return world


async def test_the_map_lists_facilities_nearest_first_from_the_browsers_position(
        client: httpx.AsyncClient, mapped: World, member: Member) -> None:
    response = await client.get("/app/map", params={"latitude": CHILDREN[0], "longitude": CHILDREN[1]})
    assert response.status_code == 200
    assert response.text.index("南京市儿童医院") < response.text.index("南京鼓楼医院")
    assert "按您的位置查找" in response.text
    assert "0.0 公里" in response.text
    assert "今日可约 0 个号" in response.text


async def test_the_map_without_a_position_searches_from_the_districts_centre(
        client: httpx.AsyncClient, mapped: World, member: Member) -> None:
    response = await client.get("/app/map", params={"district": "320102", "radius_m": 10000})
    assert response.status_code == 200
    assert "按玄武区中心位置查找，共 2 家" in response.text


async def test_the_map_refuses_an_invalid_coordinate_and_uses_the_district(
        client: httpx.AsyncClient, mapped: World, member: Member) -> None:
    response = await client.get("/app/map", params={"latitude": "91", "longitude": "118.8"})
    assert response.status_code == 422
    assert "定位坐标无效" in response.text
    assert "按鼓楼区中心位置查找" in response.text


async def test_the_map_refuses_a_radius_it_does_not_offer(
        client: httpx.AsyncClient, mapped: World, member: Member) -> None:
    response = await client.get("/app/map", params={"radius_m": 999999})
    assert response.status_code == 422
    assert "搜索半径只能选" in response.text


# --- family members -----------------------------------------------------------------------------------------


async def _add(client: httpx.AsyncClient, id_number: str, name: str, **extra: str) -> httpx.Response:
    form = await client.get("/app/family")
    return await client.post("/app/family", data={"id_number": id_number, "name": name, "relationship": "child",
                                                  "csrf_token": csrf_of(form.text)} | extra)


async def test_a_minor_is_linked_on_the_guardians_declaration_with_the_name_masked(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    added = await _add(client, number, f"居民{MINOR_SEQ}", guardian_declaration="true")
    assert added.status_code == 303
    page = await client.get(added.headers["location"])
    assert "已生效" in page.text
    assert "居**" in page.text
    assert number not in page.text


async def test_a_minor_without_the_declaration_is_refused(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    refused = await _add(client, number, f"居民{MINOR_SEQ}")
    assert refused.status_code == 422
    assert "未成年人须由监护人声明" in refused.text


async def test_an_adult_member_consents_from_their_own_account(
        client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    adult = await account_on_phone(client, database, settings, clock, ADULT_SEQ, "13900004444")
    added = await _add(client, adult.id_number, adult.name, relationship="parent")
    assert added.status_code == 303
    assert "待对方确认" in (await client.get("/app/family")).text
    client.cookies.clear()
    clock.advance(timedelta(minutes=2))
    assert (await app_sign_in(client, database, settings, clock, adult.phone)).status_code == 303
    page = await client.get("/app/family")
    assert "待您同意" in page.text
    link_id = page.text.split('action="/app/family/')[1].split('"')[0]
    confirmed = await client.post(f"/app/family/{link_id}", data={"action": "confirm",
                                                                  "csrf_token": csrf_of(page.text)})
    assert confirmed.status_code == 303
    assert "已生效" in (await client.get("/app/family")).text


async def test_another_residents_link_is_not_found(
        client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    await _add(client, number, f"居民{MINOR_SEQ}", guardian_declaration="true")
    page = await client.get("/app/family")
    link_id = page.text.split('action="/app/family/')[1].split('"')[0]
    client.cookies.clear()
    clock.advance(timedelta(minutes=2))
    await _signed_in_member(client, app, 504, "13900005555")
    own = await client.get("/app/family")
    response = await client.post(f"/app/family/{link_id}", data={"action": "revoke", "csrf_token": csrf_of(own.text)})
    assert response.status_code == 404
    assert "找不到这条家庭成员关系" in response.text


async def test_a_family_form_without_its_csrf_token_changes_nothing(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    response = await client.post("/app/family", data={"id_number": number, "name": f"居民{MINOR_SEQ}",
                                                      "relationship": "child", "guardian_declaration": "true",
                                                      "csrf_token": "forged"})
    assert response.status_code == 403
    assert "还没有添加家庭成员" in response.text
