"""The month driven through the platform: any month round-trips; a platform that hangs, or a run cancelled,
ends the run with every client closed and the month recorded as partial."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from cityhealth.app import create_app
from cityhealth.clock import BUSINESS_TZ, SystemClock
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.reporting import month_loads
from cityhealth.simulation.actors import Actor, Operator, SimulationError
from cityhealth.simulation.driver import Simulation, announce
from cityhealth.simulation.plan import plan_month
from tests.reporting.expected import expected
from tests.simulation.scenarios import load, small
from tests.simulation.test_round_trip import _bulletin_json, assert_matches_expected

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class Hang:
    """Middleware: requests of `method` to paths under `prefix` are never answered."""

    def __init__(self, app: ASGI, *, method: str, prefix: str, reached: asyncio.Event) -> None:
        self.app, self.method, self.prefix, self.reached = app, method, prefix, reached

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope["method"] == self.method and scope["path"].startswith(self.prefix):
            self.reached.set()
            await asyncio.sleep(3600)
        await self.app(scope, receive, send)


def hanging(method: str, prefix: str, reached: asyncio.Event) -> Callable[..., FastAPI]:
    def factory(*args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(*args, **kwargs)
        app.add_middleware(Hang, method=method, prefix=prefix, reached=reached)  # type: ignore[arg-type]
        return app

    return factory


def tracked(simulation: Simulation) -> list[Actor]:
    """Every actor the simulation makes, kept after its pool has forgotten them."""
    made: list[Actor] = []
    add = simulation.actors.add

    def keep(actor: Any) -> Any:
        made.append(actor)
        return add(actor)

    simulation.actors.add = keep  # type: ignore[method-assign]
    return made


async def _load(settings: Settings, month: str) -> month_loads.MonthLoadRead | None:
    database = Database(settings.effective_database_url)
    try:
        async with database.transaction() as session:
            return await month_loads.get(session, month)
    finally:
        await database.dispose()


async def test_a_leap_february_round_trips_to_its_expected_bulletin(settings: Settings, tmp_path: Path) -> None:
    raw = small()
    scenario = load(raw, tmp_path)
    reported: list[tuple[str, int, int]] = []
    simulation = Simulation(create_app, settings, scenario, Decimal(1), seed=3,
                            progress=lambda *event: reported.append(event))
    made = tracked(simulation)
    result = await simulation.run()
    plan = plan_month(scenario, Decimal(1))
    assert result.uploaded == sum(unit.uploaded for unit in plan.units) == 740
    # Each day, the records sent so far of the month's, then the day: what a long run's progress line shows.
    assert [event for event in reported if event[0] == "month"] == [("month", day, 29) for day in range(1, 30)]
    sent = [done for phase, done, total in reported if phase == "records" and total == 740]
    assert len(sent) == 29
    assert sent == sorted(sent)
    assert sent[-1] == 740
    assert [phase for phase, _, _ in reported] == ["records", "month"] * 29
    assert result.bookings == plan.bookings_in_month == 75
    assert result.accepted_expected == plan.accepted_in_month
    bulletin = await _bulletin_json(settings.effective_database_url, "2024-02")
    assert_matches_expected(bulletin, expected(raw, Decimal(1)))
    # The scenario states no hotline, yet its phone bookings were made on calls at the desk: the month's hotline
    # figures are those calls alone, one per phone booking (what the scenario format derives for phone_booking).
    hotline = bulletin["hotline"]
    assert hotline["calls_by_category"] == {"consultation": 0, "complaint": 0, "phone_booking": 20,
                                            "manual_service": 0, "crisis_intervention": 0, "self_service_voice": 0}
    assert [(row["city"], row["calls"]) for row in hotline["calls_by_city"]] == [("320100", 20)]
    done = await _load(settings, "2024-02")
    assert done is not None
    assert (done.is_complete, done.percent, done.done, done.total, done.failure) == (True, 100, 29, 29, None)
    assert done.source == "simulation of a small city month at scale 1, seed 3"
    assert made
    assert all(actor.http.is_closed for actor in made)
    # Staff keep their sessions through the month: one login each (the per-address authentication limit is
    # far), their tokens refreshed as they expire.
    staff = [actor for actor in made if isinstance(actor, Operator)]
    assert [actor.logins for actor in staff if actor.logins or actor.refreshes] == [1] * len(
        [actor for actor in staff if actor.logins or actor.refreshes])
    assert result.staff_logins <= len(staff)
    assert sum(actor.refreshes for actor in staff) > 0


async def test_uploads_that_never_answer_time_out_and_every_client_is_closed(
        settings: Settings, tmp_path: Path) -> None:
    reached = asyncio.Event()
    simulation = Simulation(hanging("POST", "/api/collection/jobs", reached), settings, load(small(), tmp_path),
                            Decimal(1), seed=1, request_timeout_s=15)
    made = tracked(simulation)
    with pytest.raises(SimulationError) as caught:
        await simulation.run()
    assert caught.value.code == "simulation_timeout"
    assert "POST /api/collection/jobs did not answer within 15 s" in caught.value.message
    assert reached.is_set()
    assert len(made) >= 5  # the operator, the units, the hospital's scheduler, the apps
    assert all(actor.http.is_closed for actor in made)
    partial = await _load(settings, "2024-02")
    assert partial is not None
    assert not partial.is_complete
    assert partial.failure is not None
    assert "did not answer within 15 s" in partial.failure
    with pytest.raises(Conflict) as refused:
        month_loads.refuse_partial(partial)
    assert refused.value.code == "month_in_progress"


async def test_a_run_cancelled_mid_poll_closes_every_client_and_records_the_interruption(
        settings: Settings, tmp_path: Path) -> None:
    reached = asyncio.Event()
    simulation = Simulation(hanging("GET", "/api/collection/jobs/", reached), settings, load(small(), tmp_path),
                            Decimal(1), seed=1)
    made = tracked(simulation)
    task = asyncio.create_task(simulation.run())
    async with asyncio.timeout(120):
        await reached.wait()  # the first poll of a job is in flight, never to be answered
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made
    assert all(actor.http.is_closed for actor in made)
    partial = await _load(settings, "2024-02")
    assert partial is not None
    assert (partial.is_complete, partial.failure) == (False, "interrupted")


async def test_a_month_already_loaded_is_not_simulated_again(settings: Settings, database: Database,
                                                             tmp_path: Path) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, SystemClock(), "2024-02", "an earlier run", 29)
        await month_loads.complete(session, SystemClock(), "2024-02")
    simulation = Simulation(create_app, settings, load(small(), tmp_path), Decimal(1), seed=1)
    made = tracked(simulation)
    with pytest.raises(Conflict) as caught:
        await simulation.run()
    assert caught.value.code == "month_already_loaded"
    assert made == []  # nothing was driven


def test_announcing_records_the_month_at_zero_percent(settings: Settings, tmp_path: Path) -> None:
    announce(settings, load(small(), tmp_path), Decimal("0.5"), seed=9)
    recorded = asyncio.run(_load(settings, "2024-02"))
    assert recorded is not None
    assert (recorded.done, recorded.total, recorded.percent, recorded.is_complete) == (0, 29, 0, False)
    assert recorded.source == "simulation of a small city month at scale 0.5, seed 9"


def test_an_infeasible_scale_is_refused_before_anything_is_recorded(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        announce(settings, load(small(), tmp_path), Decimal("1.5"))
    assert caught.value.rule == "scale.range"
    assert asyncio.run(_load(settings, "2024-02")) is None


def test_the_simulator_refuses_to_run_in_production(settings: Settings, tmp_path: Path) -> None:
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(SimulationError) as caught:
        Simulation(create_app, production, load(small(), tmp_path), Decimal(1), seed=1)
    assert caught.value.code == "simulation_in_production"


def test_the_clock_starts_the_week_before_the_month_and_never_moves_back(settings: Settings, tmp_path: Path) -> None:
    simulation = Simulation(create_app, settings, load(small(), tmp_path), Decimal(1), seed=1)
    assert simulation.clock.now() == datetime(2024, 1, 25, tzinfo=BUSINESS_TZ)
    simulation.at(date(2024, 2, 3), 12)
    assert simulation.clock.now() == datetime(2024, 2, 3, 12, tzinfo=BUSINESS_TZ)
    simulation.at(date(2024, 2, 3), 9)  # the morning of a day already at noon: the clock stays
    assert simulation.clock.now() == datetime(2024, 2, 3, 12, tzinfo=BUSINESS_TZ)
    simulation.at(date(2024, 2, 4), 9, 30)
    assert simulation.clock.now() == datetime(2024, 2, 4, 9, 30, tzinfo=BUSINESS_TZ)


def test_each_machine_client_gets_its_own_source_address(settings: Settings, tmp_path: Path) -> None:
    simulation = Simulation(create_app, settings, load(small(), tmp_path), Decimal(1), seed=1)
    addresses = [simulation.next_address() for _ in range(3)]
    assert addresses == ["198.51.100.2", "198.51.100.3", "198.51.100.4"]  # .1 is the operator's
