"""`cityhealth telemed mllp`: the listener run as its command, fed over a socket, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.telemed.lab_support import ack_code, oru, send, wire

pytestmark = pytest.mark.asyncio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("options", [[], ["--batch-interval-ms", "20"]], ids=["default", "batch-interval"])
async def test_the_command_listens_on_loopback_acknowledges_and_stops_on_sigterm(
    database_url: str, tmp_path: Path, options: list[str]
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CITYHEALTH_DATABASE_URL": database_url,
        "CITYHEALTH_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), str(Path().resolve())]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cityhealth.cli import main; main()",
        "telemed",
        "mllp",
        "--port",
        str(port),
        *options,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        started = await asyncio.wait_for(process.stdout.readline(), 60)
        assert f"MLLP listener on 127.0.0.1:{port}" in started.decode()
        acks = await send(port, wire(oru("CLI-1", [])), wire(oru("CLI-2", [])))
        assert [ack_code(ack) for ack in acks] == ["AA", "AA"]
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    assert process.returncode == 0, output
    assert "stopped: 2 received, 2 accepted, 0 refused" in output
