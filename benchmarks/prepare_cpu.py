"""CPU per record of the upload paths' shared preparation, in process, with no database.

Two modes, both on records made by the package's examples:
- `bulk`: what a prepare process does with a chunk (workers.prepare_chunk: the NDJSON lines parsed,
  validated, canonicalised, hashed, encoded as binary COPY rows, rejected rows masked), and the pickling of
  its answer, as the pool sends it back. The forms are the bulk benchmark's mix (collection_ingest.MIX),
  with its share of invalid records, in chunks of --chunk lines, the garbage collector off as in a prepare
  process.
- `realtime`: a machine client's 100-record `outpatient_visit` body parsed (uploads.parse_batch) and
  prepared (prepare.prepare), as the real-time path does before its transaction (the garbage collector on,
  as in the server process).

It prints process CPU per record (min over --rounds) and the core count. With --callgrind, run it under
`valgrind --tool=callgrind --instr-atstart=no`: instructions are counted only in the measured rounds, and
the last line gives the count to divide (callgrind_annotate prints it).

Last line: cpu_us_per_record=N
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collection_ingest import INVALID_SHARE, MIX

from cityhealth.clock import SystemClock
from cityhealth.collection import workers
from cityhealth.collection.examples import make_record
from cityhealth.collection.prepare import Collector, prepare
from cityhealth.collection.standard import load_standard
from cityhealth.collection.uploads import parse_batch
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.config import Environment, Settings


def _callgrind(wanted: bool, state: str) -> None:
    if wanted:
        command = ["callgrind_control", "-i", state, str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603


def bulk_blobs(records: int, chunk: int, seed: int = 7) -> list[tuple[bytes, int]]:
    """The benchmark's mix as NDJSON chunks: (lines, first line number)."""
    rng = random.Random(seed)
    forms, weights = list(MIX), list(MIX.values())
    base = SystemClock().now() - timedelta(hours=6)
    lines: list[bytes] = []
    for i in range(records):
        form = rng.choices(forms, weights)[0]
        record = make_record(form, "H0001", f"{form[:3]}-{i}", base + timedelta(seconds=i % 18000))
        if rng.random() < INVALID_SHARE:
            record["action"] = 7
        lines.append(orjson.dumps({"form": form, **record}))
    return [(b"\n".join(lines[i : i + chunk]), i + 1) for i in range(0, records, chunk)]


def realtime_bodies(batches: int, size: int) -> list[bytes]:
    base = SystemClock().now() - timedelta(hours=2)
    return [
        orjson.dumps(
            [make_record("outpatient_visit", "H0001", f"rt-{b}-{i}", base + timedelta(seconds=i)) for i in range(size)]
        )
        for b in range(batches)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("bulk", "realtime"))
    parser.add_argument("--records", type=int, default=50_000, help="records per round")
    parser.add_argument("--chunk", type=int, default=2_500, help="lines per bulk chunk")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true", help="count instructions of the rounds only")
    args = parser.parse_args()

    settings = Settings(environment=Environment.TEST)
    now = SystemClock().now()
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} mode={args.mode} records={args.records}")
    timings: list[float] = []
    if args.mode == "bulk":
        workers._worker["collector"] = Collector(settings)
        workers._worker["validators"] = {}
        gc.disable()  # as a prepare process runs (workers._start), without its lower priority
        blobs = bulk_blobs(args.records, args.chunk)
        tasks = [workers.ChunkTask(blob, first, None, now, (), {}, copy_rows=True) for blob, first in blobs]
        pickle.dumps(workers.prepare_chunk(tasks[0]))  # warm up: validators built, caches filled
        for _ in range(args.rounds):
            _callgrind(args.callgrind, "on")
            start = time.process_time()
            for task in tasks:
                pickle.dumps(workers.prepare_chunk(task), protocol=pickle.HIGHEST_PROTOCOL)
            timings.append(time.process_time() - start)
            _callgrind(args.callgrind, "off")
    else:
        collector = Collector(settings)
        standard = load_standard()
        validators = {code: FormValidator(form, standard, {}) for code, form in standard.forms.items()}
        bodies = realtime_bodies(max(1, args.records // 100), 100)
        prepare(collector, validators, parse_batch(bodies[0], "application/json", "outpatient_visit"), now)
        for _ in range(args.rounds):
            _callgrind(args.callgrind, "on")
            start = time.process_time()
            for body in bodies:
                prepare(collector, validators, parse_batch(body, "application/json", "outpatient_visit"), now)
            timings.append(time.process_time() - start)
            _callgrind(args.callgrind, "off")
    per_record = [t / args.records * 1e6 for t in timings]
    print("rounds µs/record:", " ".join(f"{v:.2f}" for v in per_record))
    print(f"load={os.getloadavg()[0]:.2f}")
    print(f"cpu_us_per_record={min(per_record):.2f}")


if __name__ == "__main__":
    main()
