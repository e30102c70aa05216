"""The family-doctor contract as a reason to open a resident's shared record: a clinician of the contracted
team's centre may, one of another centre may not, and a cancelled contract is no reason."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.records.family_support import FAMILY, centre, doctor, package, resident, signing, team
from tests.records.support import RECORDS, clinician, resident_headers


async def _signed(app: FastAPI, client: httpx.AsyncClient) -> tuple[int, int, dict[str, str], int]:
    """(centre, resident, the centre's family doctor's headers, contract id) of one resident signed today."""
    chc = await centre(app)
    team_id, package_id, person = await team(app, chc), await package(app), await resident(app)
    headers = await doctor(app, chc)
    signed = await client.post(f"{FAMILY}/contracts", headers=headers, json=signing([person], team_id, package_id))
    assert signed.status_code == 201, signed.text
    return chc, person, headers, signed.json()[0]["id"]


async def test_a_contract_with_a_team_of_the_clinicians_centre_opens_the_record_and_is_logged(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, person, _, _ = await _signed(app, client)
    opened = await client.get(f"{RECORDS}/residents/{person}", headers=await clinician(app, chc))
    assert opened.status_code == 200, opened.text
    log = await client.get(f"{RECORDS}/me/access-log", headers=await resident_headers(app, person))
    assert [(row["reason_kind"], row["reason_ref"]) for row in log.json()] == [
        ("family_doctor", f"family_contract:organization:{chc}")]


async def test_a_contract_with_another_centre_is_no_reason(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, person, _, _ = await _signed(app, client)
    other = await centre(app)
    refused = await client.get(f"{RECORDS}/residents/{person}", headers=await clinician(app, other))
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "shared_record_not_found"


async def test_a_cancelled_contract_is_no_reason(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, person, headers, contract_id = await _signed(app, client)
    cancelled = await client.post(f"{FAMILY}/contracts/{contract_id}/cancel", headers=headers,
                                  json={"reason": "moved away"})
    assert cancelled.status_code == 200, cancelled.text
    refused = await client.get(f"{RECORDS}/residents/{person}", headers=await clinician(app, chc))
    assert refused.status_code == 404, refused.text
