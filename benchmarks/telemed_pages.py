"""Telemed benchmark, pages part: CPU per view of the reading worklist, a case's page and its ECG drawing.

A scratch PostgreSQL database (CITYHEALTH_DATABASE_URL names the server) with one reading centre, `--cases`
ECG cases routed to it (each with a 10 s 12-lead DICOM tracing uploaded through the files API) and a doctor's
cookie session. The app is called in process through httpx's ASGI transport, one request at a time, so the
figures are this process's CPU (app and client) and the database backends' CPU per view, from /proc. The
first round warms up and is not counted; the minimum round is quoted (the machines these run on are noisy).
Last line: `case_page_cpu_ms=X svg_cpu_ms=Y worklist_cpu_ms=Z upload_cpu_ms=W` (app process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.measure import database_cpu_s
from benchmarks.scratch import scratch_platform


async def _run(args: argparse.Namespace) -> None:
    import httpx
    from tests.telemed.ecg_files import dicom_ecg
    from tests.telemed.support import CASES, centre, designate, requester, submit

    from cityhealth.app import create_app
    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade
    from cityhealth.web.session import SESSION_COOKIE

    base_url = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        raise SystemExit("set CITYHEALTH_DATABASE_URL to a PostgreSQL server (the scratch database is made there)")
    platform = await scratch_platform(base_url, "tpages", server_worker_concurrency=0)
    try:
        await asyncio.to_thread(upgrade, platform.settings)
        app = create_app(platform.settings)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            hospital, reader = await requester(app), await centre(app)
            await designate(app, hospital.member_id, reader.member_id)
            files = [dicom_ecg() for _ in range(args.cases)]
            ids: list[tuple[int, int]] = []
            upload_cpu = time.process_time()
            for data in files:
                case_id = (await submit(client, hospital))["id"]
                sent = await client.post(f"{CASES}/{case_id}/ecg", content=data,
                                         headers=hospital.headers | {"Content-Type": "application/dicom"})
                if sent.status_code != 200:
                    raise SystemExit(f"the upload failed: {sent.text}")
                ids.append((case_id, sent.json()["id"]))
            upload_ms = (time.process_time() - upload_cpu) * 1000 / args.cases  # with the case's submission
            client.cookies.set(SESSION_COOKIE, reader.headers["Authorization"].removeprefix("Bearer "))
            views = {
                "case_page": [f"/telemed/worklist/cases/{case}" for case, _ in ids],
                "svg": [f"/telemed/worklist/cases/{case}/ecg/{tracing}/svg" for case, tracing in ids],
                "worklist": ["/telemed/worklist"] * len(ids),
            }
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in views}
            for round_no in range(args.rounds + 1):
                for name, urls in views.items():
                    app_started = time.process_time()
                    db_started = await database_cpu_s(base_url, platform.name)
                    for url in urls:
                        response = await client.get(url)
                        if response.status_code != 200:
                            raise SystemExit(f"{url} answered {response.status_code}")
                    app_ms = (time.process_time() - app_started) * 1000 / len(urls)
                    db_ms = (await database_cpu_s(base_url, platform.name) - db_started) * 1000 / len(urls)
                    if round_no:
                        figures[name].append((app_ms, db_ms))
        await app.state.database.dispose()
        for name, rounds in figures.items():
            shown = ", ".join(f"{app_ms:.1f}+{db_ms:.1f}" for app_ms, db_ms in rounds)
            print(f"{name}: app+db CPU ms per view by round: {shown}")
        print(f"upload (submit + 10 s 12-lead DICOM ECG): {upload_ms:.1f} ms app CPU per case, "
              f"{args.cases} cases; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        best = {name: min(app_ms for app_ms, _ in rounds) for name, rounds in figures.items()}
        print(f"case_page_cpu_ms={best['case_page']:.1f} svg_cpu_ms={best['svg']:.1f} "
              f"worklist_cpu_ms={best['worklist']:.1f} upload_cpu_ms={upload_ms:.1f}")
    finally:
        await drop_database(base_url, platform.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
