"""A slow disk, for the slow-disk drill (tests/drills/slow_disk.py, which mounts it): a FUSE filesystem that
passes everything through to a directory but holds each fsync for a delay the drill changes while it runs (the
milliseconds in a file outside the mount, read at every fsync).

Why fsync: the platform's SQLite commits with `synchronous=FULL` (db/engine.py), so every commit waits for an
fsync of its WAL and a checkpoint for one of the database file, while its writes land in the page cache. A disk
slow to the platform is a disk whose flush is slow. Device-mapper's delay target would do it in the kernel, but
is not in every kernel (not the development machine's), and cgroup I/O throttling misses buffered writes' flushes.

Through mfusepy (ctypes over Debian's libfuse3, which scripts/fuse-deps installs; it loads the library as it
is imported, so only this program imports it), as root, in a process of its own:
`python -m tests.drills.slowfs BACKING MOUNTPOINT DELAY_FILE`, in the foreground until unmounted.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import mfusepy

STAT_FIELDS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")
STATVFS_FIELDS = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
                  "f_flag", "f_namemax")


class Passthrough(mfusepy.Operations):  # type: ignore[misc]  # mfusepy has no type information
    """Every call passed on to the same path under `backing`; fsync (of a file or a directory) first held."""

    use_ns = True  # times in nanoseconds, as os.stat gives them

    def __init__(self, backing: str, delay_file: Path) -> None:
        self.backing = backing
        self.delay_file = delay_file

    def _real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _caller(self) -> tuple[int, int]:
        """The user and group of the process calling: what it creates is its own (PostgreSQL checks that its data
        directory is), though this filesystem, running as root, makes it."""
        uid, gid, _ = mfusepy.fuse_get_context()
        return uid, gid

    def _hold(self) -> None:
        time.sleep(float(self.delay_file.read_text()) / 1000)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        found = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
        return {**{name: getattr(found, name) for name in STAT_FIELDS}, "st_atime": found.st_atime_ns,
                "st_mtime": found.st_mtime_ns, "st_ctime": found.st_ctime_ns}

    def statfs(self, path: str) -> dict[str, int]:
        found = os.statvfs(self._real(path))
        return {name: getattr(found, name) for name in STATVFS_FIELDS}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def open(self, path: str, flags: int) -> int:
        return os.open(self._real(path), flags)

    def create(self, path: str, mode: int, fi: object = None) -> int:
        handle = os.open(self._real(path), os.O_RDWR | os.O_CREAT, mode)
        os.fchown(handle, *self._caller())
        return handle

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        os.truncate(fh if fh is not None else self._real(path), length)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self._hold()
        (os.fdatasync if datasync else os.fsync)(fh)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self._hold()
        directory = os.open(self._real(path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._real(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._real(old), self._real(new))
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        os.chown(self._real(path), *self._caller())
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path))
        else:
            os.utime(self._real(path), ns=times)
        return 0


if __name__ == "__main__":
    backing_dir, mountpoint, delay_path = sys.argv[1:4]
    # allow_other: a PostgreSQL cluster on it runs as the postgres user; the files' own modes still apply.
    mfusepy.FUSE(Passthrough(backing_dir, Path(delay_path)), mountpoint, foreground=True, nothreads=False,
                 fsname="drill-slowfs", allow_other=True, default_permissions=True)
