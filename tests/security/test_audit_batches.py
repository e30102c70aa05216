"""Commits of many audit events (a bulk import's trail): linked into the one chain like any other commit.

On PostgreSQL a commit of more than a few events is linked here rather than in the appending statement (whose
cost grows with the square of the count); both must continue the same verifiable chain, in commit order.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security import audit
from cityhealth.security.audit import Action, Outcome, record, record_each, record_now, write_pending_now
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.models import AuditEvent

MANY = audit._LINK_IN_SQL_MAX * 3 + 1


async def _resident_ids(database: Database) -> list[int | None]:
    async with database.sessions() as session:
        return list((await session.scalars(select(AuditEvent.resident_id).order_by(AuditEvent.id))).all())


async def test_a_commit_of_many_events_continues_the_chain_in_order(database: Database,
                                                                    clock: SimulatedClock) -> None:
    await record_now(database, clock, None, Action.READ, "resident", resident_ids=[1, 2], outcome=Outcome.SUCCESS)
    async with database.transaction() as session:
        record_each(session, clock, None, "resident",
                    [(Action.CREATE if n % 2 else Action.UPDATE, 1000 + n, f"导入 {n} \"é\"") for n in range(MANY)],
                    actor="cli:tester")
    await record_now(database, clock, None, Action.READ, "resident", resident_ids=[3], outcome=Outcome.SUCCESS)
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == MANY + 3
    assert await _resident_ids(database) == [1, 2, *(1000 + n for n in range(MANY)), 3]


async def test_concurrent_commits_of_many_events_keep_one_chain(database: Database, settings: Settings,
                                                                clock: SimulatedClock) -> None:
    engines = [database, Database(settings.effective_database_url)]
    try:
        await asyncio.gather(*(
            record_now(engines[n % 2], clock, None, Action.READ, "resident", outcome=Outcome.SUCCESS,
                       resident_ids=range(n * 1000, n * 1000 + (MANY if n % 3 else 2)))
            for n in range(8)
        ))
    finally:
        await engines[1].dispose()
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == sum(MANY if n % 3 else 2 for n in range(8))


async def test_many_events_written_before_the_commit_continue_the_chain(database: Database,
                                                                        clock: SimulatedClock) -> None:
    # write_pending_now (the real-time upload's group transaction) takes the same two ways as the commit hook.
    for count in (2, MANY):
        async with database.transaction() as session:
            record_each(session, clock, None, "resident", [(Action.CREATE, n, None) for n in range(count)],
                        actor="cli:tester")
            await write_pending_now(session)
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == 2 + MANY


async def test_record_each_leaves_the_events_record_leaves_one_by_one(database: Database,
                                                                      clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        record(session, clock, None, Action.UPDATE, "resident", resource_id=7, resident_ids=[7],
               detail="import; changed name", actor="cli:tester")
        record_each(session, clock, None, "resident", [(Action.UPDATE, 7, "import; changed name")],
                    actor="cli:tester")
        one_by_one, together = session.sync_session.info[audit._PENDING]
    assert one_by_one == together


async def test_a_commit_larger_than_one_statement_goes_in_several_in_order(
        database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "_LINKED_DOCUMENT_EVENTS", 40)
    for write_before_commit in (False, True):
        async with database.transaction() as session:
            record_each(session, clock, None, "resident", [(Action.CREATE, n, None) for n in range(MANY)],
                        actor="cli:tester")
            if write_before_commit:
                await write_pending_now(session)
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == 2 * MANY
    assert await _resident_ids(database) == [*range(MANY), *range(MANY)]
