"""Who may do what to a case: members only submit, a centre sees a case only while it is routed there, one
doctor holds a case at a time (concurrent claims included), the overdue lists."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.errors import Conflict
from cityhealth.security.principals import Role, Scope
from cityhealth.telemed import reading
from cityhealth.telemed.schemas import StepIn
from tests.factories.security import headers_for, machine, staff
from tests.telemed.support import (
    API,
    CASES,
    admin,
    case_body,
    centre,
    claimed,
    doctor,
    report_body,
    requester,
    step,
    submit,
)


async def test_a_case_from_a_non_member_is_refused_naming_the_network(app: FastAPI, client: httpx.AsyncClient) -> None:
    await centre(app)
    lab_member = await requester(app, network="lab")  # a member, but of another network
    refused = await client.post(CASES, json=case_body(), headers=lab_member.headers)
    assert refused.status_code == 403
    problem = refused.json()
    assert (problem["code"], problem["field"], problem["value"], problem["rule"]) == (
        "not_a_member",
        "network_code",
        "ecg",
        "telemed.case.requester_member",
    )
    nobody = await headers_for(app, machine(Scope.TELEMED_REQUEST, client_id="no-organization"))
    assert (await client.post(CASES, json=case_body(), headers=nobody)).status_code == 403


async def test_a_member_that_left_submits_no_more_cases(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    await centre(app)
    left = await client.post(
        f"{API}/members/{side.member_id}/leave", json={"left_on": "2022-06-15"}, headers=await admin(app)
    )
    assert left.status_code == 200
    refused = await client.post(CASES, json=case_body(), headers=side.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_member")


async def test_a_case_is_seen_only_by_its_requester_and_the_centre_it_is_routed_to(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    other_requester = await requester(app)
    other_centre = await centre(app)
    case_id = (await submit(client, side))["id"]  # the least loaded: `reader`, the older centre
    assert (await client.get(f"{CASES}/{case_id}", headers=side.headers)).status_code == 200
    assert (await client.get(f"{CASES}/{case_id}", headers=reader.headers)).status_code == 200
    for stranger in (other_requester.headers, other_centre.headers):
        refused = await client.get(f"{CASES}/{case_id}", headers=stranger)
        assert (refused.status_code, refused.json()["rule"]) == (404, "telemed.case.visible")
    assert case_id not in [c["id"] for c in (await client.get(CASES, headers=other_requester.headers)).json()]
    queue = (await client.get(f"{API}/worklist", headers=other_centre.headers)).json()
    assert case_id not in [c["id"] for c in queue]


async def test_a_report_from_a_centre_the_case_was_not_routed_to_is_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    other = await centre(app)
    case = await claimed(client, side, reader)
    for write in (
        client.put(f"{CASES}/{case['id']}/report", json=report_body(), headers=other.headers),
        client.post(f"{CASES}/{case['id']}/report/sign", json=report_body(), headers=other.headers),
    ):
        refused = await write
        assert (refused.status_code, refused.json()["field"]) == (404, "case_id")
    # nor may the requester write one
    assert (
        await client.put(f"{CASES}/{case['id']}/report", json=report_body(), headers=side.headers)
    ).status_code == 403


async def test_a_case_someone_else_holds_can_be_neither_claimed_nor_reported_on(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    colleague = await doctor(app, reader.organization_id)
    case_id = (await claimed(client, side, reader))["id"]
    taken = await step(client, colleague, case_id, "claim")
    assert (taken.status_code, taken.json()["code"]) == (409, "case_held")
    for refused in (
        await client.put(f"{CASES}/{case_id}/report", json=report_body(), headers=colleague),
        await step(client, colleague, case_id, "release"),
    ):
        assert (refused.status_code, refused.json()["code"]) == (409, "case_held")
    released = await step(client, reader.headers, case_id, "release")
    assert (released.json()["status"], released.json()["holder"]) == ("accepted", None)
    assert (await step(client, colleague, case_id, "claim")).status_code == 200


async def test_of_doctors_claiming_at_once_exactly_one_holds_the_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    reader = await centre(app)
    doctors = [reader.headers, *[await doctor(app, reader.organization_id) for _ in range(7)]]
    for _ in range(3):
        case_id = (await submit(client, side))["id"]
        assert (await step(client, reader.headers, case_id, "accept")).status_code == 200
        answers = await asyncio.gather(*(step(client, headers, case_id, "claim") for headers in doctors))
        assert sorted(a.status_code for a in answers) == [200] + [409] * 7
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"case_held"}
        detail = (await client.get(f"{CASES}/{case_id}", headers=reader.headers)).json()
        winner = next(a for a in answers if a.status_code == 200).json()["holder"]
        assert detail["holder"] == winner
        assert [e["kind"] for e in detail["events"]].count("claimed") == 1


async def test_overdue_cases_are_listed_for_their_centre_and_for_administrators(
    app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    side = await requester(app)
    reader = await centre(app)
    stat = await submit(client, side, priority="stat")  # 15 minutes for the ECG network
    routine = await submit(client, side, priority="routine")  # 24 hours
    clock.advance(timedelta(minutes=20))
    headers = await doctor(app, reader.organization_id)  # tokens live 5 minutes: issued after the jump
    listed = (await client.get(f"{API}/worklist/overdue", headers=headers)).json()
    assert [c["id"] for c in listed] == [stat["id"]]
    assert listed[0]["overdue"] is True
    everywhere = (await client.get(f"{API}/overdue", params={"network_code": "ecg"}, headers=await admin(app))).json()
    assert [c["id"] for c in everywhere] == [stat["id"]]
    assert routine["id"] not in [c["id"] for c in everywhere]
    assert (await client.get(f"{API}/overdue", headers=headers)).status_code == 403


async def test_a_claim_racing_another_finds_the_case_held_once_the_first_commits(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    case_id = (await submit(client, side))["id"]
    assert (await step(client, reader.headers, case_id, "accept")).status_code == 200
    database, clock = app.state.database, app.state.clock
    first, second = (
        staff(Role.READING_CENTRE_DOCTOR, organization_id=reader.organization_id, user_id=n) for n in (901, 902)
    )

    async def claim_alone() -> None:
        async with database.transaction() as session:
            await reading.claim(session, clock, second, case_id, StepIn(request_key="second"))

    async with database.transaction() as session:
        await reading.claim(session, clock, first, case_id, StepIn(request_key="first"))
        racing = asyncio.create_task(claim_alone())
        await asyncio.sleep(0.3)
        # Still waiting: on PostgreSQL for the row the first claim updated, on SQLite for the write lock.
        assert not racing.done()
    with pytest.raises(Conflict) as refused:
        await racing
    assert refused.value.code == "case_held"
    detail = (await client.get(f"{CASES}/{case_id}", headers=reader.headers)).json()
    assert detail["holder"] == first.subject
