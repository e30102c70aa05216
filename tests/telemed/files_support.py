"""Helpers of the case-files tests: a case with its requester and reading centre, a second centre that the case
is not routed to, ECG uploads, and the PACS named in the settings."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.security.models import AuditEvent
from cityhealth.telemed import ecg
from cityhealth.telemed.ecg_models import EcgTracing
from cityhealth.telemed.imaging_models import ImagingStudy
from tests.telemed.support import CASES, Side, centre, designate, requester, submit


@dataclass(frozen=True)
class CaseWorld:
    requester: Side
    centre: Side
    other_centre: Side  # a reading centre of the same network the case is not routed to
    other_requester: Side
    case_id: int

    def ecg(self, tail: str = "") -> str:
        return f"{CASES}/{self.case_id}/ecg{tail}"

    def imaging(self, tail: str = "") -> str:
        return f"{CASES}/{self.case_id}/imaging{tail}"


async def case_world(app: FastAPI, client: httpx.AsyncClient, **case: Any) -> CaseWorld:
    """An ECG case routed (by designation) to `centre`; `other_centre` reads ECGs too but holds nothing."""
    side = await requester(app)
    reader = await centre(app)
    other = await centre(app, area_code="320111")
    await designate(app, side.member_id, reader.member_id)
    case_id = (await submit(client, side, **case))["id"]
    return CaseWorld(side, reader, other, await requester(app), case_id)


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, data: bytes, content_type: str | None
) -> httpx.Response:
    sent = headers | ({"Content-Type": content_type} if content_type else {})
    return await client.post(url, content=data, headers=sent)


async def tracings_kept(app: FastAPI) -> int:
    async with app.state.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(EcgTracing)) or 0)


async def studies_kept(app: FastAPI) -> int:
    async with app.state.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(ImagingStudy)) or 0)


def with_pacs(app: FastAPI, **roots: str) -> None:
    """Name PACSs for the imaging routes (the settings are frozen: a copy replaces them)."""
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"telemed_pacs": {**settings.telemed_pacs, **roots}})


def watch_drawings(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, int]]:
    """Each tracing drawn from now on, as (drawn off the event loop's thread, "tracing drawn" audit events already
    committed when the drawing began). Drawing is tens of milliseconds of CPU: inside the reading's transaction it
    would hold SQLite's write lock (the audit event's), and on the event loop it would hold every request."""
    loop, real, seen = asyncio.get_running_loop(), ecg.Drawing.svg, []

    async def drawn_events() -> int:
        async with app.state.database.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.resource_type == ecg.RESOURCE, AuditEvent.detail == "tracing drawn")) or 0)

    def svg(drawing: ecg.Drawing) -> str:
        in_thread = threading.current_thread() is not threading.main_thread()
        seen.append((in_thread, asyncio.run_coroutine_threadsafe(drawn_events(), loop).result(timeout=30)))
        return real(drawing)

    monkeypatch.setattr(ecg.Drawing, "svg", svg)
    return seen
