"""SQLite backup and restore through SQLite's online backup API, and the checks a copy must pass.

A backup is taken while the platform writes: the backup API reads the database inside one read transaction
(WAL readers never block the writer), so the copy is the database as of one commit, never a mix of two. The
copy is written beside its destination, checked (`PRAGMA integrity_check`, a migrated schema), made durable
and only then renamed into place, so a crash or a full disk leaves the old file or the new one, never half.

PostgreSQL is backed up by the server's own tools (a base backup plus the archived WAL): see
docs/reliability.md and benchmarks/drills.py, which scripts it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from cityhealth.db.schema import VERSION_TABLE

# SQLite's unix VFS: every connection that has the WAL index open holds a shared lock on this byte of the
# "-shm" file (its "dead man switch"), so a write lock on it can only be had when no process has the database open.
_SHM_DMS_BYTE = 128


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class CopyReport:
    """What a checked copy holds: its size, its schema revisions and its audit events."""

    path: Path
    size_bytes: int
    revisions: tuple[str, ...]
    audit_events: int


def sqlite_path(database_url: str) -> Path:
    """The file of a sqlite:/// URL; BackupError for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"`cityhealth db backup` and `restore` copy SQLite files; this database is {url.get_backend_name()}. "
            "Back up PostgreSQL with a base backup and WAL archiving (docs/reliability.md)."
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to back up")
    return Path(url.database)


def in_use(path: Path) -> bool:
    """Whether another process has the SQLite database at `path` open (a running server, a worker, a CLI)."""
    shm = Path(f"{path}-shm")
    if not shm.exists():
        return False
    descriptor = os.open(shm, os.O_RDWR)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
        return False
    finally:
        os.close(descriptor)


def check_copy(path: Path) -> CopyReport:
    """Refuse a file that is not a sound, migrated cityhealth database (BackupError naming the fault)."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened as SQLite: {exc}") from exc
    try:
        verdict = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if verdict != ["ok"]:
            raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(verdict[:5])}")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if VERSION_TABLE not in tables:
            raise BackupError(f"{path} is not a migrated cityhealth database (no {VERSION_TABLE} table)")
        revisions = tuple(sorted(row[0] for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")))  # noqa: S608
        events = 0
        if "audit_events" in tables:
            events = connection.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    finally:
        connection.close()
    return CopyReport(path, path.stat().st_size, revisions, int(events))


def _copy(source: Path, target: Path) -> CopyReport:
    """Copy `source` (possibly being written) to `target` through the backup API; checked, durable, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        writer = sqlite3.connect(partial)
        try:
            # All pages in one step: one read transaction, so one commit's state, however busy the writer is
            # (stepwise copies restart whenever another connection writes, and may never finish).
            reader.backup(writer, pages=-1)
            # The copy as one file, without a WAL beside it (the platform switches it back on when it opens it).
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
            reader.close()
        report = check_copy(partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"copying {source} to {target} failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return CopyReport(target, report.size_bytes, report.revisions, report.audit_events)


def backup(database: Path, destination: Path) -> CopyReport:
    """Back the SQLite database up to `destination` while it may be in use; the checked copy's report."""
    if not database.is_file():
        raise BackupError(f"there is no database at {database}")
    if destination.resolve() == database.resolve():
        raise BackupError("the backup's destination is the database itself")
    return _copy(database, destination)


def restore(copy: Path, database: Path, *, force: bool = False) -> CopyReport:
    """Replace the database at `database` with the backup `copy`, checked before and after.

    Refused while another process has the database open, unless `force` (that process then sees the old file
    it holds until it reopens: stop it first).
    """
    check_copy(copy)
    if database.exists() and in_use(database) and not force:
        raise BackupError(
            f"{database} is open in a running process (a server, a worker or a command); stop it first, "
            "or pass --force to replace the file under it"
        )
    report = _copy(copy, database)
    # The old database's WAL and index belong to the file just replaced; left beside the copy, SQLite would
    # replay that WAL into it.
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    return report
