"""Who may open a resident's shared record: a clinician on a reason the platform checks (a booking or an open
encounter at the clinician's organization, the resident's live consent), else not-found and audited; break-glass
openings logged for review; every opening in the resident's access log."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import NotFound
from cityhealth.records import access
from cityhealth.records.models import AccessLogEntry
from cityhealth.security.principals import Role
from tests.factories.booking import World, book, publish, resident_principal
from tests.factories.collection import make_record
from tests.factories.registry import audit_events
from tests.factories.security import staff
from tests.records.support import (
    RECORDS,
    auditor,
    clinician,
    count,
    hours_ago,
    link,
    master,
    person,
    resident_headers,
    upload,
    visit,
)

GULOU = "H-GULOU"


async def _open(client: httpx.AsyncClient, headers: dict[str, str], resident_id: int) -> httpx.Response:
    return await client.get(f"{RECORDS}/residents/{resident_id}", headers=headers)


async def test_a_clinician_with_no_reason_gets_not_found_and_the_refusal_is_audited(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    response = await _open(client, await clinician(app, world.hospital_id), who.resident_id)
    assert response.status_code == 404, response.text
    assert (response.json()["code"], response.json()["field"]) == ("shared_record_not_found", "resident_id")
    denied = await audit_events(database, resource_type="shared_record", action="denied")
    assert [(e.actor, e.resident_id, e.outcome) for e in denied] == [("staff:41", who.resident_id, "denied")]
    assert await count(database, AccessLogEntry) == 0


async def test_a_resident_who_does_not_exist_gets_the_same_not_found(
        app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    response = await _open(client, await clinician(app, world.hospital_id), 9999)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "shared_record_not_found"


async def test_a_booking_at_the_clinicians_organization_opens_the_record_and_is_logged(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    session = await publish(client, app, world)
    booked = await book(client, app, resident_principal(who.resident_id), session["id"])
    assert booked.status_code == 201, booked.text
    response = await _open(client, await clinician(app, world.hospital_id), who.resident_id)
    assert response.status_code == 200, response.text
    log = await client.get(f"{RECORDS}/me/access-log", headers=await resident_headers(app, who.resident_id))
    assert [(row["accessor"], row["reason_kind"], row["reason_ref"], row["organization_name"])
            for row in log.json()] == [("staff:41", "booking", f"booking:{booked.json()['id']}", "南京鼓楼医院")]
    assert log.json()[0]["id"] == response.json()["access_id"]


async def test_a_booking_at_another_organization_is_no_reason(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    session = await publish(client, app, world)
    await book(client, app, resident_principal(who.resident_id), session["id"])
    response = await _open(client, await clinician(app, world.other_hospital_id), who.resident_id)
    assert response.status_code == 404, response.text


async def test_an_admission_not_yet_discharged_opens_the_record_and_its_discharge_ends_that(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 80), "P001", who)])
    await upload(client, app, world.hospital_id, "admission",
                 [make_record("admission", GULOU, "a-1", hours_ago(clock, 72), patient_id="P001",
                              admission_no="A7")])
    await link(database, clock, settings)
    headers = await clinician(app, world.hospital_id)
    opened = await _open(client, headers, who.resident_id)
    assert opened.status_code == 200, opened.text
    await upload(client, app, world.hospital_id, "discharge",
                 [make_record("discharge", GULOU, "x-1", hours_ago(clock, 1), admission_no="A7",
                              admission_time=make_record("admission", GULOU, "a-1", hours_ago(clock, 72))
                              ["admission_time"])])
    await link(database, clock, settings)
    assert (await _open(client, headers, who.resident_id)).status_code == 404


async def test_a_visit_within_a_day_opens_the_record_and_an_older_one_does_not(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 30), "P001", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 20), "P001", "V9")])
    await link(database, clock, settings)
    headers = await clinician(app, world.hospital_id)
    opened = await _open(client, headers, who.resident_id)
    assert opened.status_code == 200, opened.text
    clock.advance(timedelta(hours=5))
    assert (await _open(client, await clinician(app, world.hospital_id), who.resident_id)).status_code == 404


async def _consent(client: httpx.AsyncClient, app: FastAPI, resident_id: int, organization_id: int,
                   days: int = 3) -> httpx.Response:
    return await client.post(f"{RECORDS}/me/consents", headers=await resident_headers(app, resident_id),
                             json={"organization_id": organization_id, "days": days})


async def test_the_residents_consent_opens_the_record_for_that_organization_only(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    granted = await _consent(client, app, who.resident_id, world.hospital_id)
    assert granted.status_code == 201, granted.text
    opened = await _open(client, await clinician(app, world.hospital_id), who.resident_id)
    assert opened.status_code == 200, opened.text
    assert (await _open(client, await clinician(app, world.other_hospital_id, 44), who.resident_id)).status_code \
        == 404


async def test_an_expired_consent_is_refused(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await _consent(client, app, who.resident_id, world.hospital_id, days=1)
    clock.advance(timedelta(days=1, seconds=1))
    response = await _open(client, await clinician(app, world.hospital_id), who.resident_id)
    assert response.status_code == 404, response.text
    assert len(await audit_events(database, resource_type="shared_record", action="denied")) == 1


async def test_a_revoked_consent_is_refused(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    granted = await _consent(client, app, who.resident_id, world.hospital_id)
    revoked = await client.post(f"{RECORDS}/me/consents/{granted.json()['id']}/revoke",
                                headers=await resident_headers(app, who.resident_id))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await _open(client, await clinician(app, world.hospital_id), who.resident_id)).status_code == 404


async def test_a_consent_of_more_than_ninety_days_is_malformed(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    response = await _consent(client, app, who.resident_id, world.hospital_id, days=91)
    assert response.status_code == 422, response.text


async def test_a_resident_cannot_revoke_another_residents_consent(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    other = await person(database, settings, clock, 5)
    granted = await _consent(client, app, who.resident_id, world.hospital_id)
    response = await client.post(f"{RECORDS}/me/consents/{granted.json()['id']}/revoke",
                                 headers=await resident_headers(app, other.resident_id))
    assert response.status_code == 404, response.text


async def test_break_glass_opens_the_record_is_logged_and_listed_for_review_once(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    response = await client.post(f"{RECORDS}/residents/{who.resident_id}/break-glass",
                                 headers=await clinician(app, world.hospital_id),
                                 json={"justification": "unconscious at the emergency department"})
    assert response.status_code == 200, response.text
    headers = await auditor(app)
    listed = await client.get(f"{RECORDS}/break-glass", headers=headers)
    assert [(row["resident_id"], row["reason_ref"]) for row in listed.json()] == [
        (who.resident_id, "unconscious at the emergency department")]
    entry_id = listed.json()[0]["id"]
    reviewed = await client.post(f"{RECORDS}/break-glass/{entry_id}/review", headers=headers,
                                 json={"note": "justified: admitted via A&E"})
    assert reviewed.status_code == 200, reviewed.text
    assert (await client.get(f"{RECORDS}/break-glass", headers=headers)).json() == []
    again = await client.post(f"{RECORDS}/break-glass/{entry_id}/review", headers=headers, json={"note": "x"})
    assert again.status_code == 409, again.text
    log = await client.get(f"{RECORDS}/me/access-log", headers=await resident_headers(app, who.resident_id))
    assert [row["reason_kind"] for row in log.json()] == ["break_glass"]


async def test_break_glass_needs_a_justification(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    response = await client.post(f"{RECORDS}/residents/{who.resident_id}/break-glass",
                                 headers=await clinician(app, world.hospital_id), json={"justification": "x"})
    assert response.status_code == 422, response.text
    assert await count(database, AccessLogEntry) == 0


async def test_an_auditor_reads_any_residents_access_log_and_a_clinician_cannot(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await _consent(client, app, who.resident_id, world.hospital_id)
    await _open(client, await clinician(app, world.hospital_id), who.resident_id)
    read = await client.get(f"{RECORDS}/residents/{who.resident_id}/access-log", headers=await auditor(app))
    assert [row["reason_kind"] for row in read.json()] == ["consent"]
    refused = await client.get(f"{RECORDS}/residents/{who.resident_id}/access-log",
                               headers=await clinician(app, world.hospital_id))
    assert refused.status_code == 403, refused.text


class _Always:
    kind = "family_doctor"

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None:
        return f"contract-for:{resident_id}"


async def test_the_reasons_are_a_list_and_another_reason_is_asked_in_turn(
        database: Database, settings: Settings, clock: SimulatedClock, world: World) -> None:
    who = await person(database, settings, clock, 3)
    principal = staff(Role.CLINICIAN, organization_id=world.hospital_id, user_id=41)
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await access.checked_opening(session, clock, principal, who.resident_id)
        entry = await access.checked_opening(session, clock, principal, who.resident_id,
                                             [*access.REASONS, _Always()])
        assert (entry.reason_kind, entry.reason_ref) == ("family_doctor", f"contract-for:{who.resident_id}")


async def test_a_consent_for_an_unknown_organization_is_refused_and_nothing_is_kept(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    response = await _consent(client, app, who.resident_id, 9999)
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"], response.json()["rule"]) == (
        "organization_unknown", "organization_id", "organization.unknown")
    listed = await client.get(f"{RECORDS}/me/consents", headers=await resident_headers(app, who.resident_id))
    assert listed.json() == []
