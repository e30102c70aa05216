"""A spool's text as lines, blocks of lines and NDJSON rows: split exactly as bytes.split whatever the chunking,
each line capped, numbered by its place in the file.

Kept apart from the spool's storage (spool.py) so that a prepare process (workers.py) imports only this and the
validation, not the database layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

from cityhealth.collection.prepare import InputRow
from cityhealth.collection.rules import RecordError, make_error
from cityhealth.errors import PayloadTooLarge

_DICT: frozenset[type] = frozenset({dict})
_FORM_TYPES: frozenset[type] = frozenset({str, type(None)})  # parse_lines' forms: text, or None when not named


def too_large(limit: str, value: int, message: str, **detail: int) -> PayloadTooLarge:
    """413 naming the limit passed: its rule (`upload.<limit>`), its value and the setting that holds it."""
    setting = f"CITYHEALTH_UPLOAD_{limit.upper()}"
    text = f"{message}; the limit is {value} ({setting})"
    rule = f"upload.{limit}"
    return PayloadTooLarge(
        text,
        field="body",
        value=value,
        rule=rule,
        errors=[{"field": "body", "rule": rule, "message": text, "value": value, "setting": setting, **detail}],
    )


class LineSplitter:
    """Splits a stream of chunks into lines exactly as `b"".join(chunks).split(b"\n")`, in linear time.

    The unfinished line is kept as a list of its pieces and joined once, when its end arrives (re-joining it
    with every chunk made a long line cost the square of its length). With `max_line_bytes` a longer line
    is refused as soon as that many of its bytes are seen, so at most one limit's worth is ever held.
    """

    def __init__(self, max_line_bytes: int | None = None) -> None:
        self.max_line_bytes = max_line_bytes
        self.lines = 0  # lines completed so far
        self._pieces: list[bytes] = []
        self._pending = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines this chunk completes."""
        if b"\n" not in chunk:
            if chunk:
                self._pieces.append(chunk)
                self._pending += len(chunk)
                self._check(self._pending, 0)
            return []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if self._pieces:
            self._pieces.append(lines[0])
            lines[0] = b"".join(self._pieces)
        limit = self.max_line_bytes
        if limit is not None and max(map(len, lines)) > limit:
            index = next(i for i, line in enumerate(lines) if len(line) > limit)
            self._check(len(lines[index]), index)
        self.lines += len(lines)
        self._pieces = [tail] if tail else []
        self._pending = len(tail)
        self._check(self._pending, 0)
        return lines

    def check(self, chunk: bytes) -> None:
        """As feed(), for a stream whose lines are not wanted (an upload on its way to the spool): the lines
        are counted and the cap enforced, but none is built, unless a line of this chunk could pass the cap.

        The usual chunk (a network read, at most a MiB inflated) cannot hold a line longer than the 1 MiB cap:
        counting its newlines is one C pass, where splitting it made an object per record.
        """
        if self._pieces:  # feed() was used on this stream: it keeps the unfinished line's bytes
            self.feed(chunk)
            return
        limit = self.max_line_bytes
        if limit is not None and self._pending + len(chunk) > limit and b"\n" in chunk:
            lengths = [len(line) for line in chunk.split(b"\n")]
            lengths[0] += self._pending
            if max(lengths[:-1]) > limit:
                index = next(i for i, length in enumerate(lengths) if length > limit)
                self._check(lengths[index], index)
            self.lines += len(lengths) - 1
            self._pending = lengths[-1]
        else:
            last = chunk.rfind(b"\n")
            if last < 0:
                self._pending += len(chunk)
            else:
                self.lines += chunk.count(b"\n")
                self._pending = len(chunk) - last - 1
        self._check(self._pending, 0)

    def finish(self) -> list[bytes]:
        """The last line (empty when the stream ended with a newline, as split gives it)."""
        last = b"".join(self._pieces)
        self._pieces, self._pending = [], 0
        self.lines += 1
        return [last]

    def _check(self, length: int, index: int) -> None:
        if self.max_line_bytes is not None and length > self.max_line_bytes:
            number = self.lines + index + 1
            raise too_large(
                "max_line_bytes",
                self.max_line_bytes,
                f"line {number} is longer than a record may be",
                line=number,
            )


def lines_of(chunks: Iterable[bytes], max_line_bytes: int | None) -> Iterator[bytes]:
    """A spool's lines; a trailing newline ends the last line rather than starting an empty one."""
    for lines in _frame_lines(chunks, max_line_bytes):
        yield from lines


@dataclass(slots=True)
class ParsedLines:
    """NDJSON lines parsed as columns: each row's line number, form and record (None: `errors` says why)."""

    positions: list[int]
    forms: list[str | None]
    records: list[dict[str, Any] | None]
    errors: dict[int, RecordError]


