"""Pathology writes sent at once: one hold wins, identical requests are one row."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.telemed.pathology_support import (
    PATHOLOGY,
    case_body,
    hospital_headers,
    meeting_body,
    network,
    person,
)
from tests.telemed.support import CASES


async def test_of_holds_sent_at_once_exactly_one_holds_the_meeting(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    made = await client.post(f"{PATHOLOGY}/meetings", json=meeting_body([expert["id"]]), headers=net.hospital.headers)
    meeting_id = made.json()["id"]
    app.state.clock.advance(timedelta(days=2))
    organizer = await hospital_headers(app, net)
    answers = await asyncio.gather(
        *(
            client.post(
                f"{PATHOLOGY}/meetings/{meeting_id}/hold",
                json={"request_key": f"hold-{n}", "minutes": f"纪要 {n}"},
                headers=organizer,
            )
            for n in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    assert {(a.json()["code"], a.json()["value"]) for a in answers if a.status_code == 409} == {
        ("illegal_transition", "held")
    }
    won = next(a.json() for a in answers if a.status_code == 200)
    seen = await client.get(f"{PATHOLOGY}/meetings/{meeting_id}", headers=organizer)
    assert seen.json()["minutes"] == won["minutes"]


async def test_the_same_meeting_sent_at_once_is_one_meeting(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    body = meeting_body([expert["id"]])
    answers = await asyncio.gather(
        *(client.post(f"{PATHOLOGY}/meetings", json=body, headers=net.hospital.headers) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["id"] for a in answers}) == 1


async def test_the_same_case_sent_at_once_is_one_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    body = case_body()
    answers = await asyncio.gather(
        *(client.post(f"{PATHOLOGY}/cases", json=body, headers=net.hospital.headers) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["case"]["id"] for a in answers}) == 1
    assert len((await client.get(CASES, headers=net.hospital.headers)).json()) == 1
