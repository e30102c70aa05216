"""A new record's row in PostgreSQL's binary COPY format, built where the record is prepared.

A bulk chunk's new records are most of what its transaction writes. Encoded by the driver in the worker
process, each row cost several microseconds (three timestamps, and a Python call per value) while the chunk
held its unit's lock; built here, in the niced prepare processes, the worker only joins bytes. Every column
of a new record is known once it is validated except those of the batch (unit, times received, job), which
go last (`BATCH_COLUMNS`, `batch_suffix`); the decision only chooses whether the row is sent.

No database import here: a prepare process never loads the database layer.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from itertools import repeat

# Record.conformance of a new record (models.py holds the same values; this module must not import it).
NOT_COUNTED, IN_BASIS, CONFORMING = 0, 1, 2
# The columns in the order a row is encoded: the record's own, then the batch's.
RECORD_COLUMNS = (
    "form",
    "record_id",
    "version",
    "action",
    "payload_hash",
    "fields",
    "event_time",
    "event_month",
    "conformance",
    "conformance_month",
    "health_record_no",
)
BATCH_COLUMNS = ("organization_id", "first_received_at", "received_at", "job_id")
COLUMNS = RECORD_COLUMNS + BATCH_COLUMNS

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_FIELD_COUNT = struct.pack(">h", len(COLUMNS))
_NULL = struct.pack(">i", -1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamps count microseconds from here
_MICROSECOND = timedelta(microseconds=1)
_INT4 = struct.Struct(">i").pack
# version 1 (int4), then the action (int2); the timestamp (int8), then event_month (int4) and conformance (int2).
_VERSION_ACTION = struct.Struct(">iiih").pack
_MOMENT_MONTH_CONFORMANCE = struct.Struct(">iqiiih").pack
_MONTH = struct.Struct(">ii").pack


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return _INT4(len(data)) + data


def timestamp(moment: datetime) -> int:
    """An aware datetime as PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC."""
    return (moment - _EPOCH) // _MICROSECOND


def moment(micros: int) -> datetime:
    """timestamp() undone: the aware UTC datetime of a binary timestamptz."""
    return _EPOCH + timedelta(microseconds=micros)


def record_part(
    form: bytes,
    record_id: str,
    action: int,
    digest: str,
    payload: bytes,
    event_time: int,
    event_month: int,
    conformance: int,
    conformance_month: int | None,
    health_record_no: str | None,
) -> bytes:
    """The record's own columns of its row (RECORD_COLUMNS), `form` already encoded as its text field, the
    stored `fields` JSON as UTF-8 (the canonical bytes themselves, for a form without personal fields), and the
    event time already as microseconds (timestamp())."""
    return record_parts(
        form,
        [record_id],
        [action],
        [digest],
        [payload],
        [event_time],
        [event_month],
        [conformance],
        [conformance_month],
        [health_record_no],
    )[0]


def record_parts(
    form: bytes,
    record_ids: list[str],
    actions: list[int],
    digests: list[str],
    payloads: list[bytes],
    event_times: list[int],
    event_months: list[int],
    conformances: list[int],
    conformance_months: list[int | None],
    health_record_nos: list[str | None],
) -> list[bytes]:
    """record_part() of each record of one form, given as columns: each column encoded by one C call per
    record (a map), each row joined from them, with no Python call per record."""
    ids = list(map(str.encode, record_ids))
    digest_bytes = list(map(str.encode, digests))
    digest_lengths = set(map(len, digest_bytes))
    none = [None]
    columns = (
        repeat(_FIELD_COUNT),
        repeat(form),
        map(_INT4, map(len, ids)),
        ids,
        map(_VERSION_ACTION, repeat(4), repeat(1), repeat(2), actions),
        repeat(_INT4(digest_lengths.pop())) if len(digest_lengths) == 1 else map(_INT4, map(len, digest_bytes)),
        digest_bytes,
        map(_INT4, map(len, payloads)),
        payloads,
        map(_MOMENT_MONTH_CONFORMANCE, repeat(8), event_times, repeat(4), event_months, repeat(2), conformances),
        map(_month, conformance_months) if None in conformance_months else map(_MONTH, repeat(4), conformance_months),
        repeat(_NULL) if health_record_nos == none * len(health_record_nos) else map(_text, health_record_nos),
    )
    return list(map(b"".join, zip(*columns, strict=False)))  # (the repeated parts are endless)


def _month(month: int | None) -> bytes:
    return _NULL if month is None else _MONTH(4, month)


def form_field(form: str) -> bytes:
    """A form code as a text field, encoded once per form and chunk."""
    return _text(form)


def batch_suffix(organization_id: int, received_at: datetime, job_id: int | None) -> bytes:
    """The batch's columns (BATCH_COLUMNS), the same at the end of every row of the batch."""
    received = struct.pack(">iq", 8, timestamp(received_at))
    job = _NULL if job_id is None else struct.pack(">iq", 8, job_id)
    return struct.pack(">ii", 4, organization_id) + received + received + job


def copy_payload(parts: list[bytes], suffix: bytes) -> bytes:
    """A whole binary COPY stream of these rows."""
    return b"".join((HEADER, suffix.join(parts), suffix, TRAILER)) if parts else HEADER + TRAILER
