"""Helpers of the telemed tests: areas and organizations in the registry, members joined to a network,
requesters (their hospitals' systems) and reading-centre doctors as callers, and the steps of a case."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.errors import NotFound
from cityhealth.registry import service as registry_service
from cityhealth.registry.schemas import AreaCreate
from cityhealth.security.principals import Role, Scope
from cityhealth.telemed import service
from cityhealth.telemed.schemas import DesignationIn, MemberJoin
from tests.factories.registry import SMALL_AREA_TREE, organization_payload
from tests.factories.security import headers_for, machine, staff

API = "/api/telemed"
CASES = f"{API}/cases"
JOINED = date(2022, 1, 1)
# Beyond the small Nanjing tree: a city across the provincial border the ECG network reaches.
MAANSHAN = [
    AreaCreate(code="340000", name="安徽省", level="province"),
    AreaCreate(code="340500", name="马鞍山市", level="city", parent_code="340000"),
]
_keys = itertools.count(1)
_users = itertools.count(500)


async def ensure_areas(app: FastAPI) -> None:
    """The small area tree and Ma'anshan, once per database (seeds may run more than once)."""
    async with app.state.database.transaction() as session:
        for area in [*SMALL_AREA_TREE, *MAANSHAN]:
            try:
                await registry_service.get_area(session, area.code)
            except NotFound:
                await registry_service.insert_area(session, app.state.clock, area)


async def organization(app: FastAPI, area_code: str = "320102", **overrides: Any) -> int:
    await ensure_areas(app)
    async with app.state.database.transaction() as session:
        row = await registry_service.insert_organization(
            session, app.state.clock, organization_payload(area_code=area_code, **overrides)
        )
        return row.id


async def join(
    app: FastAPI, organization_id: int, role: str, *, network: str = "ecg", kind: str = "tertiary", **overrides: Any
) -> int:
    """The organization's new member id in the network."""
    data = MemberJoin.model_validate(
        {"organization_id": organization_id, "kind": kind, "role": role, "joined_on": JOINED} | overrides
    )
    async with app.state.database.transaction() as session:
        return (await service.join(session, app.state.clock, None, network, data, operator="test")).id


async def designate(app: FastAPI, requester_member: int, *centres: int) -> None:
    async with app.state.database.transaction() as session:
        await service.designate(
            session, app.state.clock, None, requester_member, DesignationIn(centre_member_ids=list(centres))
        )


@dataclass
class Side:
    """An organization in a network: its member id, and headers of its callers."""

    organization_id: int
    member_id: int
    headers: dict[str, str] = field(default_factory=dict)


async def requester(app: FastAPI, *, network: str = "ecg", area_code: str = "320102") -> Side:
    organization_id = await organization(app, area_code)
    member_id = await join(app, organization_id, "requester", network=network)
    headers = await headers_for(
        app, machine(Scope.TELEMED_REQUEST, organization_id=organization_id, client_id=f"his-{organization_id}")
    )
    return Side(organization_id, member_id, headers)


async def centre(app: FastAPI, *, network: str = "ecg", area_code: str = "320106", **overrides: Any) -> Side:
    """A reading centre, with the headers of one of its doctors."""
    organization_id = await organization(app, area_code)
    member_id = await join(app, organization_id, "reading_centre", network=network, **overrides)
    return Side(organization_id, member_id, await doctor(app, organization_id))


async def doctor(app: FastAPI, organization_id: int) -> dict[str, str]:
    return await headers_for(
        app, staff(Role.READING_CENTRE_DOCTOR, organization_id=organization_id, user_id=next(_users))
    )


async def admin(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.TELEMED_ADMIN, client_id="telemed-admin"))


def case_body(external_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "network_code": "ecg",
        "external_id": external_id or f"ECG-{next(_keys)}",
        "case_type": "ecg",
        "priority": "routine",
        "clinical_question": "胸闷三天，请判读",
    } | overrides


async def submit(client: httpx.AsyncClient, side: Side, **overrides: Any) -> dict[str, Any]:
    response = await client.post(CASES, json=case_body(**overrides), headers=side.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def step(
    client: httpx.AsyncClient, headers: dict[str, str], case_id: int, name: str, **body: Any
) -> httpx.Response:
    """POST a step of the case (a fresh request key unless one is given)."""
    return await client.post(
        f"{CASES}/{case_id}/{name}", json={"request_key": f"k-{next(_keys)}"} | body, headers=headers
    )


def report_body(**overrides: Any) -> dict[str, Any]:
    return {
        "request_key": f"k-{next(_keys)}",
        "findings": "窦性心律，ST段未见明显异常",
        "conclusion": "正常心电图",
    } | overrides


async def claimed(client: httpx.AsyncClient, side: Side, reader: Side) -> dict[str, Any]:
    """A case submitted by `side`, accepted and claimed by `reader`'s doctor."""
    case = await submit(client, side)
    assert case["centre_organization_id"] == reader.organization_id
    assert (await step(client, reader.headers, case["id"], "accept")).status_code == 200
    response = await step(client, reader.headers, case["id"], "claim")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def a_resident(app: FastAPI, seq: int = 1) -> int:
    """A resident of the master patient index; their id."""
    from cityhealth.registry import residents
    from cityhealth.registry.protection import cipher_for
    from cityhealth.registry.schemas import ResidentCreate
    from tests.factories.registry import resident_payload

    async with app.state.database.transaction() as session:
        created = await residents.register_resident(
            session, app.state.clock, cipher_for(app.state.settings), None, ResidentCreate(**resident_payload(seq))
        )
        return created.id


async def a_case(app: FastAPI, client: httpx.AsyncClient) -> int:
    """A case submitted by a requester and routed to a centre of the ECG network: its id."""
    side = await requester(app)
    await centre(app)
    case_id: int = (await submit(client, side))["id"]
    return case_id
