"""Fixtures of the web tests: a month of data uploaded through the collection API, the demo operator, and a
small booking city with a registered resident."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.booking import World, add_resident, build_world
from tests.factories.collection import make_record
from tests.factories.registry import load_nanjing
from tests.factories.security import admin_headers, headers_for, machine

from cityhealth.clock import SimulatedClock
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from cityhealth.registry import service as registry_service
from cityhealth.registry.schemas import OrganizationRead
from cityhealth.reporting import render_pdf
from cityhealth.security.principals import Scope
from cityhealth.web.demo import DemoOperator, ensure_demo_operator

MONTH = "2022-06"
ENROLLED = "南京鼓楼医院"  # enrolled for outpatients: 3 of its 4 visits on time, 75.00%
NOT_ENROLLED = "江苏省人民医院"  # uploads, but is not monitored: its rates print "/"


@dataclass(frozen=True)
class Seeded:
    enrolled: OrganizationRead
    not_enrolled: OrganizationRead
    district_platform: OrganizationRead


async def _hospital(database: Database, clock: SimulatedClock, name: str, kind: str = "hospital") -> OrganizationRead:
    async with database.transaction() as session:
        page = await registry_service.list_organizations(session, clock, kind=kind, name=name)
    return next(item for item in page.items if item.name == name)


async def _upload(app: FastAPI, client: httpx.AsyncClient, unit: OrganizationRead, records: list[dict[str, object]],
                  form: str = "outpatient_visit") -> None:
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=unit.id,
                                             client_id=f"client-{unit.id}"))
    response = await client.post(f"/api/collection/forms/{form}/records", json=records, headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
async def seeded(app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock) -> Seeded:
    await load_nanjing(database, clock)
    enrolled = await _hospital(database, clock, ENROLLED)
    not_enrolled = await _hospital(database, clock, NOT_ENROLLED)
    platform = await _hospital(database, clock, "江宁区卫生信息平台", kind="district_platform")
    response = await client.post("/api/collection/enrolments", headers=await admin_headers(app), json={
        "organization_code": enrolled.code, "group": "outpatient", "start_date": "2022-01-01"})
    assert response.status_code == 201, response.text
    now = clock.now()
    on_time = [make_record("outpatient_visit", enrolled.code, f"gl-{i}", now - timedelta(hours=2)) for i in range(3)]
    late = make_record("outpatient_visit", enrolled.code, "gl-late", now - timedelta(hours=30))
    broken = make_record("outpatient_visit", enrolled.code, "gl-broken", now - timedelta(hours=1), visit_no=None)
    await _upload(app, client, enrolled, [*on_time, late, broken])
    await _upload(app, client, not_enrolled, [
        make_record("outpatient_visit", not_enrolled.code, f"sr-{i}", now - timedelta(hours=3)) for i in range(2)])
    return Seeded(enrolled, not_enrolled, platform)


@pytest.fixture
def no_office(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without LibreOffice: an issue is published without its PDF edition (seconds saved)."""
    monkeypatch.setattr(render_pdf, "office_program", lambda: None)


@pytest.fixture
def development_settings(settings: Settings) -> Settings:
    """The test settings as a development server has them (the demo operator exists only there)."""
    return settings.model_copy(update={"env": Environment.DEVELOPMENT})


@pytest.fixture
async def demo_operator(database: Database, clock: SimulatedClock, development_settings: Settings) -> DemoOperator:
    async with database.transaction() as session:
        return await ensure_demo_operator(session, clock, development_settings, actor="test")


# --- the resident booking pages ---------------------------------------------------------------------------

RESIDENT_PASSWORD = "my-own-secret-9"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Booker:
    """A master-index resident with a resident account (registered through the API) and its password."""

    resident_id: int
    id_number: str
    password: str


@pytest.fixture
async def world(database: Database, clock: SimulatedClock) -> World:
    return await build_world(database, clock.now())


async def registered_resident(client: httpx.AsyncClient, database: Database, settings: Settings,
                              clock: SimulatedClock, seq: int) -> Booker:
    resident_id, number = await add_resident(database, settings, clock.now(), seq)
    response = await client.post("/api/auth/residents/register", json={
        "id_number": number, "name": f"居民{seq}", "phone": f"1390000{seq:04d}", "password": RESIDENT_PASSWORD})
    assert response.status_code == 201, response.text
    return Booker(resident_id, number, RESIDENT_PASSWORD)


@pytest.fixture
async def booker(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                 world: World) -> Booker:
    return await registered_resident(client, database, settings, clock, 1)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, person: Booker, *, next_url: str = "",
                  password: str | None = None) -> httpx.Response:
    form = await client.get("/booking/login")
    return await client.post("/booking/login", data={
        "id_number": person.id_number, "password": password or person.password, "csrf_token": csrf_of(form.text),
        "next": next_url})
