"""The API-process crash drill: `cityhealth serve` SIGKILLed at random moments while clients upload real-time
batches, and started again.

Each client sends a batch of new records until it is answered 200, sending it again unchanged after a broken
connection or a 503 (as a client that did not hear its answer must). After each crash the audit chain is
verified; at the end every batch is stored whole and once (no record lost, none twice), the counters equal a
recount, and sending every batch once more changes nothing (all answered duplicate).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.drills.checks import recount
from tests.drills.platform import FORM, Platform, crash_rig, platform

CLIENTS = 3
BATCH = 25


@dataclass
class CrashResult:
    crashes: int = 0
    sent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    audit_failures: int = 0
    counters_ok: bool = False
    retry_changed: int = 0

    @property
    def ok(self) -> bool:
        return (self.crashes > 0 and not self.lost and not self.duplicated and not self.audit_failures
                and self.counters_ok and not self.retry_changed and 500 not in self.statuses)

    def line(self) -> str:
        return (f"crash_api: ok={int(self.ok)} crashes={self.crashes} batches={len(self.sent)} stored={self.stored} "
                f"lost={self.lost} duplicated={self.duplicated} audit_failures={self.audit_failures} "
                f"counters_ok={int(self.counters_ok)} retry_changed={self.retry_changed} "
                f"answers={dict(sorted(self.statuses.items()))}")


async def _send_until_taken(http: httpx.AsyncClient, site: Platform, records: list[dict[str, Any]],
                            result: CrashResult) -> dict[str, Any]:
    while True:
        try:
            response = await http.post(f"/api/collection/forms/{FORM}/records", json=records, headers=site.headers())
        except httpx.TransportError:
            result.statuses[-1] += 1
            await asyncio.sleep(0.1)
            continue
        result.statuses[response.status_code] += 1
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.2)


async def _client(base_url: str, site: Platform, number: int, stop: asyncio.Event, result: CrashResult) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        n = 0
        while not stop.is_set():
            name = f"c{number}-{n}"
            records = site.batch(name, BATCH)
            result.sent[name] = records
            await _send_until_taken(http, site, records, result)
            n += 1


async def run(*, crashes: int = 20, seed: int = 1) -> CrashResult:
    chance = random.Random(seed)
    result = CrashResult()
    async with crash_rig("drill-crash-api-") as rig:
        async with platform(rig.url, rig.root / "var") as site:
            pass  # migrated, the hospital and its client registered; the server processes serve from here on
        await rig.serve(site)
        stop = asyncio.Event()
        clients = [asyncio.create_task(_client(rig.base_url, site, n, stop, result)) for n in range(CLIENTS)]
        for _ in range(crashes):
            await asyncio.sleep(chance.uniform(0.3, 1.5))
            result.audit_failures += 0 if await rig.crash() else 1
            result.crashes += 1
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
        counts = await recount(rig.checker)
        result.stored, result.counters_ok = counts.records, counts.ok
        expected = sum(len(records) for records in result.sent.values())
        result.lost = max(0, expected - counts.records)
        result.duplicated = max(0, counts.records - expected)
        async with httpx.AsyncClient(base_url=rig.base_url, timeout=30) as http:
            for records in list(result.sent.values())[-10:]:  # the last ones: sent around the final crashes
                again = await _send_until_taken(http, site, records, result)
                result.retry_changed += sum(n for status, n in again["counts"].items()
                                            if status not in ("received", "duplicate"))
        result.retry_changed += (await recount(rig.checker)).records - counts.records
        result.audit_failures += 0 if await rig.chain_ok() else 1
        return result


if __name__ == "__main__":
    outcome = asyncio.run(run(crashes=int(sys.argv[1]) if len(sys.argv) > 1 else 20))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
