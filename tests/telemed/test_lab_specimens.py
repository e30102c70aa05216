"""Specimen routing from OML^O21 and ORU^R01 over MLLP: collected -> shipped -> received -> reported, or rejected."""

from __future__ import annotations

import asyncio

import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.telemed import lab_service
from tests.telemed.lab_support import ack_code, ack_text, oml, oru, running_listener, send, wire

pytestmark = pytest.mark.asyncio
LAB = "GULOU-LAB"


async def _specimen(database: Database, number: str) -> tuple[str, str | None, list[tuple[str | None, str]]] | None:
    async with database.transaction() as session:
        found = await lab_service.specimen_state(session, LAB, number)
    if found is None:
        return None
    state, reason, steps = found
    return state, reason, [(step.from_state, step.to_state) for step in steps]


async def test_a_specimen_goes_collected_shipped_received_reported(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(
            port,
            wire(oml("O-1", "S-1", "collected")),
            wire(oml("O-2", "S-1", "shipped")),
            wire(oml("O-3", "S-1", "received")),
            wire(oru("R-1", [], specimen="S-1")),
        )
    assert [ack_code(a) for a in acks] == ["AA"] * 4, [ack_text(a) for a in acks]
    assert await _specimen(database, "S-1") == (
        "reported",
        None,
        [(None, "collected"), ("collected", "shipped"), ("shipped", "received"), ("received", "reported")],
    )


@pytest.mark.parametrize(
    ("steps", "refused", "state"),
    [
        (["collected", "received"], "received", "collected"),  # shipping skipped
        (["collected", "shipped", "received", "collected"], "collected", "received"),  # backwards
        (["shipped"], "shipped", None),  # never collected
    ],
)
async def test_an_illegal_step_is_refused_naming_the_state_and_the_step(
    database: Database, settings: Settings, clock: SimulatedClock, steps: list[str], refused: str, state: str | None
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(port, *(wire(oml(f"O-{n}", "S-2", step)) for n, step in enumerate(steps)))
    assert [ack_code(a) for a in acks] == ["AA"] * (len(steps) - 1) + ["AE"]
    text = ack_text(acks[-1])
    assert f"specimen S-2 is {state or 'not known here'}" in text
    assert f"step {refused!r} is not allowed" in text
    found = await _specimen(database, "S-2")
    assert (found[0] if found else None) == state  # the refused step moved nothing


async def test_a_rejected_specimen_keeps_its_reason_and_takes_no_further_step(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(
            port,
            wire(oml("O-1", "S-3", "collected")),
            wire(oml("O-2", "S-3", "shipped")),
            wire(oml("O-3", "S-3", "rejected", reason="标本溶血")),
            wire(oru("R-1", [], specimen="S-3")),
        )
    assert [ack_code(a) for a in acks] == ["AA", "AA", "AA", "AE"]
    assert "specimen S-3 is rejected: step 'reported' is not allowed from it" in ack_text(acks[-1])
    assert await _specimen(database, "S-3") == (
        "rejected",
        "标本溶血",
        [(None, "collected"), ("collected", "shipped"), ("shipped", "rejected")],
    )


async def test_a_result_for_a_specimen_never_announced_records_it_reported(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(port, wire(oru("R-1", [], specimen="S-4")), wire(oru("R-2", [], specimen="S-4")))
    assert [ack_code(a) for a in acks] == ["AA", "AA"]  # a corrected result again: nothing moves
    assert await _specimen(database, "S-4") == ("reported", None, [(None, "reported")])


async def test_steps_in_one_batch_are_checked_in_order(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    """Messages decided in one transaction see each other's steps; a refused one in the middle moves nothing."""
    listener_messages = [
        wire(oml("O-1", "S-5", "collected")),
        wire(oml("O-2", "S-5", "received")),
        wire(oml("O-3", "S-5", "shipped")),
    ]
    async with running_listener(database, settings, clock) as (listener, _):
        outcomes = [listener.decide(lab_service.receive(raw, clock)) for raw in listener_messages]
        decided = await asyncio.gather(*outcomes)
    assert [o.ack for o in decided] == ["AA", "AE", "AA"]
    assert (await _specimen(database, "S-5") or ("",))[0] == "shipped"
