"""Bulk preparation in worker processes: the NDJSON lines of a chunk parsed, validated, hashed and serialised
on another core while the server process writes the previous chunk.

Preparing is pure CPU (prepare.py) and holds the interpreter lock throughout, so a thread would not help; a
process does. The server process still reads the spool, decides each record against the stored state and
writes, all in the chunk's transaction: the worker only turns lines into candidates and rejections, as
prepare() does in-process. What crosses the pipe is a chunk's lines one way and columns of plain values back
(the parsed records only for the forms whose counters need their fields, and for rejected rows).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, overload

from cityhealth.collection.prepare import Candidate, Collector, InputRow, PreparedBatch, prepare
from cityhealth.collection.rules import RecordError
from cityhealth.collection.spool import ndjson_rows
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.config import Settings

_WORKER_NICENESS = 10
_worker: dict[str, Any] = {}  # in a worker process: its Collector, and validators per code-table generation


@dataclass(frozen=True)
class ChunkTask:
    """A chunk of a job's spool for a worker: its lines, numbered from `first_line`."""

    blob: bytes
    first_line: int
    default_form: str | None
    received_at: datetime
    generations: tuple[tuple[str, int], ...]
    loaded: dict[str, dict[str, str]]


@dataclass(frozen=True)
class PreparedColumns:
    """A prepared chunk as plain columns (cheap to pickle), one entry per candidate."""

    positions: list[int]
    indexes: list[int]
    forms: list[str]
    records: list[dict[str, Any] | None]
    record_ids: list[str]
    org_codes: list[str]
    actions: list[int]
    event_times: list[datetime]
    event_months: list[int]
    on_time: list[bool]
    digests: list[str]
    payloads: list[str]
    rejected: dict[int, tuple[str | None, list[RecordError], dict[str, Any] | None]]


def _start(settings: Settings) -> None:
    # Below the server's priority: with a worker busy on every core, the process answering requests must
    # still get a core when a request arrives (without this, 100-180 ms stalls of its loop were seen).
    os.nice(_WORKER_NICENESS)
    _worker["collector"] = Collector(settings)
    _worker["validators"] = {}
    # A worker holds nothing between chunks; a chunk's records are acyclic and freed when it returns. The
    # collector would only walk them again and again while they are built (see prepare.gc_paused).
    gc.collect()
    gc.freeze()
    gc.disable()


def _validators(task: ChunkTask) -> dict[str, FormValidator]:
    cache: dict[tuple[tuple[str, int], ...], dict[str, FormValidator]] = _worker["validators"]
    if task.generations not in cache:
        cache.clear()
        standard = load_standard()
        cache[task.generations] = {
            code: FormValidator(form, standard, task.loaded) for code, form in standard.forms.items()
        }
    return cache[task.generations]


def prepare_chunk(task: ChunkTask) -> PreparedColumns:
    """Run in a worker: prepare() over a chunk's lines, returned as columns."""
    collector: Collector = _worker["collector"]
    gc.collect(0)  # anything cyclic the last chunk left; its records are gone, so there is little to walk
    rows = list(ndjson_rows([task.blob], task.default_form, start=task.first_line))
    prepared = prepare(collector, _validators(task), rows, task.received_at)
    candidates = prepared.candidates

    def column(name: str) -> list[Any]:
        return list(map(attrgetter(name), candidates))

    return PreparedColumns(
        positions=list(map(attrgetter("position"), rows)),
        indexes=column("index"),
        forms=column("form.code"),
        # The records themselves only where counting needs their fields (workload, public health).
        records=[c.record if c.form.kind != "realtime" else None for c in candidates],
        record_ids=column("record_id"),
        org_codes=column("org_code"),
        actions=column("action"),
        event_times=column("event_time"),
        event_months=column("event_month"),
        on_time=column("on_time"),
        digests=column("digest"),
        payloads=column("payload"),
        rejected={index: (form, errors, rows[index].record) for index, (form, errors) in prepared.rejected.items()},
    )


class ChunkRows(Sequence[InputRow]):
    """A worker-prepared chunk's rows: positions, and the records of rejected rows.

    Enough for deciding and reporting; iterating parses the lines in-process (the chunk is then prepared
    again here, when a code table was reloaded while the worker had it).
    """

    def __init__(self, task: ChunkTask, columns: PreparedColumns) -> None:
        self._task = task
        self._positions = columns.positions
        self._rejected = columns.rejected
        self._parsed: list[InputRow] | None = None
        self._lines: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> InputRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[InputRow]: ...

    def __getitem__(self, index: int | slice) -> InputRow | Sequence[InputRow]:
        if isinstance(index, slice):
            return list(self)[index]
        if self._parsed is not None:
            return self._parsed[index]
        index = index % len(self._positions)
        rejected = self._rejected.get(index)
        if rejected is not None:
            return InputRow(self._positions[index], record=rejected[2], form=rejected[0])
        # A row rejected here rather than in the worker (another unit's code, an unknown original): its line
        # is read again for the rejected-rows download.
        if self._lines is None:
            self._lines = self._task.blob.split(b"\n")
        position = self._positions[index]
        line = self._lines[position - self._task.first_line]
        return next(ndjson_rows([line], self._task.default_form, start=position))

    @property
    def last_position(self) -> int:
        return self._positions[-1]

    def __iter__(self) -> Iterator[InputRow]:
        if self._parsed is None:
            task = self._task
            self._parsed = list(ndjson_rows([task.blob], task.default_form, start=task.first_line))
        return iter(self._parsed)


def as_prepared(
    task: ChunkTask, columns: PreparedColumns, validators: Mapping[str, FormValidator]
) -> tuple[ChunkRows, PreparedBatch]:
    """The worker's columns as the rows and prepared batch that ingest() takes."""
    forms = load_standard().forms
    candidates = [
        Candidate(index, forms[form], record or {}, rid, org, action, moment, month, on_time, digest, payload)
        for index, form, record, rid, org, action, moment, month, on_time, digest, payload in zip(
            columns.indexes,
            columns.forms,
            columns.records,
            columns.record_ids,
            columns.org_codes,
            columns.actions,
            columns.event_times,
            columns.event_months,
            columns.on_time,
            columns.digests,
            columns.payloads,
            strict=True,
        )
    ]
    rejected = {index: (form, errors) for index, (form, errors, _) in columns.rejected.items()}
    return ChunkRows(task, columns), PreparedBatch(validators, task.received_at, candidates, rejected)


class PreparePool:
    """Worker processes for bulk preparation, started on first use (one per core).

    One per core, not one per core beyond the server's: the server process spends most of a chunk waiting
    for the database, and preparing is the larger share of the work (measured on 2 cores, 500k records:
    one worker 48,500 records/s with that worker the bottleneck, two workers 59,200 records/s).
    """

    def __init__(self, settings: Settings, processes: int | None = None) -> None:
        self.settings = settings
        self.processes = processes if processes is not None else max(1, os.cpu_count() or 1)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # Spawned, not forked: the server process has threads and open connections a fork would copy.
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.settings,),
            )
        return self._executor

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def prepare(self, task: ChunkTask) -> PreparedColumns:
        executor = self._pool()
        try:
            return await asyncio.wrap_future(executor.submit(prepare_chunk, task))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this job fails and resumes later; the next gets a new pool.
            if self._executor is executor:
                self._executor = None
            raise

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
