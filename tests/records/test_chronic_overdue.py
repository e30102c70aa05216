"""The family doctor's overdue list: due and overdue patients, call outcomes, removal with a reason."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.records.chronic_models import ChronicCall
from tests.factories.registry import audit_events, count
from tests.records.family_support import CHRONIC, FAMILY, centre, doctor, package, resident, signing, team


async def _patients(app: FastAPI, client: httpx.AsyncClient, *visits: dict[str, Any] | None
                    ) -> tuple[int, dict[str, str], list[int]]:
    """A centre with one registered patient per entry of `visits` (a follow-up, or None for none yet)."""
    chc = await centre(app)
    headers = await doctor(app, chc)
    ids = []
    for followup in visits:
        registered = await client.post(f"{CHRONIC}/registrations", headers=headers, json={
            "resident_id": await resident(app), "program": "hypertension", "registered_on": "2022-01-05"})
        ids.append(registered.json()["id"])
        if followup is not None:
            response = await client.post(f"{CHRONIC}/registrations/{ids[-1]}/followups", headers=headers,
                                         json={"key": "k1"} | followup)
            assert response.status_code == 201
    return chc, headers, ids


CONTROLLED = {"visit_date": "2022-06-10", "sbp": 126, "dbp": 78}
UNCONTROLLED = {"visit_date": "2022-06-05", "sbp": 150, "dbp": 96}


async def test_the_list_shows_overdue_then_due_and_leaves_out_the_controlled(app: FastAPI,
                                                                           client: httpx.AsyncClient) -> None:
    _, headers, (never_seen, controlled, recheck) = await _patients(app, client, None, CONTROLLED, UNCONTROLLED)
    response = await client.get(f"{CHRONIC}/overdue", headers=headers)
    assert response.status_code == 200
    assert [(e["registration"]["id"], e["status"], e["days_overdue"]) for e in response.json()] == [
        (never_seen, "overdue", 161), (recheck, "due", 0)]
    assert controlled not in {e["registration"]["id"] for e in response.json()}
    assert response.json()[0]["resident"]["id_number_masked"].count("*") == 8
    events = await audit_events(app.state.database, resource_type="chronic_overdue_list")
    assert len(events) == 2  # one per resident listed


async def test_a_call_outcome_shows_on_the_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, (patient,) = await _patients(app, client, None)
    call = await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=headers,
                             json={"outcome": "agreed_to_visit"})
    assert call.status_code == 201
    assert call.json()["due_on"] == "2022-01-05"
    listed = await client.get(f"{CHRONIC}/overdue", headers=headers)
    assert [e["last_call_outcome"] for e in listed.json()] == ["agreed_to_visit"]


async def test_a_removal_with_its_reason_takes_the_patient_off_the_list_once(app: FastAPI,
                                                                            client: httpx.AsyncClient) -> None:
    _, headers, (patient,) = await _patients(app, client, None)
    body = {"outcome": "removed", "removal_reason": "visited_elsewhere"}
    first = await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=headers, json=body)
    again = await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=headers, json=body)
    assert first.json() == again.json()
    assert await count(app.state.database, ChronicCall) == 1
    assert (await client.get(f"{CHRONIC}/overdue", headers=headers)).json() == []


async def test_a_removal_without_a_reason_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, (patient,) = await _patients(app, client, None)
    response = await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=headers,
                                 json={"outcome": "removed"})
    assert response.status_code == 422
    assert response.json()["rule"] == "chronic.call.removed_with_reason"
    assert await count(app.state.database, ChronicCall) == 0


async def test_a_patient_who_died_leaves_the_register(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, (patient,) = await _patients(app, client, None)
    await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=headers,
                      json={"outcome": "removed", "removal_reason": "died"})
    detail = await client.get(f"{CHRONIC}/registrations/{patient}", headers=headers)
    assert (detail.json()["registration"]["removed_on"], detail.json()["registration"]["removal_reason"]) == (
        "2022-06-15", "died")


async def test_a_teams_list_holds_only_its_contracted_residents(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, headers, (first, second) = await _patients(app, client, None, None)
    team_id = await team(app, chc)
    detail = await client.get(f"{CHRONIC}/registrations/{first}", headers=headers)
    signed = await client.post(f"{FAMILY}/contracts", headers=headers,
                               json=signing([detail.json()["registration"]["resident_id"]], team_id,
                                            await package(app)))
    assert signed.status_code == 201
    listed = await client.get(f"{CHRONIC}/overdue", params={"team_id": team_id}, headers=headers)
    assert [e["registration"]["id"] for e in listed.json()] == [first]
    assert second != first


async def test_another_centres_patients_are_not_on_its_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, _, (patient,) = await _patients(app, client, None)
    stranger = await doctor(app, await centre(app))
    assert (await client.get(f"{CHRONIC}/overdue", headers=stranger)).json() == []
    call = await client.post(f"{CHRONIC}/registrations/{patient}/calls", headers=stranger,
                             json={"outcome": "no_answer"})
    assert call.status_code == 404
