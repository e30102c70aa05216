"""Who may open a resident's shared record: a clinician on a reason the platform checks (a booking or an open
encounter at the clinician's organization, the resident's live consent), else not-found and audited; break-glass
openings logged for review; every opening in the resident's access log."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
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
from tests.factories.registry import audit_events, count
from tests.factories.security import staff
from tests.records.support import GULOU, RECORDS, City, person


async def _open(city: City, headers: dict[str, str], resident_id: int) -> httpx.Response:
    return await city.client.get(f"{RECORDS}/residents/{resident_id}", headers=headers)


async def test_a_clinician_with_no_reason_gets_not_found_and_the_refusal_is_audited(city: City) -> None:
    who = await city.person(3)
    response = await _open(city, await city.clinician(), who.resident_id)
    assert response.status_code == 404, response.text
    assert (response.json()["code"], response.json()["field"]) == ("shared_record_not_found", "resident_id")
    denied = await audit_events(city.database, resource_type="shared_record", action="denied")
    assert [(e.actor, e.resident_id, e.outcome) for e in denied] == [("staff:41", who.resident_id, "denied")]
    assert await count(city.database, AccessLogEntry) == 0


async def test_a_resident_who_does_not_exist_gets_the_same_not_found(city: City) -> None:
    response = await _open(city, await city.clinician(), 9999)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "shared_record_not_found"


async def test_a_booking_at_the_clinicians_organization_opens_the_record_and_is_logged(city: City) -> None:
    who = await city.person(3)
    session = await publish(city.client, city.app, city.world)
    booked = await book(city.client, city.app, resident_principal(who.resident_id), session["id"])
    assert booked.status_code == 201, booked.text
    response = await _open(city, await city.clinician(), who.resident_id)
    assert response.status_code == 200, response.text
    log = await city.client.get(f"{RECORDS}/me/access-log", headers=await city.resident_headers(who.resident_id))
    assert [(row["accessor"], row["reason_kind"], row["reason_ref"], row["organization_name"])
            for row in log.json()] == [("staff:41", "booking", f"booking:{booked.json()['id']}", "南京鼓楼医院")]
    assert log.json()[0]["id"] == response.json()["access_id"]


async def test_a_booking_at_another_organization_is_no_reason(city: City) -> None:
    who = await city.person(3)
    session = await publish(city.client, city.app, city.world)
    await book(city.client, city.app, resident_principal(who.resident_id), session["id"])
    response = await _open(city, await city.clinician(city.world.other_hospital_id), who.resident_id)
    assert response.status_code == 404, response.text


async def test_an_admission_not_yet_discharged_opens_the_record_and_its_discharge_ends_that(city: City) -> None:
    who = await city.registered(3, hours=80)
    await city.upload("admission", [make_record("admission", GULOU, "a-1", city.hours_ago(72), patient_id="P001",
                                                admission_no="A7")])
    await city.link()
    headers = await city.clinician()
    opened = await _open(city, headers, who.resident_id)
    assert opened.status_code == 200, opened.text
    await city.upload("discharge",
                      [make_record("discharge", GULOU, "x-1", city.hours_ago(1), admission_no="A7",
                                   admission_time=make_record("admission", GULOU, "a-1", city.hours_ago(72))
                                   ["admission_time"])])
    await city.link()
    assert (await _open(city, headers, who.resident_id)).status_code == 404


async def test_a_visit_within_a_day_opens_the_record_and_an_older_one_does_not(city: City) -> None:
    who = await city.registered(3, hours=30)
    await city.visited(hours=20)
    await city.link()
    headers = await city.clinician()
    opened = await _open(city, headers, who.resident_id)
    assert opened.status_code == 200, opened.text
    city.clock.advance(timedelta(hours=5))
    assert (await _open(city, await city.clinician(), who.resident_id)).status_code == 404


async def _consent(city: City, resident_id: int, organization_id: int, days: int = 3) -> httpx.Response:
    return await city.client.post(f"{RECORDS}/me/consents", headers=await city.resident_headers(resident_id),
                                  json={"organization_id": organization_id, "days": days})


async def test_the_residents_consent_opens_the_record_for_that_organization_only(city: City) -> None:
    who = await city.person(3)
    granted = await _consent(city, who.resident_id, city.world.hospital_id)
    assert granted.status_code == 201, granted.text
    opened = await _open(city, await city.clinician(), who.resident_id)
    assert opened.status_code == 200, opened.text
    elsewhere = await city.clinician(city.world.other_hospital_id, 44)
    assert (await _open(city, elsewhere, who.resident_id)).status_code == 404


async def test_an_expired_consent_is_refused(city: City) -> None:
    who = await city.person(3)
    await _consent(city, who.resident_id, city.world.hospital_id, days=1)
    city.clock.advance(timedelta(days=1, seconds=1))
    response = await _open(city, await city.clinician(), who.resident_id)
    assert response.status_code == 404, response.text
    assert len(await audit_events(city.database, resource_type="shared_record", action="denied")) == 1


async def test_a_revoked_consent_is_refused(city: City) -> None:
    who = await city.person(3)
    granted = await _consent(city, who.resident_id, city.world.hospital_id)
    revoked = await city.client.post(f"{RECORDS}/me/consents/{granted.json()['id']}/revoke",
                                     headers=await city.resident_headers(who.resident_id))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await _open(city, await city.clinician(), who.resident_id)).status_code == 404


async def test_a_consent_of_more_than_ninety_days_is_malformed(city: City) -> None:
    who = await city.person(3)
    response = await _consent(city, who.resident_id, city.world.hospital_id, days=91)
    assert response.status_code == 422, response.text


async def test_a_resident_cannot_revoke_another_residents_consent(city: City) -> None:
    who = await city.person(3)
    other = await city.person(5)
    granted = await _consent(city, who.resident_id, city.world.hospital_id)
    response = await city.client.post(f"{RECORDS}/me/consents/{granted.json()['id']}/revoke",
                                      headers=await city.resident_headers(other.resident_id))
    assert response.status_code == 404, response.text


async def test_break_glass_opens_the_record_is_logged_and_listed_for_review_once(city: City) -> None:
    who = await city.person(3)
    response = await city.client.post(f"{RECORDS}/residents/{who.resident_id}/break-glass",
                                      headers=await city.clinician(),
                                      json={"justification": "unconscious at the emergency department"})
    assert response.status_code == 200, response.text
    headers = await city.auditor()
    listed = await city.client.get(f"{RECORDS}/break-glass", headers=headers)
    assert [(row["resident_id"], row["reason_ref"]) for row in listed.json()] == [
        (who.resident_id, "unconscious at the emergency department")]
    entry_id = listed.json()[0]["id"]
    reviewed = await city.client.post(f"{RECORDS}/break-glass/{entry_id}/review", headers=headers,
                                      json={"note": "justified: admitted via A&E"})
    assert reviewed.status_code == 200, reviewed.text
    assert (await city.client.get(f"{RECORDS}/break-glass", headers=headers)).json() == []
    again = await city.client.post(f"{RECORDS}/break-glass/{entry_id}/review", headers=headers, json={"note": "x"})
    assert again.status_code == 409, again.text
    log = await city.client.get(f"{RECORDS}/me/access-log", headers=await city.resident_headers(who.resident_id))
    assert [row["reason_kind"] for row in log.json()] == ["break_glass"]


async def test_break_glass_needs_a_justification(city: City) -> None:
    who = await city.person(3)
    response = await city.client.post(f"{RECORDS}/residents/{who.resident_id}/break-glass",
                                      headers=await city.clinician(), json={"justification": "x"})
    assert response.status_code == 422, response.text
    assert await count(city.database, AccessLogEntry) == 0


async def test_an_auditor_reads_any_residents_access_log_and_a_clinician_cannot(city: City) -> None:
    who = await city.person(3)
    await _consent(city, who.resident_id, city.world.hospital_id)
    await _open(city, await city.clinician(), who.resident_id)
    read = await city.client.get(f"{RECORDS}/residents/{who.resident_id}/access-log", headers=await city.auditor())
    assert [row["reason_kind"] for row in read.json()] == ["consent"]
    refused = await city.client.get(f"{RECORDS}/residents/{who.resident_id}/access-log", headers=await city.clinician())
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


async def test_a_consent_for_an_unknown_organization_is_refused_and_nothing_is_kept(city: City) -> None:
    who = await city.person(3)
    response = await _consent(city, who.resident_id, 9999)
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"], response.json()["rule"]) == (
        "organization_unknown", "organization_id", "organization.unknown")
    listed = await city.client.get(f"{RECORDS}/me/consents", headers=await city.resident_headers(who.resident_id))
    assert listed.json() == []
