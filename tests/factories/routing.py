"""Which requests reached the app's router (a lane past it must leave none there)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI


def watch_router(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The list the app's router adds each request to ("METHOD path") from now on, in this test."""
    routed: list[str] = []
    router_stack = app.router.middleware_stack

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        routed.append(f"{scope['method']} {scope['path']}")
        await router_stack(scope, receive, send)

    monkeypatch.setattr(app.router, "middleware_stack", watched)
    return routed
