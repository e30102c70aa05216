"""A scratch platform for the benchmarks that serve it: a database made on the server for the run, a working
directory, fresh keys, the environment `cityhealth serve` needs and the settings of the same platform."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhealth.config import Environment, Settings, generate_key, load_settings
from cityhealth.db.admin import create_database

_KEYS = ("field_encryption_key", "lookup_hmac_key", "token_signing_key")


@dataclass(frozen=True)
class Scratch:
    name: str  # the database's, for its backends' CPU and for dropping it afterwards
    url: str
    workdir: Path
    env: dict[str, str]  # this process's environment with the platform's
    settings: Settings


async def scratch_platform(server_url: str, label: str, **overrides: Any) -> Scratch:
    """A new database `ch_bench_<label>_<random>` on the server at `server_url`, and the platform around it
    (`overrides`: further settings, e.g. `server_worker_concurrency=0` for an app driven in process)."""
    name = f"ch_bench_{label}_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    workdir = Path(tempfile.mkdtemp(prefix=f"{label}-"))
    keys = {name: generate_key() for name in _KEYS}
    env = {**os.environ, **{f"CITYHEALTH_{key.upper()}": value for key, value in keys.items()},
           "CITYHEALTH_DATABASE_URL": url, "CITYHEALTH_VAR_DIR": str(workdir / "var"),
           "CITYHEALTH_ENV": Environment.DEVELOPMENT.value}
    return Scratch(name, url, workdir, env, load_settings(database_url=url, var_dir=workdir / "var",
                                                                  env=Environment.DEVELOPMENT, **keys, **overrides))
