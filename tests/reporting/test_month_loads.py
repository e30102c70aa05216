"""Months being loaded: progress recorded step by step, retries harmless, a partial month's bulletin refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.cli import app
from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.reporting import month_loads

runner = CliRunner()


async def test_a_load_advances_to_99_percent_and_reaches_100_only_when_completed(
        database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        started = await month_loads.start(session, clock, "2022-06", "a simulation", 30)
        assert (started.done, started.percent, started.is_complete) == (0, 0, False)
        clock.advance(timedelta(minutes=1))
        assert (await month_loads.advance(session, clock, "2022-06", 10)).percent == 33
        last = await month_loads.advance(session, clock, "2022-06", 30)
        assert (last.percent, last.is_complete, last.updated_at) == (99, False, clock.now())
        done = await month_loads.complete(session, clock, "2022-06")
    assert (done.percent, done.is_complete, done.completed_at, done.started_at) == (
        100, True, clock.now(), clock.now() - timedelta(minutes=1))


async def test_a_retried_step_never_moves_the_progress_back(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, clock, "2022-06", "a simulation", 30)
        await month_loads.advance(session, clock, "2022-06", 12)
        assert (await month_loads.advance(session, clock, "2022-06", 11)).done == 12
        first = await month_loads.complete(session, clock, "2022-06")
        clock.advance(timedelta(hours=1))
        again = await month_loads.complete(session, clock, "2022-06")
    assert again.completed_at == first.completed_at


async def test_a_load_of_no_steps_is_refused(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        with pytest.raises(ValidationFailed) as caught:
            await month_loads.start(session, clock, "2022-06", "a simulation", 0)
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("total", 0, "month_load.total")


@pytest.mark.parametrize("done", [31, -1])
async def test_steps_outside_the_load_are_refused(database: Database, clock: SimulatedClock, done: int) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, clock, "2022-06", "a simulation", 30)
        with pytest.raises(ValidationFailed) as caught:
            await month_loads.advance(session, clock, "2022-06", done)
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("done", done, "month_load.done")


async def test_a_completed_month_is_not_started_or_advanced_again(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, clock, "2022-06", "a simulation", 30)
        await month_loads.complete(session, clock, "2022-06")
        with pytest.raises(Conflict) as started:
            await month_loads.start(session, clock, "2022-06", "another", 30)
        with pytest.raises(Conflict) as advanced:
            await month_loads.advance(session, clock, "2022-06", 3)
    assert started.value.code == advanced.value.code == "month_already_loaded"


async def test_a_stopped_load_starts_again_from_zero(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, clock, "2022-06", "first run", 30)
        await month_loads.advance(session, clock, "2022-06", 9)
        failed = await month_loads.fail(session, clock, "2022-06", "x" * 600)
        assert failed.failure == "x" * 500
        assert [load.month for load in await month_loads.unfinished(session)] == ["2022-06"]
        again = await month_loads.start(session, clock, "2022-06", "second run", 30)
    assert (again.done, again.failure, again.source) == (0, None, "second run")


async def test_advancing_a_month_never_started_is_refused(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        with pytest.raises(ValidationFailed) as caught:
            await month_loads.advance(session, clock, "2022-07", 1)
    assert (caught.value.field, caught.value.value, caught.value.rule) == ("month", "2022-07", "month_load.started")


async def test_only_unfinished_loads_are_listed_oldest_month_first(database: Database, clock: SimulatedClock) -> None:
    async with database.transaction() as session:
        for month in ("2022-08", "2022-06", "2022-07"):
            await month_loads.start(session, clock, month, "a simulation", 30)
        await month_loads.complete(session, clock, "2022-07")
        assert [load.month for load in await month_loads.unfinished(session)] == ["2022-06", "2022-08"]


def test_the_bulletin_command_refuses_a_month_still_being_loaded(
        clock: SimulatedClock, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def loading() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                await month_loads.start(session, clock, "2022-06", "simulation of the demo month", 30)
                await month_loads.advance(session, clock, "2022-06", 15)
        finally:
            await database.dispose()

    asyncio.run(loading())
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    output = tmp_path / "june.json"
    result = runner.invoke(app, ["bulletin", "--month", "2022-06", "--format", "json", "--output", str(output)])
    assert result.exit_code == 1
    assert "2022-06 is still being loaded by simulation of the demo month (50 % done)" in result.output
    assert not output.exists()
