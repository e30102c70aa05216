"""The platform's group commit on its own: batches, per-item answers, failures, requeue, shutdown, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cityhealth.db.group_commit import Batch, GroupCommit, Requeue, ShutDown


class Recorder:
    """A decider that records each batch's items; it waits for `gate` before deciding, when one is set."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate

    async def decide(self, batch: Batch[int, str]) -> Sequence[str | BaseException]:
        if self.gate is not None:
            await self.gate.wait()
        items = batch.take()
        self.batches.append(items)
        return [f"done {item}" for item in items]


async def _queued(commit: GroupCommit[int, str], count: int) -> None:
    for _ in range(200):
        if commit.queued() >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{count} items did not queue")


async def test_items_submitted_together_form_one_batch_in_submission_order() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    recorder = Recorder()
    answers = await asyncio.gather(*(commit.submit("k", n, recorder.decide) for n in range(5)))
    assert answers == [f"done {n}" for n in range(5)]
    assert recorder.batches == [[0, 1, 2, 3, 4]]
    assert commit.idle


async def test_items_queued_during_a_batch_form_the_next_one() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    gate = asyncio.Event()
    recorder = Recorder(gate)
    first = asyncio.create_task(commit.submit("k", 0, recorder.decide))
    await asyncio.sleep(0.01)  # the leader waits at the gate with a batch not yet taken …
    gate.set()
    await first
    gate.clear()
    held = asyncio.create_task(commit.submit("k", 1, recorder.decide))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(commit.submit("k", n, recorder.decide)) for n in (2, 3)]
    await _queued(commit, 2)
    gate.set()
    assert await asyncio.gather(held, *later) == ["done 1", "done 2", "done 3"]
    # … and what queued while the batch waited joins it: it takes its items when it is ready for them.
    assert recorder.batches == [[0], [1, 2, 3]]


async def test_keys_have_their_own_queues_and_leaders() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    recorder = Recorder()
    await asyncio.gather(*(commit.submit(n % 2, n, recorder.decide) for n in range(6)))
    assert sorted(recorder.batches) == [[0, 2, 4], [1, 3, 5]]


async def test_a_batch_is_bounded_by_items_and_by_weight() -> None:
    commit: GroupCommit[int, str] = GroupCommit(max_items=3)
    recorder = Recorder()
    await asyncio.gather(*(commit.submit("k", n, recorder.decide) for n in range(7)))
    assert recorder.batches == [[0, 1, 2], [3, 4, 5], [6]]
    weighed: GroupCommit[int, str] = GroupCommit(max_weight=10)
    recorder = Recorder()
    await asyncio.gather(*(weighed.submit("k", n, recorder.decide, weight=w)
                           for n, w in enumerate([4, 4, 4, 20, 1])))
    assert recorder.batches == [[0, 1], [2], [3], [4]]  # an item heavier than the bound still goes, alone


async def test_a_trickle_of_items_waits_out_the_interval_and_goes_as_one_batch() -> None:
    interval = 0.2
    commit: GroupCommit[int, str] = GroupCommit(min_interval_s=interval)
    loop = asyncio.get_running_loop()
    gate = asyncio.Event()
    gate.set()
    starts: list[float] = []
    batches: list[list[int]] = []

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        starts.append(loop.time())
        batches.append(batch.take())  # taken at once: what comes during the batch is left for the next
        await gate.wait()
        return [f"done {item}" for item in batches[-1]]

    begun = loop.time()
    await commit.submit("k", 0, decide)
    assert starts[0] - begun < interval / 2  # an item that finds its key idle is decided at once
    gate.clear()
    leading = asyncio.create_task(commit.submit("k", 1, decide))
    await asyncio.sleep(0.01)
    trickle = []
    for n in range(2, 6):  # arriving one by one while that batch is under way
        trickle.append(asyncio.create_task(commit.submit("k", n, decide)))
        await asyncio.sleep(0.005)
    gate.set()
    assert await asyncio.gather(leading, *trickle) == [f"done {n}" for n in range(1, 6)]
    assert batches == [[0], [1], [2, 3, 4, 5]]
    assert starts[2] - starts[1] >= interval - 0.01  # less the timer's resolution
    assert commit.idle


async def test_a_full_queue_does_not_wait_out_the_interval() -> None:
    commit: GroupCommit[int, str] = GroupCommit(max_items=2, min_interval_s=60.0)
    recorder = Recorder()
    answers = await asyncio.wait_for(asyncio.gather(*(commit.submit("k", n, recorder.decide) for n in range(6))), 5)
    assert answers == [f"done {n}" for n in range(6)]
    assert recorder.batches == [[0, 1], [2, 3], [4, 5]]


