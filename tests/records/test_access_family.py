"""The family-doctor contract as a reason to open a resident's shared record: a clinician of the contracted
team's centre may, one of another centre may not, and a cancelled contract is no reason."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.records.family_support import FAMILY, centre, sign_one
from tests.records.support import RECORDS, clinician, resident_headers


async def test_a_contract_with_a_team_of_the_clinicians_centre_opens_the_record_and_is_logged(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    signed = await sign_one(app, client)
    chc, person = signed.centre_id, signed.resident_id
    opened = await client.get(f"{RECORDS}/residents/{person}", headers=await clinician(app, chc))
    assert opened.status_code == 200, opened.text
    log = await client.get(f"{RECORDS}/me/access-log", headers=await resident_headers(app, person))
    assert [(row["reason_kind"], row["reason_ref"]) for row in log.json()] == [
        ("family_doctor", f"family_contract:organization:{chc}")]


async def test_a_contract_with_another_centre_is_no_reason(app: FastAPI, client: httpx.AsyncClient) -> None:
    person = (await sign_one(app, client)).resident_id
    other = await centre(app)
    refused = await client.get(f"{RECORDS}/residents/{person}", headers=await clinician(app, other))
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "shared_record_not_found"


async def test_a_cancelled_contract_is_no_reason(app: FastAPI, client: httpx.AsyncClient) -> None:
    signed = await sign_one(app, client)
    cancelled = await client.post(f"{FAMILY}/contracts/{signed.contract['id']}/cancel", headers=signed.headers,
                                  json={"reason": "moved away"})
    assert cancelled.status_code == 200, cancelled.text
    refused = await client.get(f"{RECORDS}/residents/{signed.resident_id}",
                               headers=await clinician(app, signed.centre_id))
    assert refused.status_code == 404, refused.text
