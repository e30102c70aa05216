"""Fixtures of the collection tests: a hospital, a district platform and their machine clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.collection.models import Record
from cityhealth.db.engine import Database
from cityhealth.registry.models import Organization
from cityhealth.security.principals import Role, Scope
from tests.factories.collection import add_organization
from tests.factories.security import headers_for, machine, staff


@dataclass
class Unit:
    org: Organization
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return self.org.code


@pytest.fixture
async def hospital(app: FastAPI, database: Database, clock: SimulatedClock) -> Unit:
    org = await add_organization(database, clock, "H0001", name="南京鼓楼医院")
    return Unit(org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id)))


@pytest.fixture
async def other_hospital(app: FastAPI, database: Database, clock: SimulatedClock) -> Unit:
    org = await add_organization(database, clock, "H0002", name="江苏省人民医院")
    return Unit(
        org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id, client_id="other"))
    )


@pytest.fixture
async def district(app: FastAPI, database: Database, clock: SimulatedClock) -> Unit:
    org = await add_organization(
        database, clock, "D320115", kind="district_platform", name="江宁区卫生信息平台", area_code="320115"
    )
    return Unit(
        org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id, client_id="district"))
    )


@pytest.fixture
async def operator(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.DATA_QUALITY_OPERATOR, user_id=7))


async def post_records(
    client: httpx.AsyncClient, unit: Unit, form: str, records: list[dict[str, Any]], **params: Any
) -> httpx.Response:
    return await client.post(f"/api/collection/forms/{form}/records", json=records, headers=unit.headers, params=params)


async def stored_count(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Record))).scalar_one())


async def wait_for_job(app: FastAPI, job_id: int) -> None:
    await runtime(app)[1].wait(job_id)
