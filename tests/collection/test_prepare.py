"""Batch preparation outside the database: the garbage collector's pauses during bulk work."""

from __future__ import annotations

import gc

from cityhealth.collection.prepare import gc_paused


def test_gc_pauses_nest_and_the_collector_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause ending (one job of two) does not resume it
    assert gc.isenabled()
