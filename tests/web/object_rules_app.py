"""Object rules of the resident app's pages: each shows the signed-in resident's own data only."""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI
from tests.factories.booking import add_resident, resident_principal
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
                                               TeamPut.model_validate({"name": f"团队{first_seq + n}", "members": [
                                                   {"practitioner_id": doctor.id, "role": "doctor"}]}))
            await family_doctors.sign(session, state.clock, field_cipher(state.settings), None, ContractSign(
                resident_ids=[resident_id], team_id=team.id, package_id=package_id))
        found.append((resident_id, chc, as_cookie(await headers_for(app, resident_principal(resident_id)))))
    return found


@object_endpoint("GET", "/app/doctor", kind="list", unscoped=_COOKIE_PAGE.format(scope="resident.self"),
                 rule="a resident's family doctor page shows only the signed-in resident's contract")
async def my_doctor_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(cookie, marker=f"团队{810 + n}")
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
