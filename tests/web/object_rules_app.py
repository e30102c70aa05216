"""Object rules of the resident app's pages: each shows the signed-in resident's own data only."""

from __future__ import annotations

from datetime import date

import httpx
from fastapi import FastAPI
from tests.factories.booking import add_resident, resident_principal
from tests.factories.collection import add_organization
from tests.factories.family import MINOR_SEQ
from tests.factories.security import headers_for, staff
from tests.records.family_support import centre, package, resident
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.web.object_rules import as_cookie

from cityhealth.booking import family
from cityhealth.booking.schemas import FamilyMemberCreate
from cityhealth.records import chronic, family_doctors, family_teams
from cityhealth.records.chronic_schemas import FollowupIn
from cityhealth.records.family_schemas import ContractSign, TeamPut
from cityhealth.registry import departments
from cityhealth.registry.schemas import PractitionerCreate
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Role

_COOKIE_PAGE = ("a cookie-authenticated page: the harness re-issues bearer headers, not cookies; its guard demands "
                "{scope}, which tests/web/test_app_pages.py checks")

not_object_scoped("GET", "/app/", "the app's home: links only, no object")
not_object_scoped("GET", "/app/login", "a blank sign-in form: no object")
not_object_scoped("GET", "/app/register", "a blank registration form: no object")
not_object_scoped("GET", "/app/map", "public facts about facilities and today's free slots, as GET /api/booking/nearby")


async def _signed(app: FastAPI, owners: int, first_seq: int) -> list[tuple[int, int, dict[str, str]]]:
    """`owners` residents, each with a contract with a team of its own: (resident id, centre id, cookie)."""
    state = app.state
    chc = await centre(app)
    package_id = await package(app)
    found = []
    for n in range(owners):
        resident_id = await resident(app, seq=first_seq + n)
        async with state.database.transaction() as session:
            doctor = await departments.create_practitioner(
                session, state.clock, None, chc, PractitionerCreate(staff_code=f"APP{first_seq + n}", name="医生"))
            team = await family_teams.put_team(session, state.clock, None, chc, f"APP{first_seq + n}",
                                               TeamPut.model_validate({"name": f"团队{first_seq + n}号", "members": [
                                                   {"practitioner_id": doctor.id, "role": "doctor"}]}))
            await family_doctors.sign(session, state.clock, field_cipher(state.settings), None, ContractSign(
                resident_ids=[resident_id], team_id=team.id, package_id=package_id))
        found.append((resident_id, chc, as_cookie(await headers_for(app, resident_principal(resident_id)))))
    return found


@object_endpoint("GET", "/app/doctor", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's family doctor page shows only the signed-in resident's contract")
async def my_doctor_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(cookie, marker=f"团队{810 + n}号")
            for n, (_, _, cookie) in enumerate(await _signed(app, owners, 810))]


@object_endpoint("GET", "/app/readings", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's readings page shows only the signed-in resident's follow-ups")
async def my_readings_pages(app: FastAPI, owners: int) -> list[Owner]:
    state, found = app.state, []
    for n, (resident_id, chc, cookie) in enumerate(await _signed(app, owners, 830)):
        async with state.database.transaction() as session:
            registration = await chronic.register(
                session, state.clock, field_cipher(state.settings), None, resident_id=resident_id,
                program="hypertension", registered_on=date(2022, 1, 4), organization_id=chc, source="clinic",
                source_ref=None)
            await chronic.record_followup(
                session, state.clock, staff(Role.FAMILY_DOCTOR, organization_id=chc, user_id=900 + n),
                registration.id, FollowupIn(key=f"app-{n}", visit_date=date(2022, 6, 10), sbp=131 + n, dbp=80))
        found.append(Owner(cookie, marker=f"血压 {131 + n}/80"))
    return found


@object_endpoint("GET", "/app/family", kind="list", unscoped=_COOKIE_PAGE.format(scope="booking.read"),
                 rule="a resident's family page lists only the links the signed-in resident is a side of")
async def my_family_pages(app: FastAPI, owners: int) -> list[Owner]:
    state, found = app.state, []
    for n in range(owners):
        manager_id, _ = await add_resident(state.database, state.settings, state.clock.now(), 850 + n)
        _, number = await add_resident(state.database, state.settings, state.clock.now(), MINOR_SEQ + 30 * (n + 1))
        async with state.database.transaction() as session:
            link = (await family.add_member(session, state.clock, field_cipher(state.settings),
                                            resident_principal(manager_id), FamilyMemberCreate(
                                                id_number=number, name=f"居民{MINOR_SEQ + 30 * (n + 1)}",
                                                relationship="child", guardian_declaration=True)))[0]
        found.append(Owner(as_cookie(await headers_for(app, resident_principal(manager_id))),
                           marker=f'action="/app/family/{link.id}"'))
    return found


async def _with_a_visit(app: FastAPI, owners: int, first_seq: int) -> list[tuple[dict[str, str], str]]:
    """`owners` residents, each linked to a hospital identity with one visit of a department of its own."""
    from tests.factories.collection import make_record
    from tests.records.support import hours_ago, link, master, person, upload

    state = app.state
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    found = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        organization_id = (await add_organization(state.database, state.clock, "H-APPREC", name="应用档案医院")).id
        for n in range(owners):
            who = await person(state.database, state.settings, state.clock, first_seq + n)
            await upload(client, app, organization_id, "patient_master_index",
                         [master("H-APPREC", f"m-{n}", hours_ago(state.clock, 100), f"P-{n}", who)])
            await upload(client, app, organization_id, "outpatient_visit", [make_record(
                "outpatient_visit", "H-APPREC", f"v-{n}", hours_ago(state.clock, 50), patient_id=f"P-{n}",
                visit_no=f"V{n}", dept_name=f"科室{n}号")])
            await upload(client, app, organization_id, "exam_report", [make_record(
                "exam_report", "H-APPREC", f"e-{n}", hours_ago(state.clock, 40), visit_no=f"V{n}",
                exam_item=f"检查项目{n}号")])
            found.append((as_cookie(await headers_for(app, resident_principal(who.resident_id))), f"{n}"))
    await link(state.database, state.clock, state.settings)
    return found


@object_endpoint("GET", "/app/record", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's record page shows only the signed-in resident's own shared record")
async def my_record_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(cookie, marker=f"科室{n}号") for cookie, n in await _with_a_visit(app, owners, 870)]


@object_endpoint("GET", "/app/results", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's results page lists only the signed-in resident's own reports")
async def my_results_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(cookie, marker=f"检查项目{n}号") for cookie, n in await _with_a_visit(app, owners, 880)]


@object_endpoint("GET", "/app/access-log", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's access-log page lists only the openings of the signed-in resident's record")
async def my_access_log_pages(app: FastAPI, owners: int) -> list[Owner]:
    from tests.records.support import clinician, resident_headers

    state = app.state
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    found = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for n in range(owners):
            organization = await add_organization(state.database, state.clock, f"H-LOG{n}", name=f"调阅医院{n}号")
            organization_id = organization.id
            resident_id, _ = await add_resident(state.database, state.settings, state.clock.now(), 890 + n)
            consent = await client.post("/api/records/me/consents", headers=await resident_headers(app, resident_id),
                                        json={"organization_id": organization_id, "days": 7})
            assert consent.status_code == 201, consent.text
            opened = await client.get(f"/api/records/residents/{resident_id}",
                                      headers=await clinician(app, organization_id, user_id=960 + n))
            assert opened.status_code == 200, opened.text
            found.append(Owner(as_cookie(await headers_for(app, resident_principal(resident_id))),
                               marker=f"调阅医院{n}号"))
    return found
