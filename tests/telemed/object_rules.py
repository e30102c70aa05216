"""Object rules of the telemed room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI

from cityhealth.security.principals import Principal, Role, Scope
from cityhealth.telemed import cases, consultations, reading
from cityhealth.telemed.schemas import CaseSubmit, ConsultationIn, ReportIn, StepIn
from tests.factories.security import headers_for, machine, staff
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.telemed.support import designate, doctor, join, organization

_doctors = iter(range(700, 10_000))


async def _pairs(
    app: FastAPI, owners: int, *, network: str = "ecg", claim: bool = False, priority: str = "routine"
) -> list[tuple[Principal, Principal, int]]:
    """`owners` requesters each with a case at a reading centre of its own (designated, so the routing cannot
    send it to another owner's); (requester, doctor, case id) — the doctor holds it when `claim`."""
    database, clock, settings = app.state.database, app.state.clock, app.state.settings
    found = []
    for n in range(owners):
        requester_org = await organization(app, "320102")
        centre_org = await organization(app, "320106")
        requester_member = await join(app, requester_org, "requester", network=network)
        centre_member = await join(app, centre_org, "reading_centre", network=network)
        await designate(app, requester_member, centre_member)
        requester = machine(Scope.TELEMED_REQUEST, organization_id=requester_org, client_id=f"his-{requester_org}")
        reader = staff(Role.READING_CENTRE_DOCTOR, organization_id=centre_org, user_id=next(_doctors))
        async with database.transaction() as session:
            case = await cases.submit(
                session,
                clock,
                settings,
                requester,
                CaseSubmit(
                    network_code=network,
                    external_id=f"OR-{requester_org}-{n}",
                    priority=priority,
                    case_type="ecg" if network == "ecg" else "consultation_request",
                ),
            )
            if claim:
                await cases.accept(session, clock, reader, case.id, StepIn(request_key="accept"))
                await reading.claim(session, clock, reader, case.id, StepIn(request_key="claim"))
                await reading.draft(
                    session,
                    clock,
                    reader,
                    case.id,
                    ReportIn(request_key="draft", findings="窦性心律", conclusion="正常心电图"),
                )
        found.append((requester, reader, case.id))
    return found


@object_endpoint(
    "GET",
    "/api/telemed/cases/{case_id}",
    kind="read",
    rule="a reading centre sees a case only while it is routed to it; another's looks like not found",
)
async def case_to_centre(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, reader), path={"case_id": case_id})
        for _, reader, case_id in await _pairs(app, owners)
    ]


@object_endpoint(
    "GET",
    "/api/telemed/cases/{case_id}/report",
    kind="read",
    rule="a report is read by the centre writing it (and its requester once signed), no one else",
)
async def report_to_centre(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, reader), path={"case_id": case_id})
        for _, reader, case_id in await _pairs(app, owners, claim=True)
    ]


@object_endpoint("GET", "/api/telemed/cases", kind="list", rule="a requester lists only its organization's cases")
async def requester_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, requester), marker=f'"id":{case_id},')
        for requester, _, case_id in await _pairs(app, owners)
    ]


@object_endpoint(
    "GET", "/api/telemed/worklist", kind="list", rule="a reading centre's queue holds only the cases routed to it"
)
async def worklists(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, reader), marker=f'"id":{case_id},')
        for _, reader, case_id in await _pairs(app, owners)
    ]


@object_endpoint(
    "GET",
    "/api/telemed/worklist/overdue",
    kind="list",
    rule="a reading centre's overdue list holds only the cases routed to it",
)
async def overdue_lists(app: FastAPI, owners: int) -> list[Owner]:
    pairs = await _pairs(app, owners, priority="stat")
    app.state.clock.advance(timedelta(hours=1))  # past the ECG network's 15 minutes for a stat case
    # Fresh doctors of the same centres: tokens issued before the clock moved would have expired.
    return [
        Owner(await doctor(app, reader.organization_id or 0), marker=f'"id":{case_id},') for _, reader, case_id in pairs
    ]


@object_endpoint(
    "GET",
    "/api/telemed/consultations/{consultation_id}",
    kind="read",
    rule="a consultation is seen by its requester and its participants only",
)
async def consultations_of_requesters(app: FastAPI, owners: int) -> list[Owner]:
    database, clock = app.state.database, app.state.clock
    found = []
    start = datetime.fromisoformat("2022-06-20T09:00:00+08:00")
    for requester, _, _ in await _pairs(app, owners, network="teleconsultation"):
        expert_org = await organization(app, "320111")
        expert = await join(app, expert_org, "reading_centre", network="teleconsultation")
        async with database.transaction() as session:
            held = await consultations.schedule(
                session,
                clock,
                requester,
                ConsultationIn.model_validate(
                    {
                        "request_key": "c1",
                        "network_code": "teleconsultation",
                        "starts_at": start,
                        "ends_at": start + timedelta(hours=1),
                        "participants": [{"member_id": expert}],
                    }
                ),
            )
        found.append(Owner(await headers_for(app, requester), path={"consultation_id": held.id}))
    return found


not_object_scoped("GET", "/api/telemed/networks", "reference data: the five networks and their targets")
not_object_scoped(
    "GET",
    "/api/telemed/networks/{network_code}/members",
    "reference data: which organizations belong to a network, as the bulletin prints it",
)
not_object_scoped(
    "GET",
    "/api/telemed/networks/{network_code}/coverage",
    "aggregates of the members, as the bulletin prints them; no case, no person",
)
not_object_scoped(
    "GET",
    "/api/telemed/overdue",
    "administrators oversee every network's turnaround (telemed.admin), each list audited",
)

from tests.telemed import pathology_object_rules  # noqa: E402, F401 - the pathology routes declare theirs there
