"""A bulk chunk's database backend at the bulk job's CPU priority while it writes, and back afterwards."""

from __future__ import annotations

import os

import pytest

from cityhealth.collection import bulk_priority
from cityhealth.db.driver import pg_driver
from cityhealth.db.engine import Database


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/db", True),
        ("postgresql+asyncpg://postgres@localhost/db", True),
        ("postgresql+asyncpg://postgres@/db?host=/var/run/postgresql", True),
        ("postgresql+asyncpg://postgres@db.internal:5432/db", False),  # another machine: its pids are not ours
        ("sqlite:///cityhealth.sqlite", False),
    ],
)
def test_only_a_database_on_this_machine_has_its_backends_niced(url: str, local: bool) -> None:
    may = os.geteuid() == 0 or bulk_priority.resource.getrlimit(bulk_priority.resource.RLIMIT_NICE)[0] >= 20
    assert bulk_priority.may_lower(url, 10) == (local and may)
    assert not bulk_priority.may_lower(url, 0)


async def test_a_backend_runs_niced_for_the_block_and_is_put_back(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL backends only")
    async with database.transaction() as session:
        pid = (await pg_driver(session)).get_server_pid()
        if not bulk_priority._is_local_backend(pid) or not bulk_priority.may_lower("postgresql://@127.0.0.1/", 10):
            pytest.skip("the database is not on this machine, or priorities cannot be put back here")
        before = os.getpriority(os.PRIO_PROCESS, pid)
        async with bulk_priority.lowered(session, max(before, 10)):
            assert os.getpriority(os.PRIO_PROCESS, pid) == max(before, 10)
        assert os.getpriority(os.PRIO_PROCESS, pid) == before
        async with bulk_priority.lowered(session, None):
            assert os.getpriority(os.PRIO_PROCESS, pid) == before
