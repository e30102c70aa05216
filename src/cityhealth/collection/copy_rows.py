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


def new_conformance(grouped: bool, on_time: bool, event_month: int) -> tuple[int, int | None]:
    """A new record's conformance and the month its basis counts in (ingest._decide's rule for an original)."""
    if grouped:
        return (CONFORMING if on_time else IN_BASIS), event_month
    return NOT_COUNTED, None


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return _INT4(len(data)) + data


def timestamp(moment: datetime) -> int:
    """An aware datetime as PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC."""
    return (moment - _EPOCH) // _MICROSECOND


def record_part(
    form: bytes,
    record_id: str,
    action: int,
    digest: str,
    payload: bytes,
    event_time: datetime,
    event_month: int,
    conformance: int,
    conformance_month: int | None,
    health_record_no: str | None,
) -> bytes:
    """The record's own columns of its row (RECORD_COLUMNS), `form` already encoded as its text field and the
    stored `fields` JSON as UTF-8 (the canonical bytes themselves, for a form without personal fields)."""
    rid = record_id.encode()
    digest_bytes = digest.encode()
    return b"".join(
        (
            _FIELD_COUNT,
            form,
            _INT4(len(rid)),
            rid,
            _VERSION_ACTION(4, 1, 2, action),
            _INT4(len(digest_bytes)),
            digest_bytes,
            _INT4(len(payload)),
            payload,
            _MOMENT_MONTH_CONFORMANCE(8, timestamp(event_time), 4, event_month, 2, conformance),
            _NULL if conformance_month is None else _MONTH(4, conformance_month),
            _text(health_record_no),
        )
    )


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
