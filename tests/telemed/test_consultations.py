"""Consultations scheduled between members produce an opinion; the month's volumes are kept as cases,
reports and consultations are written, so the bulletin adds rows instead of counting cases."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.telemed import repository
from tests.telemed.support import API, CASES, admin, centre, claimed, join, report_body, requester, submit

CONSULTATIONS = f"{API}/consultations"


def _body(participants: list[int], **overrides: Any) -> dict[str, Any]:
    return {
        "request_key": "consult-1",
        "network_code": "teleconsultation",
        "starts_at": "2022-06-16T14:00:00+08:00",
        "ends_at": "2022-06-16T15:00:00+08:00",
        "participants": [{"member_id": m, "doctor_name": "王医生"} for m in participants],
    } | overrides


async def test_a_consultation_is_scheduled_once_and_completed_by_a_participants_opinion(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app, network="teleconsultation")
    expert = await centre(app, network="teleconsultation")
    outsider = await centre(app, network="teleconsultation")
    first = await client.post(CONSULTATIONS, json=_body([expert.member_id]), headers=side.headers)
    again = await client.post(CONSULTATIONS, json=_body([expert.member_id]), headers=side.headers)
    assert first.status_code == 200, first.text
    assert first.json() == again.json()
    consultation_id = first.json()["id"]
    assert first.json()["participants"][0]["organization_id"] == expert.organization_id
    changed = await client.post(CONSULTATIONS, json=_body([outsider.member_id]), headers=side.headers)
    assert (changed.status_code, changed.json()["field"]) == (409, "request_key")
    hidden = await client.get(f"{CONSULTATIONS}/{consultation_id}", headers=outsider.headers)
    assert hidden.status_code == 404
    refused = await client.post(
        f"{CONSULTATIONS}/{consultation_id}/opinion", json={"opinion": "建议手术"}, headers=outsider.headers
    )
    assert refused.status_code == 404
    given = await client.post(
        f"{CONSULTATIONS}/{consultation_id}/opinion", json={"opinion": "建议手术"}, headers=expert.headers
    )
    assert (given.json()["status"], given.json()["opinion"]) == ("completed", "建议手术")
    other = await client.post(
        f"{CONSULTATIONS}/{consultation_id}/opinion", json={"opinion": "保守治疗"}, headers=expert.headers
    )
    assert (other.status_code, other.json()["code"], other.json()["value"]) == (409, "illegal_transition", "completed")
    seen = await client.get(f"{CONSULTATIONS}/{consultation_id}", headers=side.headers)
    assert seen.json()["opinion"] == "建议手术"


async def test_a_consultation_ending_before_it_starts_or_with_a_stranger_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app, network="teleconsultation")
    expert = await centre(app, network="teleconsultation")
    ecg_centre = await centre(app)
    backwards = await client.post(
        CONSULTATIONS, headers=side.headers, json=_body([expert.member_id], ends_at="2022-06-16T13:00:00+08:00")
    )
    assert (backwards.status_code, backwards.json()["field"]) == (422, "ends_at")
    stranger = await client.post(CONSULTATIONS, headers=side.headers, json=_body([ecg_centre.member_id]))
    assert (stranger.status_code, stranger.json()["field"], stranger.json()["value"]) == (
        422,
        "participants",
        ecg_centre.member_id,
    )


async def test_the_months_volumes_count_cases_reports_and_consultations_per_organization(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    busy = await requester(app)
    quiet = await requester(app)
    reader = await centre(app)
    for _ in range(2):
        await submit(client, busy)
    case = await claimed(client, quiet, reader)
    signed = await client.post(f"{CASES}/{case['id']}/report/sign", json=report_body(), headers=reader.headers)
    assert signed.status_code == 200
    async with app.state.database.transaction() as session:
        rows = await repository.month_volumes(session, "ecg", date(2022, 6, 1))
    assert [(r.organization_id, r.cases_submitted, r.reports_signed) for r in rows] == [
        (busy.organization_id, 2, 0),
        (quiet.organization_id, 1, 0),
        (reader.organization_id, 0, 1),
    ]


async def test_each_rule_of_a_consultations_people_and_case_is_named_when_broken(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app, network="teleconsultation")
    expert = await centre(app, network="teleconsultation")
    gone = await centre(app, network="teleconsultation")
    await join(app, side.organization_id, "requester", network="ecg")  # the same hospital, in the ECG network too
    await centre(app)  # someone to read its ECG
    ecg_case = await submit(client, side)
    headers = await admin(app)
    left = await client.post(f"{API}/members/{gone.member_id}/leave", json={"left_on": "2022-06-01"}, headers=headers)
    assert left.status_code == 200, left.text

    async def refused(body: dict[str, Any]) -> tuple[int, str, object, str]:
        response = await client.post(CONSULTATIONS, json=body, headers=side.headers)
        found = response.json()
        return response.status_code, found["field"], found["value"], found["rule"]

    assert await refused(_body([expert.member_id], request_key="k-case", case_id=ecg_case["id"])) == (
        422, "case_id", ecg_case["id"], "telemed.consultation.case_network")
    assert await refused(_body([expert.member_id, expert.member_id], request_key="k-twice")) == (
        422, "participants", [expert.member_id, expert.member_id], "telemed.consultation.distinct")
    assert await refused(_body([side.member_id], request_key="k-self")) == (
        422, "participants", side.member_id, "telemed.consultation.participant")
    assert await refused(_body([expert.member_id, gone.member_id], request_key="k-gone")) == (
        422, "participants", gone.member_id, "telemed.consultation.participant")
    # None of the refused requests left anything behind: the first good one is the requester's first consultation.
    good = _body([expert.member_id], request_key="k-good")
    accepted = await client.post(CONSULTATIONS, json=good, headers=side.headers)
    assert accepted.status_code == 200, accepted.text
    async with app.state.database.transaction() as session:
        volumes = await repository.month_volumes(session, "teleconsultation", date(2022, 6, 1))
    assert {row.organization_id: row.consultations for row in volumes} == {side.organization_id: 1}


async def test_the_same_opinion_sent_again_changes_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app, network="teleconsultation")
    expert = await centre(app, network="teleconsultation")
    scheduled = await client.post(CONSULTATIONS, json=_body([expert.member_id]), headers=side.headers)
    path = f"{CONSULTATIONS}/{scheduled.json()['id']}/opinion"
    first = await client.post(path, json={"opinion": "建议随访"}, headers=expert.headers)
    again = await client.post(path, json={"opinion": "建议随访"}, headers=expert.headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["opinion_at"] is not None
