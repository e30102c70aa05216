"""What a report writes: each call once, nothing for what the platform holds already, the start's line, city and
caller kept by later reports, and reports of one new call at once all taken (or told to resend)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.hotline.models import Call
from tests.hotline.calls_support import add_line, call_events, telephony

REPORT = "/api/hotline/call-events"
FIELDS = ("state", "city_line_id", "city_code", "started_at", "ivr_path", "queue", "agent", "ended_at", "caller_hash",
          "caller_cipher", "category", "outcome", "updated_at")


async def _call(app: FastAPI, telephony_id: str) -> dict[str, Any]:
    async with app.state.database.transaction() as session:
        call = (await session.scalars(select(Call).where(Call.telephony_call_id == telephony_id))).one()
    return {name: getattr(call, name) for name in FIELDS}


async def test_a_report_of_events_already_held_leaves_the_call_untouched(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-w1", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events})
    before = await _call(app, "cti-w1")
    app.state.clock.advance(timedelta(minutes=1))
    again = await client.post(REPORT, headers=headers, json={"events": [events[0], events[4], events[0]]})
    assert again.json() == {"accepted": 0, "duplicates": 3, "calls": 1}
    assert await _call(app, "cti-w1") == before  # not projected again: not even its updated_at moved


async def test_later_reports_keep_the_caller_as_the_start_stored_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-w2", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events[:2]})
    first = await _call(app, "cti-w2")
    assert first["caller_cipher"]
    assert first["caller_hash"]
    # The start again (a duplicate) with the call's later events: the stored ciphertext stays as it was.
    answer = await client.post(REPORT, headers=headers, json={"events": [events[0], *events[2:]]})
    assert answer.json() == {"accepted": 3, "duplicates": 1, "calls": 1}
    later = await _call(app, "cti-w2")
    assert (later["state"], later["caller_hash"], later["caller_cipher"]) == (
        "ended", first["caller_hash"], first["caller_cipher"])


async def test_a_start_resent_with_another_number_is_refused_and_nothing_changes(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-w3", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events[:3]})
    before = await _call(app, "cti-w3")
    changed = {**events[0], "caller_number": "13900001111"}
    response = await client.post(REPORT, headers=headers, json={"events": [*events[3:], changed]})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("events[2].event_id", "hotline.event.identity_reused")
    assert "13900001111" not in response.text
    assert await _call(app, "cti-w3") == before  # refused whole: the answer and the end are not taken either


async def test_a_call_keeps_the_city_its_line_had_when_its_start_was_reported(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-w4", app.state.clock.now())
    await client.post(REPORT, headers=headers, json={"events": events[:1]})
    await add_line(app, city_code="320500", city_name="苏州市")  # the line moved to another city since
    await client.post(REPORT, headers=headers, json={"events": events[1:]})
    call = await _call(app, "cti-w4")
    assert (call["state"], call["city_code"]) == ("ended", "320100")


async def test_pieces_of_one_new_call_reported_at_once_all_end_up_in_it(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers = await telephony(app)
    events = call_events("cti-w5", app.state.clock.now())
    pieces = [[events[4], events[1]], [events[3]], [events[0], events[2]]]  # the start last, the end first

    async def report(piece: list[dict[str, Any]]) -> None:
        for _ in range(20):  # told to resend when another report created the call at the same moment
            answer = await client.post(REPORT, headers=headers, json={"events": piece})
            if answer.status_code != 409:
                assert answer.status_code == 200, answer.text
                return
            assert answer.json()["rule"] == "hotline.call.one_report_at_a_time"
        raise AssertionError("the report was refused twenty times")

    await asyncio.gather(*(report(piece) for piece in pieces))
    call = await _call(app, "cti-w5")
    assert (call["state"], call["city_code"], call["agent"], call["queue"]) == (
        "ended", "320100", "staff:1", "booking")
    assert call["caller_hash"] is not None
