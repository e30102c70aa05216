"""A throwaway PostgreSQL cluster that a drill starts, stops, kills, backs up and restores: its own directory, its
own port on 127.0.0.1, never the shared server. Made as scripts/with-postgres makes its fallback cluster (as
root, the server programs run as the `postgres` user, since initdb refuses root)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def server_programs() -> Path:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup)."""
    found = shutil.which("pg_config")
    if found:
        bindir = Path(subprocess.run([found, "--bindir"],  # noqa: S603 - the installed pg_config
                                     capture_output=True, text=True, check=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL's server programs are not installed (Debian: apt-get install postgresql)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _owner() -> tuple[list[str], int | None]:
    """The command prefix that runs a program as the cluster's owner, and that owner's uid (None: ourselves)."""
    if os.getuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            return ["runuser", "-u", name, "--"], pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to own the cluster")


@dataclass
class Cluster:
    """One data directory and its server; `archive` set: every finished WAL segment is copied there."""

    root: Path
    name: str = "data"
    port: int = field(default_factory=free_port)
    archive: Path | None = None

    @property
    def data(self) -> Path:
        return self.root / self.name

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int:
        """The running server's postmaster (its first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def _run(self, program: str, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix, _ = _owner()
        return subprocess.run([*prefix, str(server_programs() / program), *arguments],  # noqa: S603 - PostgreSQL's own
                              capture_output=True, text=True, check=check)

    def _own(self, path: Path) -> None:
        _, uid = _owner()
        if uid is not None:
            for place in (path, *path.rglob("*")):
                os.chown(place, uid, -1)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        settings = ["listen_addresses = '127.0.0.1'", "fsync = on", "wal_level = replica",
                    "max_wal_senders = 4"]
        if self.archive is not None:
            self.archive.mkdir(parents=True, exist_ok=True)
            self._own(self.archive)
            settings += ["archive_mode = on",
                         f"archive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / f"{self.name}.log"), "-w", "-t", "120",
                  "-o", f"-p {self.port} -k {self.root}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        return int(pid_file.read_text().split("\n", 1)[0])

    def kill(self) -> None:
        """SIGKILL the postmaster and every server process of this cluster (a crash, not a shutdown)."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)],  # noqa: S603, S607 - procps' pgrep, on PATH
                                  capture_output=True, text=True, check=False).stdout.split()
        for victim in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *map(int, children)]):
            time.sleep(0.05)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def base_backup(self, target: Path) -> None:
        """A base backup of the running cluster into `target` (plain format, the WAL it needs streamed in)."""
        target.mkdir(parents=True)
        self._own(target)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-D", str(target), "-X", "stream", "-c", "fast")

    def restored(self, backup: Path, name: str, recovery_target_time: str) -> Cluster:
        """A new cluster from `backup`, replaying archived WAL up to `recovery_target_time`, then promoted."""
        if self.archive is None:
            raise RuntimeError("point-in-time recovery needs the WAL archive")
        copy = Cluster(self.root, name)
        shutil.copytree(backup, copy.data)
        self._own(copy.data)
        os.chmod(copy.data, 0o700)
        with (copy.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"restore_command = 'cp {self.archive}/%f %p'\n"
                       f"recovery_target_time = '{recovery_target_time}'\n"
                       "recovery_target_action = 'promote'\n"
                       "archive_mode = off\n")
        (copy.data / "recovery.signal").touch()
        self._own(copy.data)
        return copy


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def workspace(prefix: str) -> Path:
    """A fresh directory for a drill's clusters, readable by their owner."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)  # noqa: S103 - the cluster's owner (not us, as root) must reach its directories
    return root
