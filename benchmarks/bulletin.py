"""Goal: the bulletin from a fresh CLI process in at most 2 s, for every edition, on a 0.01 month.

Times `cityhealth bulletin` end to end in a fresh process (interpreter start-up included, as an operator
sees it) for every edition, with the CPU seconds the process used beside the wall time (steadier than
wall time on a shared machine), then the rendering alone in-process.

Sources of the figures:
- default: the Nanjing scenario bundled with the simulator (`--scenario PATH` for another file);
- `--database`: the configured database (`CITYHEALTH_DATABASE_URL` / `CITYHEALTH_VAR_DIR`), which should
  hold a simulated month (`make demo` leaves a 0.01 one in `var/`);
- `--simulate SCALE`: a fresh SQLite database in a temporary directory, filled by `cityhealth simulate
  --scale SCALE` first (minutes at 0.01), then measured as `--database`.

    .venv/bin/python benchmarks/bulletin.py [--scenario PATH | --database | --simulate 0.01] [--month 2022-06]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

GOAL_S = 2.0
EDITIONS = ("json", "md", "html", "docx")
SCENARIO = "nanjing-2022-06"


def _bundled_scenario() -> Path:
    return Path(str(resources.files("cityhealth.simulation").joinpath("scenarios", f"{SCENARIO}.json")))


def _cityhealth() -> str:
    return str(Path(sys.executable).with_name("cityhealth"))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(month: str, edition: str, scenario: Path | None, output: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `cityhealth bulletin` process."""
    command = [_cityhealth(), "bulletin", "--month", month, "--format", edition, "--output", str(output)]
    if scenario is not None:
        command += ["--scenario", str(scenario)]
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)  # noqa: S603 - our own CLI
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cityhealth bulletin --format {edition} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed, _children_cpu_s() - cpu_before


def _simulate(scale: str, var_dir: Path, env: dict[str, str]) -> None:
    """A fresh SQLite database holding the scenario's month at `scale`."""
    for arguments in (["db", "upgrade"], ["registry", "load-reference", "nanjing"],
                      ["simulate", "--scenario", SCENARIO, "--scale", scale, "--seed", "1"]):
        print(f"preparing: cityhealth {' '.join(arguments)}", flush=True)
        subprocess.run([_cityhealth(), *arguments], check=True, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    print(f"prepared {var_dir}", flush=True)


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--scenario", type=Path, help="a scenario-format file (default: the bundled Nanjing one)")
    source.add_argument("--database", action="store_true", help="read the configured database")
    source.add_argument("--simulate", metavar="SCALE", help="simulate a month at SCALE into a temporary database")
    parser.add_argument("--month", default="2022-06")
    parser.add_argument("--repeat", type=int, default=1, help="runs per edition (the slowest is judged)")
    arguments = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as directory:
        scenario: Path | None = None
        if arguments.simulate:
            var_dir = Path(directory) / "var"
            env["CITYHEALTH_VAR_DIR"] = str(var_dir)
            env.pop("CITYHEALTH_DATABASE_URL", None)
            _simulate(arguments.simulate, var_dir, env)
            label = f"a fresh SQLite database holding a {arguments.simulate} month"
        elif arguments.database:
            label = f"the configured database ({env.get('CITYHEALTH_DATABASE_URL', 'sqlite under CITYHEALTH_VAR_DIR')})"
        else:
            scenario = arguments.scenario or _bundled_scenario()
            label = str(scenario)
        print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}  source: {label}")
        failed = False
        for edition in EDITIONS:
            runs = [_cli(arguments.month, edition, scenario, Path(directory) / f"bulletin.{edition}", env)
                    for _ in range(arguments.repeat)]
            wall, cpu = max(runs)
            failed |= wall > GOAL_S
            verdict = "ok" if wall <= GOAL_S else "OVER GOAL"
            print(f"cli {edition:5s} {wall:6.2f} s wall  {cpu:6.2f} s CPU  (goal {GOAL_S:.1f} s)  {verdict}")
    if scenario is not None:
        for edition, elapsed in _in_process(scenario).items():
            print(f"render {edition:5s} {elapsed * 1000:7.1f} ms (warm, in-process)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
