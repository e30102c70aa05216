"""The resident booking pages over HTTP: choosing, a slot's public page, sign-in, hold, confirm, cancel."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from tests.factories.booking import IN_TWO_DAYS, World, active_bookings, book, publish, resident_principal, scheduler
from tests.factories.security import headers_for, reissued
from tests.web.conftest import Booker, csrf_of, registered_resident, sign_in
from tests.web.pages_support import audit_events

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from cityhealth.web.session import SESSION_COOKIE

TODAY = date(2022, 6, 15)  # the test clock's business day
_KEY = re.compile(r'name="request_key" value="([^"]+)"')


async def session_with_doctor(client: httpx.AsyncClient, app: FastAPI, world: World, *, capacity: int = 3,
                              service_date: date = IN_TWO_DAYS) -> dict[str, Any]:
    headers = await headers_for(app, scheduler(world))
    response = await client.post("/api/booking/sessions", headers=headers, json={
        "external_id": uuid.uuid4().hex[:12], "organization_id": world.hospital_id,
        "department_id": world.department_id, "practitioner_id": world.practitioner_id,
        "service_date": service_date.isoformat(), "start_time": "08:00", "end_time": "12:00",
        "capacity": capacity, "fee_class": "expert"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def hold_form(client: httpx.AsyncClient, slot_id: int) -> dict[str, str]:
    """The slot page's book form, as the signed-in resident's browser would post it."""
    page = await client.get(f"/booking/slots/{slot_id}")
    assert page.status_code == 200, page.text
    key = _KEY.search(page.text)
    assert key is not None, "the slot page has no book form"
    return {"csrf_token": csrf_of(page.text), "request_key": key.group(1)}


async def mine_form(client: httpx.AsyncClient, booking_id: int, action: str) -> dict[str, str]:
    page = await client.get("/booking/mine")
    assert page.status_code == 200, page.text
    key = re.search(rf'name="request_key" value="([^"]+-{booking_id})"', page.text)
    return {"csrf_token": csrf_of(page.text), "booking_id": str(booking_id), "action": action,
            "request_key": key.group(1) if key else ""}


# --- choosing -------------------------------------------------------------------------------------------------


async def test_choose_page_lists_the_days_sessions_with_the_slots_left(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    session = await session_with_doctor(client, app, world)
    response = await client.get("/booking/", params={"organization_id": world.hospital_id,
                                                     "date": IN_TWO_DAYS.isoformat()})
    assert response.status_code == 200
    assert "南京鼓楼医院" in response.text
    assert "王医生（主任医师）" in response.text
    assert "剩余 3 个" in response.text
    assert f'href="/booking/slots/{session["id"]}"' in response.text


async def test_choose_page_shows_a_same_day_session_as_not_bookable(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    await publish(client, app, world, service_date=TODAY, start=time(14), end=time(17))
    response = await client.get("/booking/", params={"organization_id": world.hospital_id,
                                                     "date": TODAY.isoformat()})
    assert response.status_code == 200
    assert "不接受当天预约" in response.text
    assert "剩余" not in response.text


async def test_choose_page_refuses_a_day_outside_the_pickable_ones_in_chinese(
        client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/booking/", params={"organization_id": world.hospital_id, "date": "2022-08-01"})
    assert response.status_code == 200
    assert "只能查看今天起 14 天内的号源" in response.text


# --- a slot's page --------------------------------------------------------------------------------------------


async def test_slot_page_is_public_and_says_where_who_when_and_whether_it_can_be_booked(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    session = await session_with_doctor(client, app, world)
    response = await client.get(f"/booking/slots/{session['id']}")
    assert response.status_code == 200
    for text in ("南京鼓楼医院", "内科", "王医生（主任医师）", "2022-06-17", "08:00–12:00", "专家号",
                 "可以预约，网上还剩 3 个号"):
        assert text in response.text, text
    assert f'href="/booking/login?next=/booking/slots/{session["id"]}"' in response.text
    assert "预约这个号" not in response.text


async def test_slot_page_of_a_sold_out_session_says_so_and_offers_no_booking(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    session = await session_with_doctor(client, app, world, capacity=1)
    other = await registered_resident(client, database, settings, clock, 2)
    assert (await book(client, app, resident_principal(other.resident_id), session["id"])).status_code == 201
    response = await client.get(f"/booking/slots/{session['id']}")
    assert "号源已约满" in response.text
    assert "登录后预约" not in response.text


async def test_slot_page_of_an_unknown_slot_is_404(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/booking/slots/999999")
    assert response.status_code == 404


# --- sign-in -----------------------------------------------------------------------------------------------------


async def test_booking_anonymously_leads_to_sign_in_and_back_to_the_slot(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker) -> None:
    session = await session_with_doctor(client, app, world)
    slot_page = f"/booking/slots/{session['id']}"
    response = await client.post(slot_page, data={"csrf_token": "x", "request_key": "k"})
    assert response.status_code == 303
    landed = urlsplit(response.headers["location"])
    assert landed.path == "/booking/login"
    assert parse_qs(landed.query)["next"] == [slot_page]
    signed_in = await sign_in(client, booker, next_url=slot_page)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == slot_page
    cookie = next(value for value in signed_in.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "预约这个号" in (await client.get(slot_page)).text


async def test_sign_in_with_a_wrong_password_gets_the_one_refusal_and_is_audited(
        client: httpx.AsyncClient, database: Database, booker: Booker) -> None:
    response = await sign_in(client, booker, password="not-the-password")
    assert response.status_code == 401
    assert "身份证号码或密码不正确" in response.text
    assert booker.id_number not in response.text
    refused = await audit_events(database, action="login", outcome="denied")
    assert [event.resident_id for event in refused] == [booker.resident_id]


async def test_sign_in_without_the_csrf_token_is_refused_before_any_attempt(
        client: httpx.AsyncClient, database: Database, booker: Booker) -> None:
    response = await client.post("/booking/login", data={"id_number": booker.id_number,
                                                         "password": booker.password})
    assert response.status_code == 403
    assert await audit_events(database, action="login") == []


async def test_sign_in_refuses_a_malformed_id_number_without_echoing_it(
        client: httpx.AsyncClient, booker: Booker) -> None:
    last = "0" if booker.id_number[-1] != "0" else "1"  # a wrong check character
    broken = dataclasses.replace(booker, id_number=booker.id_number[:-1] + last)
    response = await sign_in(client, broken)
    assert response.status_code == 422
    assert "有效的 18 位居民身份证号码" in response.text


async def test_my_bookings_without_sign_in_redirects_to_the_resident_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/booking/mine")
    assert response.status_code == 303
    assert response.headers["location"] == "/booking/login?next=/booking/mine"


async def test_my_bookings_refuses_a_resident_token_without_booking_read(
        client: httpx.AsyncClient, app: FastAPI, booker: Booker) -> None:
    headers = await headers_for(app, resident_principal(booker.resident_id))
    narrowed = reissued(app, headers, without=frozenset({Scope.BOOKING_READ}))
    client.cookies.set(SESSION_COOKIE, narrowed["Authorization"].removeprefix("Bearer "))
    response = await client.get("/booking/mine")
    assert response.status_code == 403


async def test_sign_out_ends_the_resident_session(client: httpx.AsyncClient, booker: Booker) -> None:
    await sign_in(client, booker)
    page = await client.get("/booking/mine")
    response = await client.post("/booking/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert (await client.get("/booking/mine")).status_code == 303


# --- holding, confirming, cancelling -------------------------------------------------------------------------


async def test_a_signed_in_resident_holds_confirms_and_sees_the_booking(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database) -> None:
    session = await session_with_doctor(client, app, world)
    await sign_in(client, booker)
    held = await client.post(f"/booking/slots/{session['id']}", data=await hold_form(client, session["id"]))
    assert held.status_code == 303
    [hold] = await active_bookings(database, session["id"])
    assert held.headers["location"] == f"/booking/mine?held={hold.id}"
    assert (hold.status, hold.channel, hold.resident_id) == ("held", "online_12320", booker.resident_id)
    mine = await client.get(held.headers["location"])
    assert "号源已为您保留" in mine.text
    assert "确认预约" in mine.text
    confirmed = await client.post("/booking/mine", data=await mine_form(client, hold.id, "confirm"))
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"/booking/mine?booked={hold.id}"
    [booking] = await active_bookings(database, session["id"])
    assert booking.status == "booked"
    mine = await client.get(confirmed.headers["location"])
    assert "预约成功" in mine.text
    assert f'id="booking-{hold.id}"' in mine.text
    assert "已预约" in mine.text
    assert await audit_events(database, resource_type="booking", resource_id=str(hold.id), action="update")


async def test_a_resubmitted_book_form_holds_one_slot_not_two(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database) -> None:
    session = await session_with_doctor(client, app, world)
    await sign_in(client, booker)
    form = await hold_form(client, session["id"])
    first = await client.post(f"/booking/slots/{session['id']}", data=form)
    again = await client.post(f"/booking/slots/{session['id']}", data=form)
    assert first.headers["location"] == again.headers["location"]
    assert len(await active_bookings(database, session["id"])) == 1


async def test_a_refused_hold_names_the_rule_in_chinese_and_is_audited(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database) -> None:
    first = await session_with_doctor(client, app, world)
    second = await session_with_doctor(client, app, world)  # the same department, the same day
    await sign_in(client, booker)
    assert (await client.post(f"/booking/slots/{first['id']}", data=await hold_form(client, first["id"]))
            ).status_code == 303
    refused = await client.post(f"/booking/slots/{second['id']}", data=await hold_form(client, second["id"]))
    assert refused.status_code == 409
    assert "同一科室每天只能预约一次" in refused.text
    failures = await audit_events(database, resource_type="booking", outcome="failure")
    assert [event.resident_id for event in failures] == [booker.resident_id]


async def test_a_hold_of_a_session_sold_out_meanwhile_says_it_is_full(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database,
        settings: Settings, clock: SimulatedClock) -> None:
    session = await session_with_doctor(client, app, world, capacity=1)
    await sign_in(client, booker)
    form = await hold_form(client, session["id"])
    other = await registered_resident(client, database, settings, clock, 2)
    assert (await book(client, app, resident_principal(other.resident_id), session["id"])).status_code == 201
    refused = await client.post(f"/booking/slots/{session['id']}", data=form)
    assert refused.status_code == 409
    assert "号源已约满" in refused.text


async def test_a_hold_confirmed_after_it_lapsed_is_refused_in_chinese(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database,
        clock: SimulatedClock) -> None:
    session = await session_with_doctor(client, app, world)
    await sign_in(client, booker)
    await client.post(f"/booking/slots/{session['id']}", data=await hold_form(client, session["id"]))
    [hold] = await active_bookings(database, session["id"])
    form = await mine_form(client, hold.id, "confirm")
    clock.advance(timedelta(minutes=10))
    await client.get("/booking/mine")  # the sign-in stays live; the hold does not
    clock.advance(timedelta(minutes=6))
    refused = await client.post("/booking/mine", data=form)
    assert refused.status_code == 409
    assert "保留时间已过" in refused.text


async def test_cancelling_from_my_bookings_gives_the_slot_back(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database) -> None:
    session = await session_with_doctor(client, app, world)
    await sign_in(client, booker)
    await client.post(f"/booking/slots/{session['id']}", data=await hold_form(client, session["id"]))
    [hold] = await active_bookings(database, session["id"])
    await client.post("/booking/mine", data=await mine_form(client, hold.id, "confirm"))
    cancelled = await client.post("/booking/mine", data=await mine_form(client, hold.id, "cancel"))
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/booking/mine?cancelled={hold.id}"
    assert await active_bookings(database, session["id"]) == []
    assert "可以预约，网上还剩 3 个号" in (await client.get(f"/booking/slots/{session['id']}")).text


async def test_book_and_change_forms_without_the_csrf_token_are_refused(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database) -> None:
    session = await session_with_doctor(client, app, world)
    await sign_in(client, booker)
    form = await hold_form(client, session["id"])
    refused = await client.post(f"/booking/slots/{session['id']}", data={**form, "csrf_token": "forged"})
    assert refused.status_code == 403
    assert await active_bookings(database, session["id"]) == []
    await client.post(f"/booking/slots/{session['id']}", data=form)
    [hold] = await active_bookings(database, session["id"])
    change = await mine_form(client, hold.id, "cancel")
    assert (await client.post("/booking/mine", data={**change, "csrf_token": "forged"})).status_code == 403
    assert len(await active_bookings(database, session["id"])) == 1


async def test_my_bookings_shows_only_the_signed_in_residents_own(
        client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker, database: Database,
        settings: Settings, clock: SimulatedClock) -> None:
    session = await session_with_doctor(client, app, world)
    other = await registered_resident(client, database, settings, clock, 2)
    theirs = await book(client, app, resident_principal(other.resident_id), session["id"])
    await sign_in(client, booker)
    mine = await client.get("/booking/mine")
    assert f'id="booking-{theirs.json()["id"]}"' not in mine.text
    assert "您还没有预约" in mine.text
    assert await audit_events(database, action="list", resident_id=booker.resident_id)


async def test_a_signed_in_resident_on_an_operators_page_is_sent_to_the_operator_login_and_stays_signed_in(
        client: httpx.AsyncClient, booker: Booker) -> None:
    await sign_in(client, booker)
    response = await client.get("/dashboard/quality/units/1/rejections")
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/login"
    assert "set-cookie" not in response.headers
    assert (await client.get("/booking/mine")).status_code == 200


async def test_slot_page_of_a_session_reserved_for_another_channel_offers_no_booking(
        client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    session = await publish(client, app, world, capacity=2, quotas={"clinic": 2})
    response = await client.get(f"/booking/slots/{session['id']}")
    assert "号源已约满" in response.text  # free for the clinic's window, none left for residents online
    assert "登录后预约" not in response.text
