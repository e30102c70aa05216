"""A recording SMS gateway put in the app's task runtime, and a bounded wait for the sending task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import FastAPI

from cityhealth.booking.notifications import SMS_GATEWAY, SmsGateway

_Gateway = TypeVar("_Gateway", bound=SmsGateway)


@dataclass
class Recorder:
    """Keeps what it is asked to send; `down` makes every send fail, as an unreachable provider would."""

    down: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)  # (phone, message)
    calls: int = 0

    async def send(self, phone: str, message: str, *, reference: str) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("gateway unreachable")
        self.sent.append((phone, message))


def install(app: FastAPI, recorder: _Gateway) -> _Gateway:
    """The gateway the app's sending task uses (its runtime is shared by the in-process runner and worker)."""
    app.state.tasks.resources[SMS_GATEWAY] = recorder
    return recorder


async def until(condition: Callable[[], Awaitable[bool]], *, seconds: float = 20.0) -> bool:
    """Whether `condition` became true within `seconds` (the task runs in the background, on either backend)."""
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return await condition()
