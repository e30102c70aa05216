"""The admission gate: "sold out" only when no slot is left, never because every free slot is claimed."""

from __future__ import annotations

import asyncio

import pytest

from cityhealth.booking.availability import SlotGate
from cityhealth.booking.slots import sold_out
from cityhealth.errors import Conflict


def _sold_out() -> Conflict:
    return sold_out(1)


async def test_an_attempt_beyond_the_claims_waits_and_takes_a_slot_a_claimed_attempt_did_not() -> None:
    gate = SlotGate()
    first = await gate.admit(1, "online", 1, _sold_out, read_at=0.0)
    second = asyncio.create_task(gate.admit(1, "online", 1, _sold_out, read_at=0.0))
    await asyncio.sleep(0.01)
    assert not second.done()  # the only free slot is claimed: wait for that attempt's outcome
    gate.observe(1, "online", 1, 1.0)  # the claimed attempt lost (its resident's daily cap): still one left
    first.release()
    claim = await asyncio.wait_for(second, 1)
    claim.release()


async def test_waiting_attempts_are_refused_once_the_claimed_ones_took_every_slot() -> None:
    gate = SlotGate()
    claims = [await gate.admit(1, "online", 2, _sold_out, read_at=0.0) for _ in range(2)]
    waiting = [asyncio.create_task(gate.admit(1, "online", 2, _sold_out, read_at=0.0)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in waiting)
    gate.observe(1, "online", 0, 1.0)  # both won
    for claim in claims:
        claim.release()
    for task in waiting:
        with pytest.raises(Conflict):
            await asyncio.wait_for(task, 1)


async def test_no_slot_left_is_answered_at_once_and_channels_are_counted_apart() -> None:
    gate = SlotGate()
    with pytest.raises(Conflict):
        await gate.admit(1, "online", 0, _sold_out, read_at=0.0)
    held = await gate.admit(1, "online", 1, _sold_out, read_at=0.0)
    other = await asyncio.wait_for(gate.admit(1, "phone", 1, _sold_out, read_at=0.0), 1)
    held.release()
    held.release()  # given back once, however often released
    other.release()
    again = await asyncio.wait_for(gate.admit(1, "online", 1, _sold_out, read_at=0.0), 1)
    again.release()


async def test_an_older_read_does_not_overwrite_a_newer_outcome() -> None:
    gate = SlotGate()
    claim = await gate.admit(1, "online", 3, _sold_out, read_at=5.0)
    claim.release()
    gate.observe(1, "online", 0, 6.0)  # a batch took the last slot
    with pytest.raises(Conflict):
        await gate.admit(1, "online", 3, _sold_out, read_at=4.0)  # a read begun before it


async def test_waiting_attempts_are_admitted_first_come_first_and_only_as_many_as_slots_freed() -> None:
    gate = SlotGate()
    claims = [await gate.admit(1, "online", 2, _sold_out, read_at=0.0) for _ in range(2)]
    waiting = [asyncio.create_task(gate.admit(1, "online", 2, _sold_out, read_at=0.0)) for _ in range(3)]
    await asyncio.sleep(0.01)
    claims[0].release()  # lost to its resident's cap: one slot for the first waiter, none for the others
    await asyncio.sleep(0.01)
    assert [task.done() for task in waiting] == [True, False, False]
    late = asyncio.create_task(gate.admit(1, "online", 2, _sold_out, read_at=0.0))
    await asyncio.sleep(0.01)
    assert not late.done()  # it queues behind the earlier waiters even when a slot frees up for one of them
    gate.observe(1, "online", 1, 1.0)  # the other claimed attempt booked: one slot left, claimed by waiter 1
    claims[1].release()
    await asyncio.sleep(0.01)
    assert [task.done() for task in waiting] == [True, False, False]
    gate.observe(1, "online", 0, 2.0)  # the first waiter booked the last slot
    waiting[0].result().release()
    for task in [*waiting[1:], late]:
        with pytest.raises(Conflict):
            await asyncio.wait_for(task, 1)


async def test_a_waiting_attempt_cancelled_gives_its_turn_to_the_next() -> None:
    gate = SlotGate()
    claim = await gate.admit(1, "online", 1, _sold_out, read_at=0.0)
    gone = asyncio.create_task(gate.admit(1, "online", 1, _sold_out, read_at=0.0))
    nxt = asyncio.create_task(gate.admit(1, "online", 1, _sold_out, read_at=0.0))
    await asyncio.sleep(0.01)
    gone.cancel()
    claim.release()  # lost: its slot goes to the next waiter still there
    admitted = await asyncio.wait_for(nxt, 1)
    admitted.release()
    again = await asyncio.wait_for(gate.admit(1, "online", 1, _sold_out, read_at=0.0), 1)
    again.release()
