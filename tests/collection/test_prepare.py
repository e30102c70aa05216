"""Batch preparation outside the database: the garbage collector's pauses, and the prepare processes' priority."""

from __future__ import annotations

import gc
import os
from datetime import timedelta

import orjson
import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.collection.prepare import Collector, InputRow, gc_paused, prepare, prepare_columns
from cityhealth.collection.rules import make_error
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.collection.workers import ChunkTask, PreparePool
from cityhealth.config import Settings
from tests.factories.collection import make_record


def test_gc_pauses_nest_and_the_collector_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause ending (one job of two) does not resume it
    assert gc.isenabled()


async def test_prepare_processes_run_at_the_configured_lower_priority(
    settings: Settings, clock: SimulatedClock
) -> None:
    wanted = max(os.getpriority(os.PRIO_PROCESS, 0), 7)
    pool = PreparePool(settings.model_copy(update={"worker_nice": 7}), processes=1)
    try:
        prepared = await pool.prepare(ChunkTask(b"\n", 1, None, clock.now(), (), {}))
        assert prepared.positions == []
        processes = pool._pool()._processes  # the pool's own processes are what is checked
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in processes] == [wanted]
    finally:
        pool.close()


def _rows(clock: SimulatedClock, forms: list[str]) -> list[InputRow]:
    now = clock.now()
    rows = [InputRow(i + 1, make_record(form, "H0001", f"r-{i}", now - timedelta(hours=2)), form)
            for i, form in enumerate(forms)]
    rows[1].record["action"] = "9"  # type: ignore[index]  # a rejected row
    rows.append(InputRow(len(rows) + 1, None, forms[0], make_error("json.malformed", "record", detail="x")))
    rows.append(InputRow(len(rows) + 1, {"record_id": "z"}, "no_such_form"))
    return rows


@pytest.mark.parametrize(
    "forms",
    [
        ["outpatient_visit"] * 6,  # a real-time batch: one form
        ["outpatient_visit", "health_record", "outpatient_visit", "hypertension_followup", "health_record"],
    ],
)
def test_the_real_time_preparation_gives_the_candidates_the_columns_give(
    settings: Settings, clock: SimulatedClock, forms: list[str]
) -> None:
    collector = Collector(settings)
    standard = load_standard()
    validators = {code: FormValidator(form, standard, {}) for code, form in standard.forms.items()}
    now = clock.now()
    direct = prepare(collector, validators, _rows(clock, forms), now)
    rows = _rows(clock, forms)
    columns = prepare_columns(
        collector,
        validators,
        [row.form for row in rows],
        [None if row.error is not None else row.record for row in rows],
        {index: row.error for index, row in enumerate(rows) if row.error is not None},
        now,
    ).batch(validators, now)
    assert direct.rejected == columns.rejected
    assert sorted(direct.rejected) == [1, len(forms), len(forms) + 1]
    assert len(direct.candidates) == len(forms) - 1
    for mine, theirs in zip(direct.candidates, columns.candidates, strict=True):
        payload = mine.payload
        # Kept as the canonical bytes, unless the form's personal fields are sealed (then text, as before).
        assert isinstance(payload, bytes) == (mine.form.code not in collector.sensitive)
        text = payload.decode() if isinstance(payload, bytes) else payload
        if isinstance(payload, bytes):
            assert text == theirs.payload
            assert mine.digest == collector.payload_hash(orjson.loads(payload))
        else:  # sealed fields carry a fresh nonce each time: compare what they seal around
            assert orjson.loads(text).keys() == orjson.loads(theirs.payload).keys()
        mine.payload = theirs.payload
        assert mine == theirs
