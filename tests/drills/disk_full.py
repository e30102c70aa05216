"""The full-disk drill: the database (and with it the bulk-upload spool, which lives in its table) on a small
tmpfs the drill mounts. A bulk upload larger than the room left is refused with 507 `storage.full`, leaves no
job and no spool frame, and real-time uploads and readiness go on being answered. Needs root (mount)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson

from cityhealth.collection.models import Job, Record, SpoolFrame
from tests.drills.checks import count_rows, recount
from tests.drills.platform import FORM, Platform, client_of, platform

SPARE_FILES = {"cityhealth.sqlite", "cityhealth.sqlite-wal", "cityhealth.sqlite-shm"}


@dataclass
class DiskFullResult:
    ok: bool
    filesystem_mb: int
    upload_mb: float
    status: int
    code: str
    rule: str
    jobs: int
    frames: int
    stray_files: list[str]
    served_after: int
    refused_in_s: float

    def line(self) -> str:
        return (f"disk_full: ok={int(self.ok)} fs_mb={self.filesystem_mb} upload_mb={self.upload_mb:.1f} "
                f"status={self.status} code={self.code} rule={self.rule} jobs_left={self.jobs} "
                f"frames_left={self.frames} stray_files={len(self.stray_files)} served_after={self.served_after} "
                f"refused_in_s={self.refused_in_s:.1f}")


def _body(site: Platform, megabytes: float) -> bytes:
    """NDJSON records with random notes: the spool's compression cannot make them smaller than sent."""
    at = site.app.state.clock.now() - timedelta(hours=1)
    lines = [orjson.dumps({"form": FORM, **site.batch(f"full-{n}", 1, at)[0],
                           "chief_complaint": os.urandom(1024).hex()}) for n in range(int(megabytes * 512))]
    return b"\n".join(lines) + b"\n"


async def run(filesystem_mb: int = 32, reserve_mb: int = 8) -> DiskFullResult:
    if os.geteuid() != 0:
        raise PermissionError("the full-disk drill mounts a tmpfs: run it as root")
    mountpoint = Path(tempfile.mkdtemp(prefix="drill-disk-"))
    var = Path(tempfile.mkdtemp(prefix="drill-disk-var-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={filesystem_mb}m,mode=0755", "drill-tmpfs",  # noqa: S603, S607
                    str(mountpoint)], check=True)
    try:
        url = f"sqlite:///{mountpoint / 'cityhealth.sqlite'}"
        async with platform(url, var, storage_reserve_bytes=reserve_mb << 20) as site, client_of(site.app) as http:
            database = site.app.state.database
            posted = await http.post(f"/api/collection/forms/{FORM}/records", json=site.batch("before", 50),
                                     headers=site.headers())
            assert posted.status_code == 200, posted.text
            free = shutil.disk_usage(mountpoint).free
            body = _body(site, 2.5 * free / (1 << 20))  # hex notes seal to about half their size
            started = time.monotonic()
            refused = await http.post("/api/collection/jobs", content=body,
                                      headers={**site.headers(), "content-type": "application/x-ndjson"})
            refused_in = time.monotonic() - started
            problem = refused.json() if refused.headers.get("content-type") == "application/problem+json" else {}
            jobs, frames = await count_rows(database, Job), await count_rows(database, SpoolFrame)
            served = 0
            for n in range(20):
                after = await http.post(f"/api/collection/forms/{FORM}/records", json=site.batch(f"after-{n}", 50),
                                        headers=site.headers())
                ready = await http.get("/readyz")
                served += int(after.status_code == 200 and ready.status_code == 200)
            stored = await count_rows(database, Record)
            counts = await recount(database)
        stray = sorted(p.name for p in mountpoint.iterdir() if p.name not in SPARE_FILES)
        ok = (refused.status_code == 507 and problem.get("rule") == "storage.reserve" and jobs == 0 and frames == 0
              and not stray and served == 20 and stored == 50 * 21 and counts.ok)
        return DiskFullResult(ok, filesystem_mb, len(body) / (1 << 20), refused.status_code,
                              str(problem.get("code")), str(problem.get("rule")), jobs, frames, stray, served,
                              refused_in)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)  # noqa: S603, S607
        mountpoint.rmdir()
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    outcome = asyncio.run(run())
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
