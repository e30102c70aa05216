"""Object rules of the security endpoints, and of the registry's read endpoints (issue 3 names them).

The registry's are declared here because the security room owns the 10,000-pair test that covers them;
a room that adds endpoints declares them in its own tests/<room>/object_rules.py.
"""

from __future__ import annotations

import jwt
from fastapi import FastAPI

from cityhealth.security.audit import Action, Outcome, record
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, resident, staff
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.security.support import add_residents


def _session_id(headers: dict[str, str]) -> str:
    claims = jwt.decode(headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    return str(claims["sid"])


async def _resident_owners(app: FastAPI, owners: int) -> list[tuple[int, dict[str, str]]]:
    people = await add_residents(app, owners, first=500)
    return [(person.id, await headers_for(app, resident(person.id))) for person in people]


async def _mixed_owners(app: FastAPI, owners: int) -> list[dict[str, str]]:
    """Half residents, half staff of several roles: sessions belong to both kinds of people."""
    residents_half = [headers for _, headers in await _resident_owners(app, owners // 2)]
    roles = [Role.HOTLINE_AGENT, Role.BULLETIN_EDITOR, Role.PLATFORM_ADMIN, Role.READING_CENTRE_DOCTOR]
    staff_half = [await headers_for(app, staff(roles[n % len(roles)], user_id=1000 + n))
                  for n in range(owners - len(residents_half))]
    return residents_half + staff_half


@object_endpoint("GET", "/api/me/access-log", kind="list", rule="a resident sees only who accessed their own record")
async def access_logs(app: FastAPI, owners: int) -> list[Owner]:
    found = []
    residents_with_headers = await _resident_owners(app, owners)
    async with app.state.database.transaction() as session:
        for resident_id, _ in residents_with_headers:
            # An event only this resident's log may show: its resource type is the marker.
            record(session, app.state.clock, None, Action.READ, f"probe-{resident_id}", resident_ids=[resident_id],
                   outcome=Outcome.SUCCESS, actor="probe", actor_kind="operator")
    for resident_id, headers in residents_with_headers:
        found.append(Owner(headers, query={"resident_id": resident_id}, marker=f"\"probe-{resident_id}\""))
    return found


_OWN_SESSIONS = "every authenticated caller has sessions of its own, whatever its scopes"


@object_endpoint("GET", "/api/me/sessions", kind="list", rule="a caller sees only their own sessions",
                 unscoped=_OWN_SESSIONS)
async def session_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, query={"session_id": _session_id(headers)}, marker=_session_id(headers))
            for headers in await _mixed_owners(app, owners)]


@object_endpoint("DELETE", "/api/me/sessions/{session_id}", kind="write",
                 rule="a caller ends only their own sessions; another's looks like not found", unscoped=_OWN_SESSIONS)
async def session_ends(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"session_id": _session_id(headers)}) for headers in await _mixed_owners(app, owners)]


@object_endpoint("GET", "/api/registry/residents/{resident_id}", kind="read",
                 rule="a resident reads only their own master-index record")
async def resident_records(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"resident_id": resident_id})
            for resident_id, headers in await _resident_owners(app, owners)]


_ADMIN_LIST = "platform administrators (security.admin) manage every one; there is no owner"
not_object_scoped("GET", "/api/security/clients", _ADMIN_LIST)
not_object_scoped("GET", "/api/security/staff", _ADMIN_LIST)

_REFERENCE = "registry reference data: every holder of registry.read sees all of it"
for _path in ("/api/registry/areas", "/api/registry/areas/{code}", "/api/registry/organizations",
              "/api/registry/organizations/{organization_id}",
              "/api/registry/organizations/{organization_id}/departments",
              "/api/registry/organizations/{organization_id}/departments/{department_id}",
              "/api/registry/organizations/{organization_id}/practitioners",
              "/api/registry/organizations/{organization_id}/practitioners/{practitioner_id}",
              "/api/registry/client-apps", "/api/registry/client-apps/{app_id}"):
    not_object_scoped("GET", _path, _REFERENCE)

_INDEX_SEARCH = ("a search of the whole master index, for holders of resident.read (roles with a second factor); "
                 "residents and clients without the scope are refused, and every result is audited per resident")
not_object_scoped("GET", "/api/registry/residents", _INDEX_SEARCH)
not_object_scoped("POST", "/api/registry/residents/lookup", _INDEX_SEARCH)
