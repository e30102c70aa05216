"""Telemed benchmark: lab results (ORU^R01) over MLLP to `cityhealth telemed mllp`, and doctors racing to claim
cases over HTTP (benchmarks/telemed_claims.py), both on PostgreSQL.

MLLP: a scratch database (benchmarks/scratch.py) with residents in the master index; the listener started as
its command (`--processes`, one per core by default, sharing the port); a load generator (this module run as
a script, another process) whose lab systems each hold one MLLP connection and send their messages one after
another, each waiting for its ACK (original mode), as lab systems do. The messages are built with python-hl7
before the clock starts; four in five name a resident in the index, the others a patient it does not hold.
Two loads after a warm-up: back to back (each lab system sends its next message as soon as the last one's ACK
comes: the listener's capacity, where the ACK latency is the lab systems in flight over that capacity), then
paced at `--rate` messages/s offered by the lab systems together (default: the goal and a fifth more), each
message due at its moment and its ACK latency counted from then (open loop: a late ACK delays the system's
next message, and that delay counts in the next message's latency). The goal is judged on the paced load.
Reported for each: messages/s, the ACK latency percentiles, CPU per message of the listener's processes, the
database's backends and the load generator's sending (from /proc), the core count and the load average, and the
storage's floor meanwhile (measure.CommitProbe: a one-row commit every 5 ms on a connection of its own, whose
stalls every transaction shares); what the database holds, checked against what was sent; then the bare ceiling
under the same load
(benchmarks/mllp_bare.py: the ACK sent at once, nothing read or stored) with the same figures.

Goal (issue 16): >= 2,000 messages/s with ACK p99 <= 20 ms on this 2-core machine, and 0 double claims.
Last line: `mllp_msgs_per_s=X ack_p99_ms=Y double_claims=N`, X and Y of the paced load (of the back-to-back one
with `--rate 0`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.booking_race import free_port, percentile, raise_fd_limit
from benchmarks.measure import CommitProbe, database_cpu_s, process_tree_cpu_s
from benchmarks.telemed_claims import add_claim_arguments, claim_race

from cityhealth.simulation.lab_feed import field, segment

GOAL_MSGS_PER_S = 2_000
GOAL_P99_MS = 20.0
START, END = b"\x0b", b"\x1c\x0d"


# --- Messages (built with python-hl7) ----------------------------------------------------------------------


def oru(control_id: str, facility: str, id_number: str, observations: int) -> bytes:
    import hl7

    msh = hl7.Segment(
        sequence=[
            hl7.Field(sequence=["MSH"]),
            hl7.Field(sequence=["|"]),
            hl7.Field(sequence=["^~\\&"]),
            *(
                field(v)
                for v in (
                    "LIS",
                    facility,
                    "CITYHEALTH",
                    "NANJING",
                    "20261205083000",
                    "",
                    ("ORU", "R01", "ORU_R01"),
                    control_id,
                    "P",
                    "2.5.1",
                )
            ),
        ]
    )
    tests = (
        ("GLU", "葡萄糖", "5.4", "mmol/L", "3.9-6.1", "N"),
        ("HGB", "血红蛋白", "98", "g/L", "115-150", "L"),
        ("WBC", "白细胞", "6.2", "10*9/L", "3.5-9.5", "N"),
        ("PLT", "血小板", "210", "10*9/L", "125-350", "N"),
        ("ALT", "丙氨酸氨基转移酶", "31", "U/L", "7-40", "N"),
        ("CRE", "肌酐", "72", "umol/L", "57-97", "N"),
    )
    segments = [
        msh,
        segment("PID", "1", "", (id_number, "", "", "", "ID"), "", ("王", "某")),
        segment(
            "OBR",
            "1",
            f"P{control_id}",
            f"F{control_id}",
            ("CBC", "血常规", "L"),
            "",
            "",
            "20261205080000",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "F",
        ),
    ]
    for n in range(observations):
        code, name, value, units, low_high, flag = tests[n % len(tests)]
        segments.append(
            segment("OBX", str(n + 1), "NM", (code, name, "LN"), "", value, units, low_high, flag, "", "", "F")
        )
    return str(hl7.Message(sequence=segments)).encode("utf-8")


# --- Load generator (its own process) --------------------------------------------------------------------


async def _sender(
    port: int, messages: list[bytes], latencies: list[float], codes: dict[str, int], first_due: float, interval: float
) -> None:
    """Send the messages one after another, each after the last one's ACK; paced (`interval` > 0): message k is
    due at `first_due` + k * `interval`, sent then or, when the ACKs run late, as soon as the last one comes,
    and its latency counted from when it was due (a lab system's backlog is its latency too)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for k, raw in enumerate(messages):
            began = time.perf_counter()
            if interval:
                due = first_due + k * interval
                if due > began:
                    await asyncio.sleep(due - began)
                began = due
            writer.write(START + raw + END)
            ack = await reader.readuntil(END)
            latencies.append(time.perf_counter() - began)
            code = ack.split(b"\rMSA|", 1)[1][:2].decode() if b"\rMSA|" in ack else "??"
            codes[code] = codes.get(code, 0) + 1
    finally:
        writer.close()


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    from cityhealth.registry.identifiers import make_resident_id

    known, senders, total, rate = spec["residents"], spec["senders"], spec["messages"], spec["rate"]
    numbers = [make_resident_id("320102", date(1950, 1, 1) + timedelta(days=n // 900), n % 900) for n in range(known)]
    strangers = [make_resident_id("320104", date(1960, 1, 1) + timedelta(days=n), 1) for n in range(500)]
    plans: list[list[bytes]] = [[] for _ in range(senders)]
    for n in range(total):
        number = numbers[n % known] if n % 5 else strangers[n % len(strangers)]
        plans[n % senders].append(
            oru(f"{spec['prefix']}{n:08d}", f"LAB-{n % senders:02d}", number, spec["observations"])
        )
    latencies: list[float] = []
    codes: dict[str, int] = {}
    # Paced: the lab systems' messages interleave, one due every 1/rate s across them; the first are due once
    # every connection has had time to open.
    first_due = time.perf_counter() + (0.5 if rate else 0.0)
    interval = senders / rate if rate else 0.0
    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(
            _sender(spec["port"], plan, latencies, codes, first_due + n / rate if rate else 0.0, interval)
            for n, plan in enumerate(plans)
        )
    )
    return {"wall_s": time.perf_counter() - max(began, first_due), "latencies": latencies, "codes": codes,
            "cpu_s": time.process_time() - cpu}


def loadgen_main(spec_path: str, out_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(uvloop.run(_loadgen(spec))))


def machine_speed() -> None:
    """The machine's speed now: CPU seconds of a bare Python loop at module level (about 1.3 s when calm)."""
    loop = "import time;t=time.process_time();s=0\nfor i in range(20_000_000): s+=i\nprint(time.process_time()-t)"
    seconds = subprocess.run(  # noqa: S603 - our own interpreter and loop
        [sys.executable, "-c", loop], capture_output=True, text=True, check=True
    ).stdout
    print(f"machine: bare loop of 20M additions {float(seconds):.2f} s CPU (calm: 1.3 to 1.4); "
          f"loadavg {os.getloadavg()[0]:.2f}", flush=True)


# --- Orchestration --------------------------------------------------------------------------------------------


async def _seed(settings: Any, count: int, senders: int) -> None:
    """The residents four in five messages name, and the lab systems as registered hospitals, so that each
    batch credits its senders' month as a live city's labs would be credited."""
    from cityhealth.db.engine import Database
    from cityhealth.registry.identifiers import make_resident_id
    from cityhealth.registry.models import Organization, Resident
    from cityhealth.registry.protection import ID_NUMBER, cipher_for

    cipher, now = cipher_for(settings), datetime.now(UTC)
    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as session:
            for n in range(senders):
                session.add(
                    Organization(
                        code=f"LAB-{n:02d}", name=f"检验中心{n:02d}", kind="hospital",
                        active_from=date(2020, 1, 1), created_at=now, updated_at=now,
                    )
                )
            for n in range(count):
                born = date(1950, 1, 1) + timedelta(days=n // 900)
                number = make_resident_id("320102", born, n % 900)
                session.add(
                    Resident(
                        id_number_hash=cipher.lookup_hash(ID_NUMBER, number),
                        id_number_enc=cipher.encrypt(ID_NUMBER, number),
                        name=f"居民{n}",
                        sex=1 if n % 2 else 2,
                        birth_date=born,
                        is_active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
    finally:
        await database.dispose()


async def _stored(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from cityhealth.db.engine import Database

    database = Database(url)
    queries = {
        "messages": "SELECT count(*) FROM telemed_lab_messages",
        "accepted": "SELECT count(*) FROM telemed_lab_messages WHERE ack_code = 'AA'",
        "reports": "SELECT count(*) FROM telemed_lab_reports",
        "matched": "SELECT count(*) FROM telemed_lab_reports WHERE resident_id IS NOT NULL",
        "observations": "SELECT count(*) FROM telemed_lab_observations",
        "credited": "SELECT coalesce(sum(reports_uploaded), 0) FROM telemed_month_volumes WHERE network_code = 'lab'",
    }
    try:
        async with database.transaction() as session:
            return {name: int((await session.execute(text(sql))).scalar_one()) for name, sql in queries.items()}
    finally:
        await database.dispose()


async def _wait_listening(port: int, server: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the listener exited ({server.returncode}); see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit("the listener did not start listening")


async def _run_load(
    args: argparse.Namespace, workdir: Path, port: int, prefix: str, messages: int, rate: float = 0.0
) -> dict[str, Any]:
    spec = {
        "rate": rate,
        "port": port,
        "messages": messages,
        "senders": args.senders,
        "residents": args.residents,
        "observations": args.observations,
        "prefix": prefix,
    }
    spec_path, out_path = workdir / f"spec-{prefix}.json", workdir / f"results-{prefix}.json"
    spec_path.write_text(json.dumps(spec))
    loadgen = await asyncio.create_subprocess_exec(sys.executable, __file__, str(spec_path), str(out_path))
    await loadgen.wait()
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


async def _measured_load(args: argparse.Namespace, workdir: Path, port: int, server: subprocess.Popen[bytes],
                         database: tuple[str, str] | None) -> list[tuple[str, dict[str, Any]]]:
    """A warm-up, then the measured loads: back to back (the capacity), then paced at `args.rate` (when not 0),
    each (its name, its results with the CPU seconds of the server's process tree, the database's backends
    (`database`: server URL and name) and the load generator's sending)."""
    await _wait_listening(port, server)
    await _run_load(args, workdir, port, "warm-", args.senders * 20)  # pools open, code paths warm
    loads = [("back to back", "run-", args.messages, 0.0)]
    if args.rate:
        loads.append((f"paced at {args.rate:.0f}/s", "paced-", _paced_messages(args), args.rate))
    outcomes = []
    for name, prefix, messages, rate in loads:
        server_before = process_tree_cpu_s(server.pid)
        database_before = await database_cpu_s(*database) if database else 0.0
        if database:
            async with CommitProbe(database[0]) as probe:
                outcome = await _run_load(args, workdir, port, prefix, messages, rate)
            outcome["probe"] = probe.summary()
        else:
            outcome = await _run_load(args, workdir, port, prefix, messages, rate)
        outcome["cpu"] = {
            "server": process_tree_cpu_s(server.pid) - server_before,
            "database": (await database_cpu_s(*database) - database_before) if database else 0.0,
            "loadgen": outcome["cpu_s"],
        }
        outcome["load"] = os.getloadavg()
        outcomes.append((name, outcome))
    return outcomes


def _paced_messages(args: argparse.Namespace) -> int:
    return int(args.rate * args.paced_seconds) if args.rate else 0


def _stop(server: subprocess.Popen[bytes] | None) -> None:
    if server is not None and server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


async def mllp(args: argparse.Namespace) -> tuple[float, float]:
    """The MLLP part on a scratch database of the server at `args.url`, then the bare ceiling under the same
    load: (messages/s, ACK p99 in ms) of the listener."""
    from benchmarks.scratch import scratch_platform

    from cityhealth.db.admin import drop_database
    from cityhealth.db.cli import upgrade

    raise_fd_limit()
    made = await scratch_platform(args.url, "telemed")
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, made.settings)
        await _seed(made.settings, args.residents, args.senders)
        port = free_port()
        log = (made.workdir / "listener.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
            [str(Path(sys.executable).parent / "cityhealth"), "telemed", "mllp", "--port", str(port),
             "--max-batch", str(args.max_batch), "--processes", str(args.processes),
             *(["--batch-interval-ms", str(args.batch_interval_ms)] if args.batch_interval_ms is not None else [])],
            env=made.env, stdout=log, stderr=log, start_new_session=True,
        )
        print(
            f"mllp: {args.messages} ORU^R01 ({args.observations} OBX each) from {args.senders} lab systems, "
            f"one connection each, every message awaiting its ACK; {args.residents} residents in the index; "
            f"{args.processes} listener processes",
            flush=True,
        )
        outcomes = await _measured_load(args, made.workdir, port, server, (args.url, made.name))
        _stop(server)
        server = None
        figures = [_report(f"mllp, {name}", outcome) for name, outcome in outcomes]
        _check_stored(args, await _stored(made.url))
        if args.bare:
            await _bare(args, made.workdir)
        return figures[-1]  # paced at the offered rate when there is one: the goal's figures
    finally:
        _stop(server)
        if args.keep:
            print(f"kept database {made.name}")
        else:
            await drop_database(args.url, made.name)


async def _bare(args: argparse.Namespace, workdir: Path) -> None:
    """The ceiling in the same run: the same load against benchmarks/mllp_bare.py (ACK at once, nothing stored)."""
    port = free_port()
    bare = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(Path(__file__).with_name("mllp_bare.py")), str(port), str(args.processes)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        outcomes = await _measured_load(args, workdir, port, bare, None)
    finally:
        _stop(bare)
    for name, outcome in outcomes:
        _report(f"bare, {name}", outcome)


def _report(label: str, outcome: dict[str, Any]) -> tuple[float, float]:
    latencies = sorted(outcome["latencies"])
    wall, cpu, load = outcome["wall_s"], outcome["cpu"], outcome["load"]
    rate = len(latencies) / wall
    p50, p95, p99 = (percentile(latencies, share) * 1000 for share in (0.5, 0.95, 0.99))
    print(
        f"{label}: {len(latencies)} ACKs in {wall:.2f} s ({outcome['codes']}); {rate:.0f} messages/s "
        f"(goal >= {GOAL_MSGS_PER_S}); ACK p50={p50:.1f} ms p95={p95:.1f} ms p99={p99:.1f} ms (goal <= {GOAL_P99_MS})"
    )
    total = sum(cpu.values()) / len(latencies)
    cores = os.cpu_count() or 1
    print(
        f"{label}: cpu µs per message: "
        + ", ".join(f"{k}={v / len(latencies) * 1e6:.0f}" for k, v in cpu.items())
        + f"; total={total * 1e6:.0f} -> at most {cores / total:.0f} messages/s on {cores} idle cores"
    )
    print(f"{label}: cores={cores} loadavg={load[0]:.2f},{load[1]:.2f},{load[2]:.2f} (1, 5, 15 min; shared)")
    if "probe" in outcome:
        print(f"{label}: {outcome['probe']}")
    return rate, p99


def _check_stored(args: argparse.Namespace, stored: dict[str, int]) -> None:
    warm = args.senders * 20
    expected = args.messages + warm + _paced_messages(args)
    print(
        f"mllp: in the database {stored} (sent {expected - warm} + {warm} warm-up; each message stored once, "
        f"one report each, each credited to its lab's month)"
    )
    if not stored["accepted"] == stored["reports"] == stored["credited"] == expected:
        print(f"mllp: MISMATCH: {expected} sent, {stored['accepted']} accepted, {stored['reports']} reports, "
              f"{stored['credited']} credited to the senders' month")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("CITYHEALTH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server the scratch database is made on",
    )
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--senders", type=int, default=24, help="lab systems, one MLLP connection each")
    parser.add_argument(
        "--rate", type=float, default=GOAL_MSGS_PER_S * 1.2,
        help="messages/s the lab systems offer together in the paced load (0: back to back only)",
    )
    parser.add_argument("--paced-seconds", type=float, default=12.0, help="length of the paced load")
    parser.add_argument("--observations", type=int, default=6, help="OBX segments per message")
    parser.add_argument("--residents", type=int, default=5_000)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--batch-interval-ms", type=float, default=None,
                        help="the listener's pause between a process's transactions (default: the listener's own)")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="listener processes sharing the port"
    )
    parser.add_argument("--no-bare", dest="bare", action="store_false", help="skip the bare MLLP ceiling")
    parser.add_argument("--no-claims", dest="claims", action="store_false", help="skip the claim race")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    add_claim_arguments(parser)
    args = parser.parse_args()
    machine_speed()
    rate, p99 = asyncio.run(mllp(args))
    double = asyncio.run(claim_race(args)) if args.claims else -1
    print(f"mllp_msgs_per_s={rate:.0f} ack_p99_ms={p99:.1f} double_claims={double}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].endswith(".json"):
        loadgen_main(sys.argv[1], sys.argv[2])
    else:
        main()
