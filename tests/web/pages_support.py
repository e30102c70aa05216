"""What the page tests share: reading a page's tables and sections, a bulk upload with rejected rows, the
drill-down's URL, the audit events written, the bulletin's issues published, an editor signed in (the form's
sign-in is tests/factories/sign_in.py, which the soak drill shares) and a visitor without cookies."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.factories.collection import make_record
from tests.factories.security import headers_for, machine, staff
from tests.factories.sign_in import log_in, staff_account
from tests.web.conftest import MONTH, Seeded

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Role, Scope


def rows_of(html: str, table_class: str) -> list[list[str]]:
    """The body rows of the first table with `table_class`, as cell texts (tags stripped)."""
    table = re.search(rf'<table class="[^"]*\b{table_class}\b[^"]*">(.*?)</table>', html, re.DOTALL)
    assert table is not None, f"no table .{table_class}"
    body = table.group(1).split("<tbody>", 1)[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)]


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{re.escape(section_id)}"[^>]*>(.*?)</section>', html, re.DOTALL)
    assert found is not None, f"no section #{section_id}"
    return found.group(1)


async def upload_job(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock, seeded: Seeded,
                     broken: list[str]) -> int:
    """A bulk job from the enrolled hospital: one good row, then a row without visit_no per id in `broken`."""
    at = clock.now() - timedelta(hours=1)
    rows = [make_record("outpatient_visit", seeded.enrolled.code, "gl-bulk-ok", at),
            *(make_record("outpatient_visit", seeded.enrolled.code, record_id, at, visit_no=None)
              for record_id in broken)]
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=seeded.enrolled.id,
                                             client_id=f"client-{seeded.enrolled.id}"))
    response = await client.post("/api/collection/jobs", params={"form": "outpatient_visit"},
                                 content=b"".join(json.dumps(row).encode() + b"\n" for row in rows),
                                 headers={**headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    await runtime(app)[1].wait(job_id)
    return job_id


def drill_down(seeded: Seeded, **query: str) -> str:
    params = "&".join(f"{name}={value}" for name, value in {"month": MONTH, **query}.items())
    return f"/dashboard/quality/units/{seeded.enrolled.id}/rejections?{params}"


async def audit_events(database: Database, **where: Any) -> list[AuditEvent]:
    async with database.transaction() as session:
        statement = select(AuditEvent)
        for column, value in where.items():
            statement = statement.where(getattr(AuditEvent, column) == value)
        return list((await session.execute(statement)).scalars())


REGION = "320100"  # Nanjing, the seeded city


async def log_in_as_editor(app: FastAPI, client: httpx.AsyncClient, database: Database,
                           clock: SimulatedClock, name: str = "editor") -> None:
    """`client` signed in to the web session as a bulletin editor."""
    editor = await staff_account(app, database, clock, Role.BULLETIN_EDITOR, name)
    assert (await log_in(client, editor, clock)).status_code == 303


async def draft_issue(app: FastAPI, client: httpx.AsyncClient, month: str = MONTH, *, news: str = "",
                      published_on: str = "2022-07-28", first: bool = True) -> dict[str, Any]:
    """The month's issue drafted through the editor's API (2022年第7期, 总第125期 when it is the first)."""
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR))
    body: dict[str, Any] = {"region_code": REGION, "month": month, "published_on": published_on,
                            "news_markdown": news}
    if first:
        body |= {"number": 7, "total_number": 125}
    response = await client.put("/api/bulletin/issues", headers=headers, json=body)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def publish_issue(app: FastAPI, client: httpx.AsyncClient, month: str = MONTH, *, news: str = "",
                        published_on: str = "2022-07-28", first: bool = True) -> dict[str, Any]:
    """The month's issue drafted and published through the editor's API, as the public pages then serve it."""
    draft = await draft_issue(app, client, month, news=news, published_on=published_on, first=first)
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR))
    response = await client.post(f"/api/bulletin/issues/{draft['id']}/publish", headers=headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def as_visitor(app: FastAPI, path: str) -> httpx.Response:
    """GET `path` as an anonymous visitor: a client of its own, without the test client's cookies."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as visitor:
        return await visitor.get(path)
