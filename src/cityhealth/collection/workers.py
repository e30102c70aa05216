"""Bulk preparation in worker processes: the NDJSON lines of a chunk parsed, validated, hashed and serialised
on another core while the server process writes the previous chunk.

Preparing is pure CPU (prepare.py) and holds the interpreter lock throughout, so a thread would not help; a
process does. The server process still reads the spool, decides each record against the stored state and
writes, all in the chunk's transaction: the worker only turns lines into candidates and rejections, as
prepare() does in-process. What crosses the pipe is a chunk's lines one way and columns of plain values back
(the parsed records only for the forms whose counters need their fields, rejected rows already masked, and on
PostgreSQL each record's binary COPY row as it is stored if it is new: copy_rows.py).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from cityhealth.collection.lines import ParsedLines, ndjson_rows, parse_lines
from cityhealth.collection.prepare import Collector, InputRow, PreparedColumns, prepare_columns
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.findings import masked_row
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.config import Settings

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
    copy_rows: bool = False  # encode new records' rows for binary COPY (PostgreSQL)


@dataclass(frozen=True)
class PreparedChunk:
    """What a worker sends back: the rows' line numbers, the prepared columns, the rejected rows' records masked."""

    positions: list[int]
    columns: PreparedColumns
    rejected_records: dict[int, dict[str, Any] | None]  # as stored and shown back (findings.masked_row)


def _start(settings: Settings) -> None:
    # Below the server's priority: with a worker busy on every core, the process answering requests must
    # still get a core when a request arrives (without this, 100-180 ms stalls of its loop were seen). An
    # absolute value: a worker started by an already niced process does not add its own on top.
    os.setpriority(os.PRIO_PROCESS, 0, max(settings.worker_nice, os.getpriority(os.PRIO_PROCESS, 0)))
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


def _parsed(task: ChunkTask) -> ParsedLines:
    return parse_lines(task.blob.split(b"\n"), task.default_form, task.first_line)


def prepare_chunk(task: ChunkTask) -> PreparedChunk:
    """Run in a worker: a chunk's lines parsed and prepared, as columns (no row or candidate objects)."""
    collector: Collector = _worker["collector"]
    gc.collect(0)  # anything cyclic the last chunk left; its records are gone, so there is little to walk
    parsed = _parsed(task)
    columns = prepare_columns(
        collector,
        _validators(task),
        parsed.forms,
        parsed.records,
        parsed.errors,
        task.received_at,
        # The records themselves only where counting needs their fields (workload, public health).
        keep_records=False,
        copy_rows=task.copy_rows,
        # A new record's payload is inside its COPY row: sent twice, payloads were ~40 % of the bytes pickled back.
        payloads_of_new=False,
    )
    records = parsed.records
    # Masked here, on a niced core: walking every value of a rejected row costs 30-90 µs.
    return PreparedChunk(parsed.positions, columns, {index: masked_row(records[index]) for index in columns.rejected})


class ChunkRows(Sequence[InputRow]):
    """A worker-prepared chunk's rows: positions, and the records of rejected rows.

    Enough for deciding and reporting; iterating parses the lines in-process (the chunk is then prepared
    again here, when a code table was reloaded while the worker had it).
    """

    def __init__(self, task: ChunkTask, chunk: PreparedChunk) -> None:
        self._task = task
        self._positions = chunk.positions
        self._rejected = chunk.columns.rejected
        self._records = chunk.rejected_records
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
            return InputRow(self._positions[index], record=self._records.get(index), form=rejected[0], masked=True)
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

    async def prepare(self, task: ChunkTask) -> PreparedChunk:
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
