"""Helpers of the agent desk tests: an answered call still on the line, the booking world, a resident."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.hotline.models import Call, CityLine
from tests.hotline.calls_support import add_line, call_events, telephony

DESK = "/api/hotline/desk"
REPORT = "/api/hotline/call-events"


async def open_call(app: FastAPI, client: httpx.AsyncClient, telephony_id: str, *, agent: str = "staff:7",
                    start: datetime | None = None, caller: str | None = "13812345678") -> int:
    """A call answered by `agent` and not ended (its first four events); returns the platform's call id."""
    if not await _has_line(app):
        await add_line(app)
    events = call_events(telephony_id, start or app.state.clock.now() - timedelta(minutes=2), agent=agent,
                         caller=caller)[:4]
    response = await client.post(REPORT, headers=await telephony(app), json={"events": events})
    assert response.status_code == 200, response.text
    async with app.state.database.transaction() as session:
        return int(await session.scalar(select(Call.id).where(Call.telephony_call_id == telephony_id)) or 0)


async def end_call(app: FastAPI, client: httpx.AsyncClient, telephony_id: str, *,
                   category: str = "phone_booking") -> None:
    end: dict[str, Any] = {"call_id": telephony_id, "event_id": "e5", "kind": "end",
                           "at": app.state.clock.now().isoformat(), "outcome": "resolved", "category": category}
    response = await client.post(REPORT, headers=await telephony(app), json={"events": [end]})
    assert response.status_code == 200, response.text


async def _has_line(app: FastAPI) -> bool:
    async with app.state.database.transaction() as session:
        return await session.scalar(select(CityLine.id).limit(1)) is not None


async def identify(client: httpx.AsyncClient, headers: dict[str, str], call_id: int,
                   **body: Any) -> httpx.Response:
    return await client.post(f"{DESK}/calls/{call_id}/identify", json=body, headers=headers)
