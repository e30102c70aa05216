"""Agents annotate and reclassify calls (audited, history kept); crisis calls open follow-ups that escalate."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.hotline import tasks
from cityhealth.hotline.models import Call
from cityhealth.queue import Runtime
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff
from tests.hotline.calls_support import add_line, agent, call_events, telephony

REPORT = "/api/hotline/call-events"


async def _report(app: FastAPI, client: httpx.AsyncClient, call_id: str, **options: object) -> int:
    response = await client.post(REPORT, headers=await telephony(app),
                                 json={"events": call_events(call_id, app.state.clock.now(), **options)})
    assert response.status_code == 200, response.text
    async with app.state.database.transaction() as session:
        return (await session.scalars(select(Call.id).where(Call.telephony_call_id == call_id))).one()


async def _crisis_team(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.CRISIS_COUNSELLOR, user_id=70))


async def test_an_agent_annotates_their_call_and_a_retry_adds_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers, subject = await agent(app, 1)
    call_id = await _report(app, client, "c-1", agent=subject)
    body = {"request_key": "note-1", "note": "caller asked for the opening hours"}
    first = await client.post(f"/api/hotline/calls/{call_id}/annotations", headers=headers, json=body)
    again = await client.post(f"/api/hotline/calls/{call_id}/annotations", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert again.json()["note"] == body["note"]
    assert [(c["kind"], c["actor"]) for c in again.json()["changes"]] == [("annotation", subject)]
    other = await client.post(f"/api/hotline/calls/{call_id}/annotations", headers=headers,
                              json={"request_key": "note-1", "note": "something else"})
    assert other.status_code == 409
    assert other.json()["rule"] == "hotline.change.key_once"


async def test_an_agent_cannot_change_another_agents_call(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    call_id = await _report(app, client, "c-2", agent="staff:1")
    other, _ = await agent(app, 2)
    response = await client.post(f"/api/hotline/calls/{call_id}/annotations", headers=other,
                                 json={"request_key": "k", "note": "n"})
    assert response.status_code == 404


async def test_a_reclassification_is_kept_in_history_and_wins_over_a_later_report(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers, subject = await agent(app, 1)
    events = call_events("c-3", app.state.clock.now(), agent=subject, category="consultation")
    telephony_headers = await telephony(app)
    await client.post(REPORT, headers=telephony_headers, json={"events": events[:4]})
    async with app.state.database.transaction() as session:
        call_id = (await session.scalars(select(Call.id))).one()
    response = await client.post(f"/api/hotline/calls/{call_id}/classification", headers=headers, json={
        "request_key": "r-1", "category": "complaint", "reason": "the caller complains of a refused referral"})
    assert response.status_code == 200, response.text
    await client.post(REPORT, headers=telephony_headers, json={"events": events[4:]})  # the end, late
    detail = (await client.get(f"/api/hotline/calls/{call_id}", headers=headers)).json()
    assert (detail["category"], detail["reported_category"], detail["classified_by"]) == (
        "complaint", "consultation", subject)
    assert [(c["category_from"], c["category_to"]) for c in detail["changes"]] == [(None, "complaint")]
    async with app.state.database.transaction() as session:
        audited = (await session.scalars(select(AuditEvent.detail).where(
            AuditEvent.resource_type == "hotline_call", AuditEvent.resource_id == str(call_id)))).all()
    assert "reclassification" in audited


async def test_a_reclassification_to_the_same_category_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers, subject = await agent(app, 1)
    call_id = await _report(app, client, "c-4", agent=subject, category="complaint")
    response = await client.post(f"/api/hotline/calls/{call_id}/classification", headers=headers, json={
        "request_key": "r-1", "category": "complaint", "reason": "same"})
    assert response.status_code == 422
    assert response.json()["rule"] == "hotline.reclassify.changes_category"


async def test_a_crisis_call_opens_a_follow_up_only_the_crisis_team_sees(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    call_id = await _report(app, client, "c-5", category="crisis_intervention")
    listed = await client.get("/api/hotline/crisis-follow-ups", headers=await _crisis_team(app))
    assert [(f["call_id"], f["status"], f["overdue"]) for f in listed.json()] == [(call_id, "open", False)]
    assert listed.json()[0]["caller_number_masked"] == "138****5678"
    for role in (Role.HOTLINE_AGENT, Role.HOTLINE_SUPERVISOR):
        refused = await client.get("/api/hotline/crisis-follow-ups", headers=await headers_for(app, staff(role)))
        assert refused.status_code == 403


async def test_reclassifying_into_crisis_opens_a_follow_up_and_out_of_it_cancels_it(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    headers, subject = await agent(app, 1)
    call_id = await _report(app, client, "c-6", agent=subject, category="manual_service")
    await client.post(f"/api/hotline/calls/{call_id}/classification", headers=headers, json={
        "request_key": "r-1", "category": "crisis_intervention", "reason": "the caller spoke of self-harm"})
    team = await _crisis_team(app)
    assert len((await client.get("/api/hotline/crisis-follow-ups", headers=team)).json()) == 1
    await client.post(f"/api/hotline/calls/{call_id}/classification", headers=headers, json={
        "request_key": "r-2", "category": "manual_service", "reason": "misheard"})
    assert (await client.get("/api/hotline/crisis-follow-ups", headers=team)).json() == []
    cancelled = (await client.get("/api/hotline/crisis-follow-ups?status=cancelled", headers=team)).json()
    assert [f["call_id"] for f in cancelled] == [call_id]


async def test_an_overdue_follow_up_escalates_once_on_the_periodic_task(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    await _report(app, client, "c-7", category="crisis_intervention")
    runtime: Runtime = app.state.tasks
    assert await tasks.escalate_crisis_follow_ups(runtime) == []  # not due yet
    app.state.clock.advance(timedelta(hours=25))
    escalated = await tasks.escalate_crisis_follow_ups(runtime)
    assert len(escalated) == 1
    assert await tasks.escalate_crisis_follow_ups(runtime) == []  # escalated once
    team = await _crisis_team(app)
    follow_up = (await client.get(f"/api/hotline/crisis-follow-ups/{escalated[0]}", headers=team)).json()
    assert follow_up["overdue"] is True
    assert follow_up["escalated_at"] is not None


async def test_a_closed_follow_up_closes_once_and_does_not_escalate(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    await _report(app, client, "c-8", category="crisis_intervention")
    team = await _crisis_team(app)
    follow_up_id = (await client.get("/api/hotline/crisis-follow-ups", headers=team)).json()[0]["id"]
    body = {"note": "called back; referred to the crisis centre"}
    first = await client.post(f"/api/hotline/crisis-follow-ups/{follow_up_id}/close", headers=team, json=body)
    again = await client.post(f"/api/hotline/crisis-follow-ups/{follow_up_id}/close", headers=team, json=body)
    assert first.json()["status"] == again.json()["status"] == "done"
    other = await client.post(f"/api/hotline/crisis-follow-ups/{follow_up_id}/close", headers=team,
                              json={"note": "different"})
    assert other.status_code == 409
    assert other.json()["value"] == "done"
    app.state.clock.advance(timedelta(days=2))
    assert await tasks.escalate_crisis_follow_ups(app.state.tasks) == []
