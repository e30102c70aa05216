"""Object rules of the collection room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import orjson
from fastapi import FastAPI

from cityhealth.collection.api import runtime
from cityhealth.security.principals import Scope
from tests.factories.collection import add_organization, make_record
from tests.factories.security import headers_for, machine
from tests.security.objects import Owner, not_object_scoped, object_endpoint


async def _owners_with_a_job(app: FastAPI, owners: int) -> list[Owner]:
    """`owners` hospitals, each the sender of one bulk job (with one rejected row) of its own."""
    database, clock = app.state.database, app.state.clock
    found: list[Owner] = []
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(owners):
            code = f"OBJ{uuid.uuid4().hex[:10]}"
            org = await add_organization(database, clock, code, name=f"对象规则医院{code}")
            headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, Scope.COLLECTION_READ,
                                                     organization_id=org.id, client_id=code.lower()))
            at = clock.now() - timedelta(hours=1)
            rows = [{"form": "outpatient_visit", **make_record("outpatient_visit", code, "ok-1", at)},
                    {"form": "outpatient_visit", **make_record("outpatient_visit", code, "bad-1", at,
                                                               patient_type_code="7")}]
            body = b"\n".join(orjson.dumps(row) for row in rows) + b"\n"
            response = await client.post("/api/collection/jobs", content=body,
                                         headers={**headers, "content-type": "application/x-ndjson"})
            assert response.status_code in (200, 202), response.text
            job_id = response.json()["id"]
            await runtime(app)[1].wait(job_id)
            found.append(Owner(headers, path={"job_id": job_id}))
    return found


@object_endpoint("GET", "/api/collection/jobs/{job_id}", kind="read",
                 rule="a sender reads only its own organization's jobs; another's looks like not found")
async def jobs(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners_with_a_job(app, owners)


@object_endpoint("GET", "/api/collection/jobs/{job_id}/rejections", kind="read",
                 rule="a sender downloads only its own jobs' rejected rows; another's looks like not found")
async def job_rejections(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners_with_a_job(app, owners)


_STANDARD = "the published data standard: forms, fields and code tables, no personal or per-unit data"
not_object_scoped("GET", "/api/collection/standard", _STANDARD)
not_object_scoped("GET", "/api/collection/standard.html", _STANDARD)
not_object_scoped("GET", "/api/collection/quality",
                  "per-unit aggregates exactly as the public bulletin prints them; no records")
not_object_scoped("GET", "/api/collection/enrolments",
                  "operators' monitoring configuration across all units; no personal data")
not_object_scoped("GET", "/api/collection/assignments",
                  "operators' expected-forms configuration across all units; no personal data")