async def test_each_item_gets_its_own_result_or_exception() -> None:
    commit: GroupCommit[int, str] = GroupCommit()

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        return [ValueError(f"odd {n}") if n % 2 else f"even {n}" for n in batch.take()]

    answers = await asyncio.gather(*(commit.submit("k", n, decide) for n in range(4)), return_exceptions=True)
    assert [str(a) for a in answers] == ["even 0", "odd 1", "even 2", "odd 3"]
    assert [type(a) for a in answers] == [str, ValueError, str, ValueError]


async def test_a_failing_batch_is_decided_again_item_by_item() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    batches: list[list[int]] = []

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        items = batch.take()
        batches.append(items)
        if 2 in items:  # the whole transaction fails on item 2
            raise RuntimeError("item 2 breaks the transaction")
        return [f"done {n}" for n in items]

    answers = await asyncio.gather(*(commit.submit("k", n, decide) for n in range(4)), return_exceptions=True)
    assert batches == [[0, 1, 2, 3], [0], [1], [2], [3]]
    assert answers[:2] == ["done 0", "done 1"]
    assert isinstance(answers[2], RuntimeError)
    assert answers[3] == "done 3"  # the failure answers only its own item


async def test_a_decider_that_answers_the_wrong_number_of_items_fails_them_all() -> None:
    commit: GroupCommit[int, str] = GroupCommit()

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        return ["one answer"] + [] * len(batch.take())

    answers = await asyncio.gather(*(commit.submit("k", n, decide) for n in range(2)), return_exceptions=True)
    assert all(isinstance(a, RuntimeError) and "2 items" in str(a) for a in answers)


async def test_requeued_items_go_back_to_the_head_of_the_queue() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    batches: list[list[int]] = []

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        items = batch.take()
        batches.append(items)
        if len(batches) == 1:
            return ["done 0", Requeue(), Requeue()]
        return [f"later {n}" for n in items]

    answers = await asyncio.gather(*(commit.submit("k", n, decide) for n in range(3)))
    assert answers == ["done 0", "later 1", "later 2"]
    assert batches == [[0, 1, 2], [1, 2]]


async def test_a_cancelled_waiter_is_skipped_and_the_others_are_decided() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    gate = asyncio.Event()
    recorder = Recorder(gate)
    first = asyncio.create_task(commit.submit("k", 0, recorder.decide))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(commit.submit("k", 1, recorder.decide))
    kept = asyncio.create_task(commit.submit("k", 2, recorder.decide))
    await _queued(commit, 2)
    gone.cancel()
    gate.set()
    assert await asyncio.gather(first, kept) == ["done 0", "done 2"]
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert recorder.batches == [[0, 2]]  # the cancelled item was never decided


async def test_a_waiter_cancelled_inside_a_batch_does_not_stop_the_batch() -> None:
    commit: GroupCommit[int, str] = GroupCommit()
    taken = asyncio.Event()
    go_on = asyncio.Event()
    decided: list[int] = []

    async def decide(batch: Batch[int, str]) -> Sequence[str | BaseException]:
        items = batch.take()
        taken.set()
        await go_on.wait()
        decided.extend(items)
        return [f"done {n}" for n in items]

    gone = asyncio.create_task(commit.submit("k", 0, decide))
    kept = asyncio.create_task(commit.submit("k", 1, decide))
    await taken.wait()
    gone.cancel()
    go_on.set()
    assert await kept == "done 1"
    assert decided == [0, 1]  # the leader is not the waiter's task: its batch went on
    assert commit.idle


async def test_close_decides_what_is_queued_then_refuses_new_items() -> None:
    commit: GroupCommit[int, str] = GroupCommit(max_items=2)
    gate = asyncio.Event()
    recorder = Recorder(gate)
    tasks = [asyncio.create_task(commit.submit("k", n, recorder.decide)) for n in range(5)]
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(commit.close(timeout_s=5))
    await asyncio.sleep(0.01)
    gate.set()
    await closing
    assert await asyncio.gather(*tasks) == [f"done {n}" for n in range(5)]
    assert commit.idle
    with pytest.raises(ShutDown):
        await commit.submit("k", 9, recorder.decide)


async def test_close_cancels_a_leader_that_does_not_finish_and_answers_its_items() -> None:
    commit: GroupCommit[int, str] = GroupCommit(max_items=1)
    recorder = Recorder(asyncio.Event())  # never set: the batch hangs
    tasks = [asyncio.create_task(commit.submit("k", n, recorder.decide)) for n in range(3)]
    await asyncio.sleep(0.01)
    await commit.close(timeout_s=0.05)
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(a, ShutDown) for a in answers)  # in the batch, and still queued
    assert commit.idle
