"""Case-discussion meetings and video lectures: scheduled once per request key by a member, with participants
and a speaker of the network, held or cancelled once, seen by the people they concern."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.telemed.pathology_support import (
    NOW,
    PATHOLOGY,
    Network,
    hospital_headers,
    lecture_body,
    meeting_body,
    network,
    person,
    problem,
    submit,
)
from tests.telemed.support import API, doctor, requester

MEETINGS = f"{PATHOLOGY}/meetings"
LECTURES = f"{PATHOLOGY}/lectures"


async def _people(client: httpx.AsyncClient, net: Network) -> tuple[dict[str, Any], dict[str, Any]]:
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    doctor_ = await person(client, net.admin, net.hospital.organization_id, "doctor")
    return expert, doctor_


def _after_start(app: FastAPI) -> None:
    """Move the clock past every event's start (tokens issued before expire: callers take fresh ones)."""
    app.state.clock.advance(timedelta(days=3))


async def test_a_meeting_is_scheduled_with_its_participants_and_cases(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, doctor_ = await _people(client, net)
    case_id = (await submit(client, net.hospital))["case"]["id"]
    made = await client.post(
        MEETINGS, json=meeting_body([expert["id"], doctor_["id"]], case_ids=[case_id]), headers=net.hospital.headers
    )
    assert made.status_code == 200, made.text
    meeting = made.json()
    assert meeting["status"] == "scheduled"
    assert meeting["case_ids"] == [case_id]
    assert {p["person_id"] for p in meeting["participants"]} == {expert["id"], doctor_["id"]}
    # The expert's centre takes part: it sees the meeting; a member that does not, does not.
    assert (await client.get(f"{MEETINGS}/{meeting['id']}", headers=net.centre.headers)).status_code == 200
    stranger = await requester(app, network="pathology")
    unseen = await client.get(f"{MEETINGS}/{meeting['id']}", headers=stranger.headers)
    assert problem(unseen) == (404, "meeting_id", meeting["id"], "telemed.pathology.meeting.visible")


async def test_the_same_meeting_request_twice_is_one_meeting(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    body = meeting_body([expert["id"]])
    first = await client.post(MEETINGS, json=body, headers=net.hospital.headers)
    again = await client.post(MEETINGS, json=body, headers=net.hospital.headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    changed = await client.post(MEETINGS, json=body | {"title": "另一个会"}, headers=net.hospital.headers)
    assert problem(changed) == (409, "request_key", body["request_key"], "telemed.pathology.meeting.same_request")


async def test_a_participant_outside_the_network_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    other = await requester(app, network="pathology")
    leaver = await person(client, net.admin, other.organization_id, "doctor")
    left = await client.post(
        f"{API}/members/{other.member_id}/leave", json={"left_on": "2022-06-15"}, headers=net.admin
    )
    assert left.status_code == 200
    for outsider in (leaver["id"], 999_999):
        refused = await client.post(MEETINGS, json=meeting_body([expert["id"], outsider]), headers=net.hospital.headers)
        assert problem(refused) == (422, "participant_ids", outsider, "telemed.pathology.meeting.participant")


async def test_a_deactivated_participant_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    await client.post(f"{PATHOLOGY}/people/{expert['id']}/deactivate", json={}, headers=net.admin)
    refused = await client.post(MEETINGS, json=meeting_body([expert["id"]]), headers=net.hospital.headers)
    assert problem(refused) == (422, "participant_ids", expert["id"], "telemed.pathology.meeting.participant")


async def test_a_case_the_organizer_may_not_see_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    other = await requester(app, network="pathology")
    theirs = (await submit(client, other))["case"]["id"]
    refused = await client.post(
        MEETINGS, json=meeting_body([expert["id"]], case_ids=[theirs]), headers=net.hospital.headers
    )
    assert problem(refused) == (422, "case_ids", theirs, "telemed.pathology.meeting.case")


async def test_a_meeting_ending_before_it_starts_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    body = meeting_body([expert["id"]])
    refused = await client.post(
        MEETINGS, json=body | {"ends_at": body["starts_at"]}, headers=net.hospital.headers
    )
    assert problem(refused) == (422, "ends_at", body["starts_at"], "telemed.pathology.meeting.times")


async def test_a_meeting_is_held_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    meeting = (await client.post(MEETINGS, json=meeting_body([expert["id"]]), headers=net.hospital.headers)).json()
    hold = f"{MEETINGS}/{meeting['id']}/hold"
    early = await client.post(hold, json={"request_key": "h1", "minutes": "讨论纪要"}, headers=net.hospital.headers)
    status, field, value, rule = problem(early)
    assert (status, field, rule) == (409, "starts_at", "telemed.pathology.meeting.started")
    assert datetime.fromisoformat(value) == datetime.fromisoformat(meeting["starts_at"])
    _after_start(app)
    organizer = await hospital_headers(app, net)
    held = await client.post(hold, json={"request_key": "h1", "minutes": "讨论纪要"}, headers=organizer)
    repeated = await client.post(hold, json={"request_key": "h1", "minutes": "讨论纪要"}, headers=organizer)
    assert held.status_code == repeated.status_code == 200
    assert held.json()["status"] == "held"
    assert repeated.json()["held_at"] == held.json()["held_at"]
    twice = await client.post(hold, json={"request_key": "h2", "minutes": "再开一次"}, headers=organizer)
    assert problem(twice) == (409, "status", "held", "telemed.pathology.meeting.hold")
    assert twice.json()["code"] == "illegal_transition"
    cancel = await client.post(f"{MEETINGS}/{meeting['id']}/cancel", json={"request_key": "c1"}, headers=organizer)
    assert problem(cancel) == (409, "status", "held", "telemed.pathology.meeting.cancel")


async def test_a_cancelled_meeting_is_not_held(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    meeting = (await client.post(MEETINGS, json=meeting_body([expert["id"]]), headers=net.hospital.headers)).json()
    cancelled = await client.post(
        f"{MEETINGS}/{meeting['id']}/cancel",
        json={"request_key": "c1", "reason": "专家出差"},
        headers=net.hospital.headers,
    )
    assert cancelled.json()["status"] == "cancelled"
    _after_start(app)
    refused = await client.post(
        f"{MEETINGS}/{meeting['id']}/hold", json={"request_key": "h1", "minutes": "无"},
        headers=await hospital_headers(app, net),
    )
    assert problem(refused) == (409, "status", "cancelled", "telemed.pathology.meeting.hold")


async def test_only_the_organizer_holds_a_meeting(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    meeting = (await client.post(MEETINGS, json=meeting_body([expert["id"]]), headers=net.hospital.headers)).json()
    refused = await client.post(
        f"{MEETINGS}/{meeting['id']}/cancel", json={"request_key": "c1"}, headers=net.centre.headers
    )
    assert problem(refused) == (404, "meeting_id", meeting["id"], "telemed.pathology.meeting.visible")


async def test_a_lecture_ending_before_it_starts_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    body = lecture_body(expert["id"])
    before = (NOW + timedelta(days=1)).isoformat()
    refused = await client.post(LECTURES, json=body | {"ends_at": before}, headers=net.centre.headers)
    assert problem(refused) == (422, "ends_at", before, "telemed.pathology.lecture.times")


async def test_a_lecture_is_given_by_an_active_expert(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    _, doctor_ = await _people(client, net)
    refused = await client.post(LECTURES, json=lecture_body(doctor_["id"]), headers=net.centre.headers)
    assert problem(refused) == (422, "speaker_id", doctor_["id"], "telemed.pathology.lecture.speaker")


async def test_a_lecture_is_held_once_with_its_attendance(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    body = lecture_body(expert["id"])
    first = await client.post(LECTURES, json=body, headers=net.centre.headers)
    again = await client.post(LECTURES, json=body, headers=net.centre.headers)
    assert first.json()["id"] == again.json()["id"]
    lecture = first.json()
    assert lecture["speaker_name"] == "李教授"
    # Teaching for the network: another member sees it, an organization outside it does not.
    assert (await client.get(f"{LECTURES}/{lecture['id']}", headers=net.hospital.headers)).status_code == 200
    ecg = await requester(app, network="ecg")
    assert (await client.get(f"{LECTURES}/{lecture['id']}", headers=ecg.headers)).status_code == 404
    _after_start(app)
    speaker_centre = await doctor(app, net.centre.organization_id)
    hold = f"{LECTURES}/{lecture['id']}/hold"
    held = await client.post(hold, json={"request_key": "h1", "attendance": 120}, headers=speaker_centre)
    assert (held.status_code, held.json()["status"], held.json()["attendance"]) == (200, "held", 120)
    twice = await client.post(hold, json={"request_key": "h2", "attendance": 80}, headers=speaker_centre)
    assert problem(twice) == (409, "status", "held", "telemed.pathology.lecture.hold")


async def test_an_organization_lists_the_meetings_it_organizes_or_attends(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    net = await network(app)
    expert, doctor_ = await _people(client, net)
    stranger = await requester(app, network="pathology")
    theirs = await person(client, net.admin, stranger.organization_id, "doctor")
    with_expert = (await client.post(MEETINGS, json=meeting_body([expert["id"]]), headers=net.hospital.headers)).json()
    without = (await client.post(MEETINGS, json=meeting_body([doctor_["id"]]), headers=net.hospital.headers)).json()
    elsewhere = await client.post(MEETINGS, json=meeting_body([theirs["id"]]), headers=stranger.headers)
    assert elsewhere.status_code == 200
    listed = {m["id"] for m in (await client.get(MEETINGS, headers=net.hospital.headers)).json()}
    attended = {m["id"] for m in (await client.get(MEETINGS, headers=net.centre.headers)).json()}
    assert listed == {with_expert["id"], without["id"]}
    assert attended == {with_expert["id"]}


async def test_members_list_the_network_lectures_and_others_are_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    net = await network(app)
    expert, _ = await _people(client, net)
    lecture = (await client.post(LECTURES, json=lecture_body(expert["id"]), headers=net.centre.headers)).json()
    listed = await client.get(LECTURES, params={"status": "scheduled"}, headers=net.hospital.headers)
    assert [item["id"] for item in listed.json()] == [lecture["id"]]
    ecg = await requester(app, network="ecg")
    refused = await client.get(LECTURES, headers=ecg.headers)
    assert problem(refused) == (403, "network_code", "pathology", "telemed.pathology.organizer_member")