def parse_lines(lines: Iterable[bytes], default_form: str | None, start: int = 1, after: int = 0) -> ParsedLines:
    """Parse NDJSON lines numbered from `start`: blank lines and lines up to `after` are skipped."""
    if start > after and isinstance(lines, list):
        parsed_at_once = _parse_objects(lines, default_form, start)
        if parsed_at_once is not None:
            return parsed_at_once
    parsed = ParsedLines([], [], [], {})
    add_position, add_form, add_record = parsed.positions.append, parsed.forms.append, parsed.records.append
    errors = parsed.errors
    loads = orjson.loads
    for number, line in enumerate(lines, start):
        if number <= after or not line or line.isspace():
            continue
        try:
            value = loads(line)
        except orjson.JSONDecodeError as exc:
            errors[len(parsed.positions)] = make_error("json.malformed", "record", detail=str(exc))
            value = None
        else:
            if type(value) is not dict:
                errors[len(parsed.positions)] = make_error(
                    "json.malformed", "record", detail="a JSON object is expected"
                )
                value = None
        add_position(number)
        if value is None:
            add_form(default_form)
            add_record(None)
            continue
        form = value.pop("form", default_form)
        add_form(form if isinstance(form, str) else None)
        add_record(value)
    return parsed


def _parse_objects(lines: list[bytes], default_form: str | None, start: int) -> ParsedLines | None:
    """parse_lines for the usual block: every line a JSON object, its form (if it names one) text. One C call per
    line and per column, no pass of Python per line; None when a line is blank, malformed, not an object, or
    names its form otherwise than as text (parse_lines then says which, line by line). Every line is after
    `after` (the caller's check), so none is skipped."""
    try:
        records = list(map(orjson.loads, lines))  # a blank or whitespace-only line is malformed JSON too
    except orjson.JSONDecodeError:
        return None
    if not records or set(map(type, records)) != _DICT:
        return None
    forms = list(map(dict.pop, records, repeat("form"), repeat(default_form)))
    if not set(map(type, forms)) <= _FORM_TYPES:
        return None  # (parse_lines parses the lines again: these records are dropped)
    return ParsedLines(list(range(start, start + len(lines))), forms, records, {})


def ndjson_rows(
    chunks: Iterable[bytes],
    default_form: str | None,
    after: int = 0,
    start: int = 1,
    *,
    max_line_bytes: int | None = None,
) -> Iterator[InputRow]:
    """Rows of an NDJSON spool; the position is the line number (the first line is `start`).

    Lines up to `after` are skipped; a line longer than `max_line_bytes` stops the reading (413).
    """
    splitter = LineSplitter(max_line_bytes)
    number = start
    for chunk in chunks:
        lines = splitter.feed(chunk)
        yield from _rows(parse_lines(lines, default_form, number, after))
        number += len(lines)
    last = splitter.finish()[0]
    if last:
        yield from _rows(parse_lines([last], default_form, number, after))


def _rows(parsed: ParsedLines) -> Iterator[InputRow]:
    errors = parsed.errors
    for index, (position, form, record) in enumerate(zip(parsed.positions, parsed.forms, parsed.records, strict=True)):
        yield InputRow(position, record=record, form=form, error=errors.get(index))


def ndjson_blocks(
    chunks: Iterable[bytes], lines_per_block: int, after: int = 0, *, max_line_bytes: int | None
) -> Iterator[tuple[int, int, bytes]]:
    """The spool's lines after `after` in blocks of `lines_per_block`: (first line number, last, the lines).

    A block goes to a worker process whole; its lines keep their numbers (parse_lines(start=first)). Lines
    are moved a frame's worth at a time (slices of the frame's split), not one by one.
    """
    block: list[bytes] = []
    first = after + 1
    number = 0  # lines seen so far
    for lines in _frame_lines(chunks, max_line_bytes):
        skip = min(len(lines), max(0, after - number))
        number += len(lines)
        taken = skip
        while taken < len(lines):
            end = taken + lines_per_block - len(block)
            block.extend(lines[taken:end])
            taken = min(end, len(lines))
            if len(block) == lines_per_block:
                last = number - len(lines) + taken
                yield first, last, b"\n".join(block)
                block = []
                first = last + 1
    if block:
        yield first, number, b"\n".join(block)


def _frame_lines(chunks: Iterable[bytes], max_line_bytes: int | None) -> Iterator[list[bytes]]:
    """A spool's lines, a list per frame (the last line alone; a trailing newline ends it, as in _lines)."""
    splitter = LineSplitter(max_line_bytes)
    for chunk in chunks:
        lines = splitter.feed(chunk)
        if lines:
            yield lines
    last = splitter.finish()[0]
    if last:
        yield [last]
