"""The start-up heap frozen out of full collections, and what a serving process still collects after it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from cityhealth import cli, heap, observability


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap thawed again afterwards (the suite is one process: freezing it would keep
    every later test's cycles among today's objects)."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_the_objects_alive_at_start_up_leave_the_collected_generations(unfrozen: None) -> None:
    kept = [_Node() for _ in range(1_000)]
    heap.freeze_startup()
    assert gc.get_freeze_count() >= len(kept)
    walked = {id(thing) for thing in gc.get_objects()}  # what a full collection would walk
    assert not any(id(node) in walked for node in kept)
    later = _Node()
    assert id(later) in {id(thing) for thing in gc.get_objects()}


def test_a_cycle_made_after_the_freeze_is_still_collected(unfrozen: None) -> None:
    heap.freeze_startup()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    gc.collect()
    assert gone() is None


def test_the_served_app_freezes_its_start_up_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(heap, "freeze_startup", lambda: frozen.append(True))
    # The server process's logging setup replaces the root handlers: not this test process's.
    monkeypatch.setattr(observability, "configure_logging", lambda level: None)
    app = cli.served_app()
    assert frozen == [True]
    assert app.title == "cityhealth"
