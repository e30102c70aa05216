"""Tamper evidence: every single-byte edit, deletion and reordering of stored audit events is detected,
and the verification names the first bad event.

The database refuses these changes (triggers); the tests drop that protection first, as an attacker with
the database owner's rights could, to show the hash chain still tells.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.audit import Action, Outcome, PendingEvent, record_now
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.principals import Principal, PrincipalKind, Scope

EVENTS = 24
_FIELDS = [*PendingEvent.__dataclass_fields__, "prev_hash", "hash"]
COLUMNS = ["id", *_FIELDS]
# The SQL below is built from these fixed column names only (ruff S608 cannot tell).
SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY id"  # noqa: S608
INSERT_ROW = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"  # noqa: S608
SET_ALL = f"UPDATE audit_events SET {', '.join(f'{c} = :{c}' for c in _FIELDS)} WHERE id = :id"  # noqa: S608


async def _seed(database: Database, clock: SimulatedClock) -> None:
    principal = Principal(kind=PrincipalKind.STAFF, subject="staff:3", scopes=frozenset({Scope.RESIDENT_READ}),
                          organization_id=7, on_behalf_of="call:88", session_id="s")
    for n in range(EVENTS):
        clock.advance(timedelta(seconds=1))
        await record_now(database, clock, principal if n % 3 else None, Action.READ, "resident",
                         resource_id=n, resident_ids=[100 + n], outcome=Outcome.SUCCESS if n % 5 else Outcome.DENIED,
                         detail=f"event {n}" if n % 2 else None)


@pytest.fixture
async def chain(database: Database, clock: SimulatedClock) -> list[dict[str, Any]]:
    await _seed(database, clock)
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == EVENTS
    return await _rows(database)


async def _rows(database: Database) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        result = await session.execute(text(SELECT_ALL))
        return [dict(row._mapping) for row in result]


@asynccontextmanager
async def _unprotected(database: Database) -> AsyncIterator[AsyncSession]:
    """A transaction in which the append-only triggers are off (as the database owner could do)."""
    async with database.transaction() as session:
        if database.is_sqlite:
            await session.execute(text("DROP TRIGGER audit_events_no_update"))
            await session.execute(text("DROP TRIGGER audit_events_no_delete"))
        else:
            await session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        yield session
        if database.is_sqlite:
            for verb in ("UPDATE", "DELETE"):
                await session.execute(text(
                    f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))
        else:
            await session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


async def _restore(database: Database, rows: list[dict[str, Any]]) -> None:
    async with _unprotected(database) as session:
        await session.execute(text("DELETE FROM audit_events"))
        for row in rows:
            await session.execute(text(INSERT_ROW), row)
    assert (await verify_chain(database)).ok


def _set_one(column: str) -> str:
    assert column in _FIELDS
    return f"UPDATE audit_events SET {column} = :value WHERE id = :id"  # noqa: S608 - a known column name


def _one_byte_changed(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool) or value is None:
        raise TypeError(value)
    if isinstance(value, int):
        return value ^ (1 << rng.randrange(0, 4))  # flip one low bit: one byte of the stored integer changes
    if isinstance(value, datetime):  # PostgreSQL keeps timestamptz as a binary count of microseconds
        return value + timedelta(microseconds=1 << rng.randrange(0, 8))
    text_value = str(value)
    position = rng.randrange(len(text_value))
    original = text_value[position]
    replacement = next(c for c in rng.sample("0123456789abcdefXYZ:-", 21) if c != original)
    return text_value[:position] + replacement + text_value[position + 1:]


async def test_every_single_byte_edit_of_every_field_is_detected(database: Database,
                                                                 chain: list[dict[str, Any]]) -> None:
    rng = random.Random(11643)
    tried = detected = 0
    for row in chain:
        for column in _FIELDS:
            if row[column] is None:
                continue
            edited = _one_byte_changed(row[column], rng)
            async with _unprotected(database) as session:
                await session.execute(text(_set_one(column)), {"value": edited, "id": row["id"]})
            report = await verify_chain(database)
            tried += 1
            assert report.problem is not None, f"edit of {column} in event {row['id']} went unnoticed"
            assert (report.problem.event_id, report.problem.kind) == (row["id"], "edited"), (column, report)
            detected += 1
            async with _unprotected(database) as session:
                await session.execute(text(_set_one(column)), {"value": row[column], "id": row["id"]})
    assert tried == detected
    assert tried > EVENTS * 10
    assert (await verify_chain(database)).ok


async def test_an_edit_with_a_recomputed_hash_is_still_detected(database: Database,
                                                                chain: list[dict[str, Any]]) -> None:
    from cityhealth.security.audit import event_hash
    from cityhealth.security.audit_verify import _recomputed

    victim = dict(chain[9])
    victim["outcome"] = "success" if victim["outcome"] != "success" else "denied"
    forged_hash = _recomputed(type("Row", (), victim))
    assert forged_hash is not None
    assert forged_hash != event_hash("x", {})
    async with _unprotected(database) as session:
        await session.execute(text("UPDATE audit_events SET outcome = :o, hash = :h WHERE id = :id"),
                              {"o": victim["outcome"], "h": forged_hash, "id": victim["id"]})
    report = await verify_chain(database)
    assert report.problem is not None
    assert (report.problem.event_id, report.problem.kind) == (victim["id"], "edited")


@pytest.mark.parametrize("position", [0, 1, EVENTS // 2, EVENTS - 2])
async def test_a_deleted_event_is_detected_at_the_next_one(database: Database, chain: list[dict[str, Any]],
                                                           position: int) -> None:
    async with _unprotected(database) as session:
        await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[position]["id"]})
    report = await verify_chain(database)
    assert report.problem is not None
    assert (report.problem.event_id, report.problem.kind) == (chain[position + 1]["id"], "deleted")


async def test_every_deletion_is_detected(database: Database, chain: list[dict[str, Any]]) -> None:
    head = (chain[-1]["id"], chain[-1]["hash"])
    for row in chain:
        async with _unprotected(database) as session:
            await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": row["id"]})
        report = await verify_chain(database, anchor=head)
        assert report.problem is not None, f"deleting event {row['id']} went unnoticed"
        assert report.problem.kind == "deleted"
        await _restore(database, chain)


async def test_removing_the_newest_events_is_detected_against_an_anchor(database: Database,
                                                                        chain: list[dict[str, Any]]) -> None:
    head = (chain[-1]["id"], chain[-1]["hash"])
    async with _unprotected(database) as session:
        await session.execute(text("DELETE FROM audit_events WHERE id >= :id"), {"id": chain[-3]["id"]})
    assert (await verify_chain(database)).ok  # the shorter chain is consistent in itself…
    report = await verify_chain(database, anchor=head)  # …but the anchored head is gone
    assert report.problem is not None
    assert (report.problem.event_id, report.problem.kind) == (head[0], "deleted")


async def test_every_reordering_is_detected(database: Database, chain: list[dict[str, Any]]) -> None:
    rng = random.Random(2022)
    pairs = [(i, i + 1) for i in range(EVENTS - 1)] + [tuple(sorted(rng.sample(range(EVENTS), 2))) for _ in range(12)]
    for first, second in pairs:
        a, b = chain[first], chain[second]
        async with _unprotected(database) as session:
            for target, source in ((a, b), (b, a)):
                values = {c: source[c] for c in _FIELDS} | {"id": target["id"], "tmp": f"swap-{target['id']}"}
                # The unique hash must not collide mid-swap: park it first.
                await session.execute(text("UPDATE audit_events SET hash = :tmp WHERE id = :id"), values)
            for target, source in ((a, b), (b, a)):
                values = {c: source[c] for c in _FIELDS} | {"id": target["id"]}
                await session.execute(text(SET_ALL), values)
        report = await verify_chain(database)
        assert report.problem is not None, f"swapping events {a['id']} and {b['id']} went unnoticed"
        assert (report.problem.event_id, report.problem.kind) == (a["id"], "reordered"), report
        await _restore(database, chain)


async def test_the_database_itself_refuses_updates_and_deletes(database: Database,
                                                               chain: list[dict[str, Any]]) -> None:
    for statement in ("UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text(statement))
    if not database.is_sqlite:
        with pytest.raises(Exception, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text("TRUNCATE audit_events"))
    assert await _rows(database) == chain


async def test_a_respelling_of_the_same_instant_is_detected(database: Database, chain: list[dict[str, Any]]) -> None:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL stores timestamptz in binary: there is no spelling to change")
    victim = chain[4]
    respelled = str(victim["occurred_at"]).replace(" ", "T")  # the same instant to datetime.fromisoformat
    async with _unprotected(database) as session:
        await session.execute(text(_set_one("occurred_at")), {"value": respelled, "id": victim["id"]})
    report = await verify_chain(database)
    assert report.problem is not None
    assert (report.problem.event_id, report.problem.kind) == (victim["id"], "edited")


async def test_concurrent_appends_from_separate_engines_keep_one_chain(database: Database, settings: Settings,
                                                                       clock: SimulatedClock) -> None:
    # Two engines stand for two worker processes: each transaction appends several events (one per resident)
    # with non-ASCII details, and the chain lock must serialise the appends into one verifiable chain.
    engines = [database, Database(settings.effective_database_url)]
    try:
        await asyncio.gather(*(
            record_now(engines[n % 2], clock, None, Action.READ, "resident", resource_id=n,
                       resident_ids=[n, n + 1000, n + 2000], outcome=Outcome.SUCCESS, detail=f"读取 {n} \"é\"\n")
            for n in range(12)
        ))
    finally:
        await engines[1].dispose()
    report = await verify_chain(database)
    assert report.ok
    assert report.checked == 36
