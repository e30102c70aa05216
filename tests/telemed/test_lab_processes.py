"""Several listener processes on one port (SO_REUSEPORT), and many connections sending one message at once:
every message acknowledged, each stored once whichever process or batch decided it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Collection
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.telemed import lab_repository, lab_service
from cityhealth.telemed.lab_repository import MessageKey
from tests.telemed.lab_support import ack_code, ack_text, oru, running_listener, send, wire

pytestmark = pytest.mark.asyncio


async def _counts(database: Database) -> tuple[dict[str, int], int]:
    async with database.transaction() as session:
        kept = await lab_service.kept_messages(session)
    by_code: dict[str, int] = {}
    for row in kept:
        by_code[row.ack_code] = by_code.get(row.ack_code, 0) + 1
    return by_code, len({row.control_id for row in kept})


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def test_one_message_from_many_connections_at_once_is_stored_once(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    same = wire(oru("DUP-1", []))
    others = [wire(oru(f"ONE-{n}", [])) for n in range(10)]
    async with running_listener(database, settings, clock, max_batch=64) as (listener, port):
        acks = await asyncio.gather(*(send(port, same, other, same) for other in others))
    assert {ack_code(ack) for sent in acks for ack in sent} == {"AA"}
    assert await _counts(database) == ({"AA": 11}, 11)
    assert listener.stats.received == 30
    # Decided in shared batches, each message's report and observations are its own.
    async with database.transaction() as session:
        kept = await lab_service.kept_messages(session)
        reports = await lab_service.reports_of(session, [row.id for row in kept])
    by_message = {report.message_id: (report.placer_order_no, [o.code for o in rows]) for report, rows in reports}
    assert by_message == {row.id: (f"P-{row.control_id}", ["GLU", "HGB"]) for row in kept}


async def test_a_message_stored_elsewhere_after_the_batch_looked_is_a_duplicate_not_an_error(
    database: Database, settings: Settings, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another listener process commits the message between this batch's look for accepted keys and its insert
    (CI's draw: a batch of that message alone): the unique index refuses the insert, and the batch decided again
    answers AA, a duplicate, where it had answered AE."""
    message = wire(oru("RACE-1", []))
    async with running_listener(database, settings, clock) as (_, port):
        assert [ack_code(ack) for ack in await send(port, message)] == ["AA"]
        looked = lab_repository.accepted_keys
        stale = [True]

        async def before_the_other_committed(session: AsyncSession, keys: Collection[MessageKey]) -> set[MessageKey]:
            found = await looked(session, keys)
            if stale:  # the first look misses what the other process stored
                stale.clear()
                return set()
            return found

        monkeypatch.setattr(lab_repository, "accepted_keys", before_the_other_committed)
        acks = await send(port, message)
    assert [(ack_code(ack), ack_text(ack)) for ack in acks] == [("AA", "duplicate: already received")]
    assert not stale  # the stale look really happened
    assert await _counts(database) == ({"AA": 1}, 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreading and /proc are Linux's")
async def test_listener_processes_share_the_port_and_store_each_message_once(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CITYHEALTH_DATABASE_URL": database_url,
        "CITYHEALTH_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), str(Path().resolve())]),
    }
    command = ["-c", "from cityhealth.cli import main; main()", "telemed", "mllp", "--port", "0", "--processes", "2"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        assert process.stdout is not None
        started = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
        found = re.search(r"MLLP listener on 127\.0\.0\.1:(\d+) \(2 processes\)", started)
        if found is None:  # what the command said up to its end explains it (a listener's traceback, say)
            said = started + (await asyncio.wait_for(process.stdout.read(), 60)).decode(errors="replace")
            raise AssertionError(f"the listeners did not start:\n{said}")
        port = int(found.group(1))
        assert len(_children(process.pid)) >= 2  # the two listeners (the spawn's resource tracker besides)
        same = wire(oru("DUP-P", []))
        # Sixteen connections, spread by the kernel over both processes, each sending the same message
        # (racing across processes on the unique index) and one of its own.
        acks = await asyncio.gather(*(send(port, same, wire(oru(f"P-{n}", []))) for n in range(16)))
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
    assert process.returncode == 0, output
    assert {ack_code(ack) for sent in acks for ack in sent} == {"AA"}, output
    assert "stopped: 32 received, 32 accepted, 0 refused" in output
    assert await _counts(database) == ({"AA": 17}, 17)
