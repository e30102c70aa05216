"""Object rules of the records room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import FastAPI

import tests.records.object_rules_family  # noqa: F401 - family doctors declare their own routes
from cityhealth.records.models import AccessLogEntry, Consent
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, resident, staff
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.security.support import add_organizations, add_residents


async def _consents(app: FastAPI, owners: int) -> list[tuple[int, int, int]]:
    """`owners` residents, each consenting for a hospital of their own: (resident, organization, consent) ids."""
    people = await add_residents(app, owners, first=1700)
    organizations = await add_organizations(app, owners)
    now = app.state.clock.now()
    found = []
    async with app.state.database.transaction() as session:
        for who, organization_id in zip(people, organizations, strict=True):
            row = Consent(resident_id=who.id, organization_id=organization_id, granted_at=now,
                          expires_at=now + timedelta(days=7), granted_by=f"resident-account:{who.id}")
            session.add(row)
            await session.flush()
            found.append((who.id, organization_id, row.id))
    return found


@object_endpoint("GET", "/api/records/residents/{resident_id}", kind="read",
                 rule="a clinician opens a resident's record only on a checked reason at their own organization "
                      "(here the resident's consent); any other looks like not found")
async def shared_records(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(await headers_for(app, staff(Role.CLINICIAN, organization_id=organization_id,
                                               user_id=3000 + n)), path={"resident_id": resident_id})
            for n, (resident_id, organization_id, _) in enumerate(await _consents(app, owners))]


@object_endpoint("GET", "/api/records/me/consents", kind="list", rule="a resident sees only their own consents")
async def consent_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(await headers_for(app, resident(resident_id, account_id=resident_id)),
                  marker=f'"id":{consent_id},"organization_id":{organization_id},')
            for resident_id, organization_id, consent_id in await _consents(app, owners)]


@object_endpoint("GET", "/api/records/me/access-log", kind="list",
                 rule="a resident sees only who opened their own shared record")
async def access_logs(app: FastAPI, owners: int) -> list[Owner]:
    people = await add_residents(app, owners, first=1900)
    now = app.state.clock.now()
    found = []
    async with app.state.database.transaction() as session:
        for who in people:
            reference = f"probe-{uuid.uuid4().hex[:8]}"  # only this resident's log may show it
            session.add(AccessLogEntry(resident_id=who.id, accessor="staff:1", organization_id=1,
                                       reason_kind="consent", reason_ref=reference, opened_at=now))
            found.append((who.id, reference))
    return [Owner(await headers_for(app, resident(resident_id, account_id=resident_id)), marker=f'"{reference}"')
            for resident_id, reference in found]


not_object_scoped("GET", "/api/records/residents/{resident_id}/access-log",
                  "auditors only (records.audit): they review every resident's openings, each read audited")
not_object_scoped("GET", "/api/records/break-glass",
                  "auditors only (records.audit): every break-glass opening waits for their review")
not_object_scoped("GET", "/api/records/linkage/reviews",
                  "linkage operators only (records.link) work the city's one review queue")
not_object_scoped("GET", "/api/records/linkage/identities",
                  "linkage operators only (records.link): every unit's unlinked patient identities")
not_object_scoped("GET", "/api/records/linkage/identities/{organization_id}/{patient_key}",
                  "linkage operators only (records.link): any patient identity's link history")
