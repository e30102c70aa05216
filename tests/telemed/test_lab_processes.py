"""Several listener processes on one port (SO_REUSEPORT), and many connections sending one message at once:
every message acknowledged, each stored once whichever process or batch decided it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.telemed import lab_service
from tests.telemed.lab_support import ack_code, oru, running_listener, send, wire

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
        assert found is not None, started
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
    assert {ack_code(ack) for sent in acks for ack in sent} == {"AA"}
    assert "stopped: 32 received, 32 accepted, 0 refused" in output
    assert await _counts(database) == ({"AA": 17}, 17)
