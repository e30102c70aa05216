"""Helpers of the calls tests: a registered city line, the telephony client, events as the CTI sends them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI

from cityhealth.hotline import service
from cityhealth.hotline.schemas import CityLineIn
from cityhealth.security.principals import Role, Scope
from tests.factories.security import headers_for, machine, staff

NANJING_LINE = "025-12320"
T = TypeVar("T")


async def add_line(app: FastAPI, line: str = NANJING_LINE, city_code: str = "320100", city_name: str = "南京市",
                   active: bool = True) -> None:
    admin = machine(Scope.HOTLINE_ADMIN, client_id="line-admin")
    async with app.state.database.transaction() as session:
        await service.put_city_line(session, app.state.clock, admin, line, CityLineIn(
            city_code=city_code, city_name=city_name, active=active))


async def telephony(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.HOTLINE_TELEPHONY, client_id="cti"))


async def agent(app: FastAPI, user_id: int) -> tuple[dict[str, str], str]:
    """An agent's headers and the subject the telephony system names them by."""
    return await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=user_id)), f"staff:{user_id}"


def call_events(call_id: str, start: datetime, *, agent: str = "staff:1", category: str | None = "consultation",
                line: str = NANJING_LINE, caller: str | None = "13812345678", outcome: str = "resolved",
                minutes: int = 5) -> list[dict[str, Any]]:
    """A whole answered call's five events."""
    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    end: dict[str, Any] = {"call_id": call_id, "event_id": "e5", "kind": "end", "at": at(minutes * 60),
                           "outcome": outcome}
    if category is not None:
        end["category"] = category
    start_event: dict[str, Any] = {"call_id": call_id, "event_id": "e1", "kind": "start", "at": at(0),
                                   "city_line": line}
    if caller is not None:
        start_event["caller_number"] = caller
    return [
        start_event,
        {"call_id": call_id, "event_id": "e2", "kind": "ivr", "at": at(5), "ivr_node": "main>booking"},
        {"call_id": call_id, "event_id": "e3", "kind": "queue", "at": at(20), "queue": "booking"},
        {"call_id": call_id, "event_id": "e4", "kind": "answer", "at": at(40), "agent": agent},
        end,
    ]


def on_loop(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    """Run a coroutine on the test's loop from hypothesis's thread (the loop is free meanwhile)."""
    def run(coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()  # type: ignore[arg-type]
    return run
