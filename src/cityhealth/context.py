"""Request-scoped access to the process-wide objects create_app() builds: settings, clock, database.

The getters are `async def` although they do no I/O: FastAPI runs plain `def` dependencies in a thread
pool, a hop that costs more than the getter on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: services flush, this commits when the handler returns.

    Declared with scope="function" so the commit happens before the response is sent: a client never
    sees success for a write that then failed to commit.
    """
    database: Database = request.app.state.database
    async with database.sessions() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
