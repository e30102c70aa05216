"""Open-loop real-time load for the collection benchmarks: 100-record batches over persistent HTTP/1.1
connections, from bodies built before the clock starts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from tests.factories.collection import make_record

from cityhealth.clock import SystemClock

BATCH_RECORDS = 100


def realtime_bodies(code: str, count: int, tag: str = "") -> list[bytes]:
    base = SystemClock().now() - timedelta(hours=1)
    run = f"{int(time.time())}{tag}"
    return [
        orjson.dumps(
            [make_record("outpatient_visit", code, f"rt-{run}-{n}-{k}", base) for k in range(BATCH_RECORDS)]
        )
        for n in range(count)
    ]


class Connection:
    """One persistent HTTP/1.1 connection: a request, then its whole response (Content-Length framed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


@dataclass
class Load:
    """Every request's latency (a failed request's too: its time to the error), by when it was due."""

    due_s: list[float] = field(default_factory=list)  # since the first request was due
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def percentile(self, share: float, latencies: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if latencies is None else latencies)
        return ordered[max(0, int(len(ordered) * share) - 1)] if ordered else float("nan")

    def windows(self, seconds: float = 5.0) -> str:
        """p50/p99 per window of `seconds` by due time: where in the run the slow requests were."""
        by_window: dict[int, list[float]] = {}
        for due, latency in zip(self.due_s, self.latencies_ms, strict=True):
            by_window.setdefault(int(due // seconds), []).append(latency)
        return ", ".join(
            f"{n * seconds:.0f}-{(n + 1) * seconds:.0f}s {self.percentile(0.5, v):.0f}/{self.percentile(0.99, v):.0f}"
            for n, v in sorted(by_window.items())
        )


async def realtime(port: int, authorization: str, bodies: list[bytes], rate: float, delay_s: float = 0.0) -> Load:
    """Open-loop load from `delay_s` on: request i is due at i/rate s; latency runs from when it was due to its
    last byte."""
    head = (
        b"POST /api/collection/forms/outpatient_visit/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: {authorization}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: "
    )
    idle: list[Connection] = []
    load = Load()

    async def one(due: float, body: bytes) -> None:
        connection = idle.pop() if idle else Connection(*await asyncio.open_connection("127.0.0.1", port))
        try:
            status = await connection.post(head, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            status = 0
            connection.writer.close()
        else:
            idle.append(connection)
        load.due_s.append(due - start)
        load.latencies_ms.append((time.perf_counter() - due) * 1000)
        load.failures += status != 200

    tasks = []
    await asyncio.sleep(delay_s)
    start = time.perf_counter() + 0.05
    for n, body in enumerate(bodies):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, body)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.writer.close()
    return load
