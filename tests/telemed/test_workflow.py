"""A case's life: submitted and routed, received, accepted, claimed, reported, signed and returned; the
illegal steps refused naming the state and the step; every step once per request key."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories.registry import audit_events
from tests.telemed.support import CASES, a_resident, case_body, centre, claimed, report_body, requester, step, submit


async def test_a_case_goes_from_submission_to_a_signed_report_returned_to_the_requester(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    case = await submit(client, side)
    assert (case["status"], case["business_status"]) == ("requested", "awaiting-centre")
    assert case["centre_member_id"] == reader.member_id
    case_id = case["id"]
    for name, status in (("receive", "received"), ("accept", "accepted"), ("claim", "in-progress")):
        response = await step(client, reader.headers, case_id, name)
        assert (response.status_code, response.json()["status"]) == (200, status), response.text
    drafted = await client.put(f"{CASES}/{case_id}/report", json=report_body(conclusion="草稿"), headers=reader.headers)
    assert drafted.json()["business_status"] == "report-drafted"
    assert drafted.json()["report"]["signed_at"] is None
    unseen = await client.get(f"{CASES}/{case_id}/report", headers=side.headers)
    assert unseen.status_code == 404  # the requester sees no draft
    signed = await client.post(f"{CASES}/{case_id}/report/sign", json=report_body(), headers=reader.headers)
    assert (signed.json()["status"], signed.json()["business_status"]) == ("completed", "report-returned")
    returned = await client.get(f"{CASES}/{case_id}/report", headers=side.headers)
    assert returned.status_code == 200
    assert returned.json()["conclusion"] == "正常心电图"
    detail = (await client.get(f"{CASES}/{case_id}", headers=side.headers)).json()
    assert [e["kind"] for e in detail["events"]] == [
        "submitted",
        "routed",
        "received",
        "accepted",
        "claimed",
        "drafted",
        "signed",
    ]
    assert detail["completed_at"] is not None


@pytest.mark.parametrize(
    ("done", "name", "state"),
    [
        ((), "claim", "requested"),
        (("accept",), "receive", "accepted"),
        (("accept", "claim"), "accept", "in-progress"),
        (("accept", "claim"), "reject", "in-progress"),
    ],
)
async def test_an_illegal_step_is_refused_naming_the_state_and_the_step(
    app: FastAPI, client: httpx.AsyncClient, done: tuple[str, ...], name: str, state: str
) -> None:
    side = await requester(app)
    reader = await centre(app)
    case_id = (await submit(client, side))["id"]
    for earlier in done:
        assert (await step(client, reader.headers, case_id, earlier)).status_code == 200
    body = {"reason": "图像不清"} if name == "reject" else {}
    refused = await step(client, reader.headers, case_id, name, **body)
    assert refused.status_code == 409
    problem = refused.json()
    assert (problem["code"], problem["field"], problem["value"]) == ("illegal_transition", "status", state)
    assert state in problem["detail"]
    assert f"'{name}'" in problem["detail"]


async def test_a_completed_case_can_be_neither_signed_again_nor_cancelled(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    case_id = (await claimed(client, side, reader))["id"]
    assert (
        await client.post(f"{CASES}/{case_id}/report/sign", json=report_body(), headers=reader.headers)
    ).status_code == 200
    again = await client.post(f"{CASES}/{case_id}/report/sign", json=report_body(), headers=reader.headers)
    assert (again.status_code, again.json()["value"]) == (409, "completed")
    cancelled = await step(client, side.headers, case_id, "cancel")
    assert (cancelled.status_code, cancelled.json()["rule"]) == (409, "telemed.case.cancel")


async def test_a_retried_step_is_one_step_and_a_reused_key_for_another_step_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    case_id = (await submit(client, side))["id"]
    first = await step(client, reader.headers, case_id, "accept", request_key="acc-1")
    again = await step(client, reader.headers, case_id, "accept", request_key="acc-1")
    assert first.status_code == again.status_code == 200
    assert [e["kind"] for e in again.json()["events"]].count("accepted") == 1
    reused = await step(client, reader.headers, case_id, "claim", request_key="acc-1")
    assert (reused.status_code, reused.json()["rule"]) == (409, "telemed.case.key_once")


async def test_a_resubmitted_case_is_the_same_case_and_a_changed_one_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    await centre(app)
    body = case_body("ECG-0001")
    first = await client.post(CASES, json=body, headers=side.headers)
    again = await client.post(CASES, json=body, headers=side.headers)
    assert first.json()["id"] == again.json()["id"]
    assert len((await client.get(CASES, headers=side.headers)).json()) == 1
    changed = await client.post(CASES, json=body | {"priority": "stat"}, headers=side.headers)
    assert (changed.status_code, changed.json()["field"]) == (409, "external_id")


async def test_the_requester_cancels_a_case_not_yet_held(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    reader = await centre(app)
    case_id = (await submit(client, side))["id"]
    cancelled = await step(client, side.headers, case_id, "cancel")
    assert (cancelled.json()["status"], cancelled.json()["business_status"]) == ("cancelled", "cancelled-by-requester")
    queue = (await client.get("/api/telemed/worklist", headers=reader.headers)).json()
    assert queue == []


async def test_every_read_of_a_case_is_audited_with_its_resident(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    reader = await centre(app)
    patient = await a_resident(app)
    case_id = (await submit(client, side, resident_id=patient))["id"]
    await client.get(f"{CASES}/{case_id}", headers=reader.headers)
    await client.get(CASES, headers=side.headers)
    events = await audit_events(app.state.database, resource_type="telemed_case", resident_id=patient)
    assert [(e.action, e.actor) for e in events] == [
        ("create", f"client:his-{side.organization_id}"),
        ("read", events[1].actor),
        ("list", events[2].actor),
    ]
    assert events[1].actor.startswith("staff:")


async def test_a_case_naming_a_resident_the_index_lacks_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    await centre(app)
    refused = await client.post(CASES, json=case_body(resident_id=424242), headers=side.headers)
    assert (refused.status_code, refused.json()["field"], refused.json()["value"]) == (422, "resident_id", 424242)
