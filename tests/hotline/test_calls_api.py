"""The telephony system's event reports over HTTP: idempotence, order, bad input, protected caller numbers."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline.models import Call, CallEvent
from tests.hotline.calls_support import add_line, agent, call_events, telephony

REPORT = "/api/hotline/call-events"


async def _counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.database.transaction() as session:
        calls = await session.scalar(select(func.count(Call.id)))
        events = await session.scalar(select(func.count()).select_from(CallEvent))
    return int(calls or 0), int(events or 0)


async def test_a_reported_call_is_stored_with_its_caller_protected(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    response = await client.post(REPORT, headers=await telephony(app),
                                 json={"events": call_events("cti-1", app.state.clock.now())})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 5, "duplicates": 0, "calls": 1}
    async with app.state.database.transaction() as session:
        call = (await session.scalars(select(Call))).one()
    assert call.state == "ended"
    assert call.city_code == "320100"
    assert call.category == "consultation"
    assert "13812345678" not in (call.caller_cipher or "")
    assert call.caller_hash
    headers, _ = await agent(app, 1)
    detail = (await client.get(f"/api/hotline/calls/{call.id}", headers=headers)).json()
    assert detail["caller_number_masked"] == "138****5678"
    assert [event["kind"] for event in detail["events"]] == ["start", "ivr", "queue", "answer", "end"]


async def test_a_report_sent_twice_is_stored_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    body = {"events": call_events("cti-2", app.state.clock.now())}
    headers = await telephony(app)
    await client.post(REPORT, headers=headers, json=body)
    again = await client.post(REPORT, headers=headers, json=body)
    assert again.json() == {"accepted": 0, "duplicates": 5, "calls": 1}
    assert await _counts(app) == (1, 5)


async def test_events_repeated_within_one_report_count_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    events = call_events("cti-3", app.state.clock.now())
    response = await client.post(REPORT, headers=await telephony(app), json={"events": events + events[:2]})
    assert response.json() == {"accepted": 5, "duplicates": 2, "calls": 1}


async def test_events_out_of_order_across_reports_give_the_same_call(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-4", app.state.clock.now())
    first = await client.post(REPORT, headers=headers, json={"events": [events[4], events[3]]})  # end, answer
    assert first.status_code == 200, first.text
    async with app.state.database.transaction() as session:
        partial = (await session.scalars(select(Call))).one()
        assert (partial.state, partial.started_at) == ("partial", None)
    await client.post(REPORT, headers=headers, json={"events": [events[1], events[0], events[2]]})
    async with app.state.database.transaction() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.state, call.city_code, call.agent, call.queue) == ("ended", "320100", "staff:1", "booking")


async def test_an_end_before_the_start_is_refused_naming_field_value_and_rule(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    start = app.state.clock.now()
    events = call_events("cti-5", start)
    await client.post(REPORT, headers=headers, json={"events": events[:4]})
    early_end = {**events[4], "at": (start - timedelta(minutes=1)).isoformat()}
    response = await client.post(REPORT, headers=headers, json={"events": [early_end]})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("events[0].at", "hotline.call.end_not_before_start")
    assert problem["value"] == (start - timedelta(minutes=1)).isoformat()
    assert await _counts(app) == (1, 4)


async def test_an_unknown_city_line_refuses_the_whole_report(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    good = call_events("cti-6", app.state.clock.now())
    bad = call_events("cti-7", app.state.clock.now(), line="0512-99999")
    response = await client.post(REPORT, headers=await telephony(app), json={"events": good + bad})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["value"], problem["rule"]) == (
        "events[5].city_line", "0512-99999", "hotline.city_line.known")
    assert await _counts(app) == (0, 0)  # nothing half-written: the good call is refused with the bad one


async def test_an_inactive_city_line_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app, line="0513-12320", city_code="320600", city_name="南通市", active=False)
    response = await client.post(REPORT, headers=await telephony(app), json={
        "events": call_events("cti-8", app.state.clock.now(), line="0513-12320")})
    assert response.status_code == 422
    assert response.json()["rule"] == "hotline.city_line.known"


async def test_an_unknown_category_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    response = await client.post(REPORT, headers=await telephony(app), json={
        "events": call_events("cti-9", app.state.clock.now(), category="gossip")})
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "events.4.category"
    assert problem["value"] == "gossip"
    assert await _counts(app) == (0, 0)


async def test_an_event_id_reused_with_other_content_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-10", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events})
    changed = {**events[3], "agent": "staff:2"}
    response = await client.post(REPORT, headers=headers, json={"events": [changed]})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("events[0].event_id", "hotline.event.identity_reused")


async def test_a_second_end_under_another_event_id_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-11", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events})
    response = await client.post(REPORT, headers=headers, json={"events": [{**events[4], "event_id": "e6"}]})
    assert response.status_code == 422
    assert response.json()["rule"] == "hotline.call.one_end"


async def test_a_field_of_another_kind_and_a_missing_one_are_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    at = app.state.clock.now().isoformat()
    response = await client.post(REPORT, headers=await telephony(app), json={"events": [
        {"call_id": "cti-12", "event_id": "a", "kind": "answer", "at": at, "queue": "booking"}]})
    assert response.status_code == 422
    rules = {(error["field"], error["rule"]) for error in response.json()["errors"]}
    assert rules == {("events[0].queue", "hotline.event.field_of_kind"),
                     ("events[0].agent", "hotline.event.required_for_kind")}


async def test_a_malformed_caller_number_is_refused_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    response = await client.post(REPORT, headers=await telephony(app), json={
        "events": call_events("cti-13", app.state.clock.now(), caller="99912345678")})
    assert response.status_code == 422
    assert response.json()["field"] == "events[0].caller_number"
    assert "99912345678" not in response.text


async def test_only_the_telephony_system_reports_events(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers, _ = await agent(app, 1)
    response = await client.post(REPORT, headers=headers, json={"events": call_events("x", app.state.clock.now())})
    assert response.status_code == 403


async def test_a_supervisor_finds_a_callers_calls_by_number(app: FastAPI, client: httpx.AsyncClient) -> None:
    from cityhealth.security.principals import Role
    from tests.factories.security import headers_for, staff

    await add_line(app)
    headers = await telephony(app)
    await client.post(REPORT, headers=headers, json={"events": call_events("cti-14", app.state.clock.now())})
    await client.post(REPORT, headers=headers, json={
        "events": call_events("cti-15", app.state.clock.now(), caller="025-83626620")})
    supervisor = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=50))
    found = await client.post("/api/hotline/calls/search", headers=supervisor, json={"caller_number": "13812345678"})
    assert [call["telephony_call_id"] for call in found.json()] == ["cti-14"]
    assert "13812345678" not in found.text


async def test_an_event_resent_with_another_utc_offset_is_a_duplicate(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    start = app.state.clock.now()
    await client.post(REPORT, headers=headers, json={"events": call_events("cti-16", start)})
    resent = call_events("cti-16", start.astimezone(BUSINESS_TZ))
    assert resent[0]["at"] != call_events("cti-16", start)[0]["at"]
    response = await client.post(REPORT, headers=headers, json={"events": resent})
    assert response.json() == {"accepted": 0, "duplicates": 5, "calls": 1}


async def test_the_same_report_sent_twice_at_once_stores_one_call(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    body = {"events": call_events("cti-17", app.state.clock.now()) + call_events("cti-18", app.state.clock.now())}
    answers = await asyncio.gather(*(client.post(REPORT, headers=headers, json=body) for _ in range(3)))
    for answer in answers:  # each either took the report, or was told to resend it
        assert answer.status_code in (200, 409), answer.text
        if answer.status_code == 409:
            assert answer.json()["rule"] == "hotline.call.one_report_at_a_time"
            assert (await client.post(REPORT, headers=headers, json=body)).json()["accepted"] == 0
    assert sum(answer.json()["accepted"] for answer in answers if answer.status_code == 200) == 10
    assert await _counts(app) == (2, 10)


async def test_a_later_report_of_a_calls_end_keeps_its_city(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-19", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events[:4]})
    await client.post(REPORT, headers=headers, json={"events": events[4:]})
    async with app.state.database.transaction() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.state, call.city_code, call.city_line_id is not None) == ("ended", "320100", True)


async def test_calls_reported_in_shuffled_repeated_pieces_equal_one_whole_report(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    start = app.state.clock.now()
    whole = [event for n in range(6) for event in call_events(f"w-{n}", start + timedelta(minutes=n))]
    pieces = [{**event, "call_id": "p" + event["call_id"][1:]} for event in whole]
    shuffler = random.Random(15)
    shuffler.shuffle(pieces)
    pieces += shuffler.sample(pieces, 8)  # some sent again
    assert (await client.post(REPORT, headers=headers, json={"events": whole})).status_code == 200
    for at in range(0, len(pieces), 7):
        answer = await client.post(REPORT, headers=headers, json={"events": pieces[at:at + 7]})
        assert answer.status_code == 200, answer.text
    fields = ("state", "city_code", "started_at", "business_date", "start_hour", "ivr_path", "queue", "queued_at",
              "answered_at", "agent", "ended_at", "caller_hash", "category", "outcome")
    async with app.state.database.transaction() as session:
        calls = {call.telephony_call_id: tuple(getattr(call, name) for name in fields)
                 for call in await session.scalars(select(Call))}
    for n in range(6):
        assert calls[f"p-{n}"] == calls[f"w-{n}"]
