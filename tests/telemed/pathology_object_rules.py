"""Object rules of the pathology routes (docs/security.md, 'Adding an endpoint'); imported by object_rules.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI

from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import pathology, pathology_meetings
from cityhealth.telemed.pathology_schemas import MeetingIn, PathologyCaseIn, PersonIn
from tests.factories.security import headers_for, machine
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.telemed.support import designate, join, organization


async def _hospitals(app: FastAPI, owners: int) -> list[tuple[Principal, int, int]]:
    """`owners` pathology hospitals, each with a reading centre of its own (designated) and a case routed
    there: (the hospital's system, its case, its doctor's person id)."""
    database, clock, settings = app.state.database, app.state.clock, app.state.settings
    found = []
    for n in range(owners):
        hospital_org = await organization(app, "320102")
        centre_org = await organization(app, "320106")
        hospital_member = await join(app, hospital_org, "requester", network="pathology")
        await designate(app, hospital_member, await join(app, centre_org, "reading_centre", network="pathology"))
        hospital = machine(Scope.TELEMED_REQUEST, organization_id=hospital_org, client_id=f"his-{hospital_org}")
        async with database.transaction() as session:
            doctor = await pathology.register_person(
                session,
                clock,
                hospital,
                PersonIn(key=f"D-{n}", kind="doctor", organization_id=hospital_org, name="王医生"),
            )
            case = await pathology.submit_case(
                session,
                clock,
                settings,
                hospital,
                PathologyCaseIn(
                    external_id=f"P-{hospital_org}-{n}",
                    specimen_site="肺",
                    specimen_kind="biopsy",
                    clinical_summary="肺结节穿刺",
                    slide_count=2,
                ),
            )
        found.append((hospital, case.case.id, doctor.id))
    return found


@object_endpoint(
    "GET",
    "/api/telemed/pathology/cases/{case_id}",
    kind="read",
    rule="a pathology case is seen by its hospital and the centre it is routed to; another's looks like not found",
)
async def pathology_cases(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, hospital), path={"case_id": case_id})
        for hospital, case_id, _ in await _hospitals(app, owners)
    ]


@object_endpoint(
    "GET",
    "/api/telemed/pathology/meetings/{meeting_id}",
    kind="read",
    rule="a case-discussion meeting is seen by its organizer and its participants' organizations only",
)
async def meetings(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, hospital), path={"meeting_id": meeting_id})
        for hospital, meeting_id in await _meetings(app, owners)
    ]


@object_endpoint(
    "GET",
    "/api/telemed/pathology/meetings",
    kind="list",
    rule="an organization lists only the meetings it organizes or takes part in",
)
async def meeting_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [
        Owner(await headers_for(app, hospital), marker=f'{{"id":{meeting_id},"organizer_member_id"')
        for hospital, meeting_id in await _meetings(app, owners)
    ]


async def _meetings(app: FastAPI, owners: int) -> list[tuple[Principal, int]]:
    """Each owner's hospital with a meeting it organized about its own case (its doctor taking part)."""
    start = datetime.fromisoformat("2022-06-20T09:00:00+08:00")
    found = []
    for hospital, case_id, doctor_id in await _hospitals(app, owners):
        async with app.state.database.transaction() as session:
            held = await pathology_meetings.schedule_meeting(
                session,
                app.state.clock,
                hospital,
                MeetingIn(
                    request_key="m1",
                    title="病例讨论",
                    starts_at=start,
                    ends_at=start + timedelta(hours=1),
                    participant_ids=[doctor_id],
                    case_ids=[case_id],
                ),
            )
        found.append((hospital, held.id))
    return found


not_object_scoped(
    "GET",
    "/api/telemed/pathology/people",
    "the network's roll of experts and doctors (names, titles, specialties): whom to invite; no patient in it",
)
not_object_scoped(
    "GET",
    "/api/telemed/pathology/lectures",
    "teaching for the whole network: every active member lists every lecture; no patient in it",
)
not_object_scoped(
    "GET",
    "/api/telemed/pathology/lectures/{lecture_id}",
    "teaching for the whole network: every active member sees every lecture; no patient in it",
)
not_object_scoped(
    "GET",
    "/api/telemed/pathology/totals",
    "the bulletin's cumulative counts (telemed.admin); no case, no person",
)
