"""Goal 6: the bulletin takes at most 2 s at any scale.

Times `cityhealth bulletin` end to end in a fresh process (interpreter start-up included, as an operator
sees it) for every edition, then the rendering alone in-process. By default it renders the Nanjing
scenario (`--scenario`); with `--database` it reads the configured database's aggregates for `--month`.

    .venv/bin/python benchmarks/bulletin.py [--scenario PATH | --database] [--month 2022-06]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 2.0
EDITIONS = ("json", "md", "html", "docx")
DEFAULT_SCENARIO = Path(__file__).resolve().parents[1].parent / "shared" / "scenarios" / "nanjing-2022-06.json"


def _cli(month: str, edition: str, scenario: Path | None, output: Path) -> float:
    command = [str(Path(sys.executable).with_name("cityhealth")), "bulletin", "--month", month, "--format", edition,
               "--output", str(output)]
    if scenario is not None:
        command += ["--scenario", str(scenario)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - our own CLI, fixed arguments
    return time.perf_counter() - started


def _in_process(scenario: Path) -> dict[str, float]:
    from cityhealth.reporting.model import BulletinData
    from cityhealth.reporting.service import Edition, render

    data = BulletinData.from_json(scenario.read_bytes())
    timings = {}
    for edition in EDITIONS:
        render(data, Edition(edition))  # warm: imports and font cache
        started = time.perf_counter()
        render(data, Edition(edition))
        timings[edition] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--database", action="store_true", help="read the configured database instead")
    parser.add_argument("--month", default="2022-06")
    arguments = parser.parse_args()
    scenario = None if arguments.database else arguments.scenario
    print(f"cores: {os.cpu_count()}  source: {'database' if scenario is None else scenario}")
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for edition in EDITIONS:
            elapsed = _cli(arguments.month, edition, scenario, Path(directory) / f"bulletin.{edition}")
            failed |= elapsed > GOAL_S
            print(f"cli {edition:5s} {elapsed:6.2f} s  {'ok' if elapsed <= GOAL_S else 'OVER GOAL'}")
    if scenario is not None:
        for edition, elapsed in _in_process(scenario).items():
            print(f"render {edition:5s} {elapsed * 1000:7.1f} ms (warm, in-process)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
