"""准备: the CPU half of ingest — rows validated per form, each valid record canonicalised, hashed and
serialised once, with no database access.

Because nothing here waits on the database, a bulk job prepares its next chunk while the database is still
writing the current one (jobs.py), and the real-time path runs the same code inline. The canonical bytes of
a record (sorted keys) are both what the keyed payload hash covers and what is stored, so a record is
serialised once; only forms with personal fields serialise a second, encrypted copy for storage.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from operator import ge, itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from cityhealth.collection import copy_rows as copy
from cityhealth.collection.public_health import PROGRAM_OF_FORM, held_number
from cityhealth.collection.rules import RecordError, make_error
from cityhealth.collection.standard import LOADABLE_TABLES, FormSpec, load_standard
from cityhealth.collection.validation.dates import business_month
from cityhealth.collection.validation.findings import shown
from cityhealth.collection.validation.validator import SLICE_RECORDS, FormValidator
from cityhealth.config import Settings
from cityhealth.security.crypto import FieldCipher

if TYPE_CHECKING:  # a prepare process (workers.py) never touches the database: it need not import its layer
    from sqlalchemy.ext.asyncio import AsyncSession

    from cityhealth.collection.repository.stored_records import StoredState

_SORTED = orjson.OPT_SORT_KEYS
# What became of a row.
ACCEPTED, AMENDED, REVOKED, DUPLICATE, REJECTED = "accepted", "amended", "revoked", "duplicate", "rejected"


@dataclass(slots=True)
class InputRow:
    """One row as read from the upload: a record (or why it could not be read) and its 1-based position."""

    position: int
    record: dict[str, Any] | None = None
    form: str | None = None
    error: RecordError | None = None
    masked: bool = False  # the record is already masked as a rejected row is stored (by a prepare process)


class Collector:
    """Process-wide collection state: keys, and validators rebuilt when a loaded code table changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.window = timedelta(hours=settings.realtime_window_h)
        self.cipher = FieldCipher(
            settings.secret("field_encryption_key"), settings.secret("lookup_hmac_key"), settings.previous_secrets()
        )
        # Payload hashes are keyed: a plain hash of a record would let anyone confirm a guessed ID number.
        self.hash_key = hashlib.sha256(b"cityhealth-collection-hash" + settings.secret("lookup_hmac_key")).digest()
        # The keyed state, copied per record: keying a new hash compresses a whole block before the record's.
        self.keyed = hashlib.blake2b(key=self.hash_key, digest_size=16)
        self.spool_key = hashlib.sha256(
            b"cityhealth-collection-spool" + settings.secret("field_encryption_key")
        ).digest()
        self._generations: dict[str, int] | None = None
        self._validators: dict[str, FormValidator] = {}
        self.loaded: dict[str, dict[str, str]] = {}
        self.sensitive = {
            code: tuple(spec.name for spec in form.fields if spec.sensitive)
            for code, form in load_standard().forms.items()
            if any(spec.sensitive for spec in form.fields)
        }

    async def validators(self, session: AsyncSession) -> dict[str, FormValidator]:
        """The validators for the code tables loaded now (rebuilt only when a table's generation moved)."""
        from cityhealth.collection.repository import code_tables

        return await self.validators_for(session, await code_tables.code_generations(session))

    async def validators_for(self, session: AsyncSession, generations: dict[str, int]) -> dict[str, FormValidator]:
        """The validators for the code tables at these generations (their entries read only when one moved)."""
        if generations != self._generations:
            from cityhealth.collection.repository import code_tables

            self.loaded = {
                table: await code_tables.code_entries(session, table)
                for table in LOADABLE_TABLES
                if table in generations
            }
            standard = load_standard()
            self._validators = {
                code: FormValidator(form, standard, self.loaded) for code, form in standard.forms.items()
            }
            self._generations = generations
        return self._validators

    def generation_key(self) -> tuple[tuple[str, int], ...]:
        """The loaded code tables' generations, as a key (the validators in use were built for these)."""
        return tuple(sorted((self._generations or {}).items()))

    def current_validators(self) -> dict[str, FormValidator] | None:
        """The validators last built, without asking the database (None before the first batch)."""
        return self._validators if self._generations is not None else None

    def payload_hash(self, record: Mapping[str, Any]) -> str:
        return self.digest(orjson.dumps(record, option=_SORTED))

    def digest(self, canonical: bytes) -> str:
        hasher = self.keyed.copy()
        hasher.update(canonical)
        return hasher.hexdigest()

    def sealed(self, record: dict[str, Any], names: tuple[str, ...]) -> str:
        """The record as stored when it carries personal fields: those encrypted, with an HMAC lookup."""
        return self.sealed_bytes(record, names).decode()

    def sealed_bytes(self, record: dict[str, Any], names: tuple[str, ...]) -> bytes:
        """sealed() as the UTF-8 bytes of its JSON."""
        fields = dict(record)
        for name in names:
            value = fields.get(name)
            if isinstance(value, str) and value:
                purpose = f"collection.{name}"
                fields[name] = {
                    "enc": self.cipher.encrypt(purpose, value),
                    "lookup": self.cipher.lookup_hash(purpose, value),
                }
        return orjson.dumps(fields)


@dataclass(slots=True)
class Candidate:
    """A valid record ready to be decided and stored; ingest fills in the decision fields."""

    index: int  # position in the batch
    form: FormSpec
    record: dict[str, Any]  # normalised (from a worker process: only the forms counted beyond the totals)
    record_id: str
    org_code: str
    action: int
    event_time: datetime  # UTC
    event_month: int  # yyyymm, Asia/Shanghai
    on_time: bool  # received within the real-time window of its event
    digest: str  # keyed hash of the canonical record
    payload: str | bytes  # the stored `fields` JSON (bytes: UTF-8, as the real-time path keeps it)
    status: str = ""
    version: int = 0
    conformance: int = 0
    conformance_month: int | None = None
    previous: StoredState | None = None
    copy_row: bytes | None = None  # its row for a bulk chunk's binary COPY if it is new (copy_rows.py)


@dataclass(slots=True)
class PreparedBatch:
    """What validation made of a batch: candidates, and rejections by batch index (form, errors)."""

    validators: Mapping[str, FormValidator]  # the code-table generation it was validated against
    received_at: datetime
    candidates: list[Candidate]
    rejected: dict[int, tuple[str | None, list[RecordError]]]


@dataclass(slots=True)
class PreparedColumns:
    """A prepared batch as plain columns, one entry per candidate (cheap to pickle from a prepare process)."""

    indexes: list[int] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    records: list[dict[str, Any] | None] = field(default_factory=list)  # None: dropped (keep_records=False)
    record_ids: list[str] = field(default_factory=list)
    org_codes: list[str] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    # The event times as microseconds from 2000-01-01 UTC (copy_rows.timestamp), as a COPY row holds them:
    # a list of ints pickles ten times cheaper than one of datetimes, and most chunks never need the datetimes.
    event_micros: list[int] = field(default_factory=list)
    event_months: list[int] = field(default_factory=list)
    on_time: list[bool] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)
    copy_rows: list[bytes] = field(default_factory=list)  # empty unless asked for (copy_rows=True)
    rejected: dict[int, tuple[str | None, list[RecordError]]] = field(default_factory=dict)

    def batch(self, validators: Mapping[str, FormValidator], received_at: datetime) -> PreparedBatch:
        """The columns as the candidates ingest() decides (a dropped record reads as an empty one)."""
        forms = load_standard().forms
        rows: Sequence[bytes | None] = self.copy_rows or [None] * len(self.indexes)
        candidates = [
            Candidate(index, forms[form], record or {}, rid, org, action, moment, month, on_time, digest, payload,
                      copy_row=row)
            for index, form, record, rid, org, action, moment, month, on_time, digest, payload, row in zip(
                self.indexes,
                self.forms,
                self.records,
                self.record_ids,
                self.org_codes,
                self.actions,
                map(copy.moment, self.event_micros),
                self.event_months,
                self.on_time,
                self.digests,
                self.payloads,
                rows,
                strict=True,
            )
        ]
        return PreparedBatch(validators, received_at, candidates, self.rejected)


def prepare_columns(
    collector: Collector,
    validators: Mapping[str, FormValidator],
    forms: Sequence[str | None],
    records: Sequence[dict[str, Any] | None],
    errors: Mapping[int, RecordError],
    received_at: datetime,
    *,
    keep_records: bool = True,
    copy_rows: bool = False,
    payloads_of_new: bool = True,
) -> PreparedColumns:
    """Prepare a batch given as columns: each row's form and record (None: unreadable, `errors` says why).

    `keep_records=False` drops the records of the forms counted only in the totals (a prepare process sends
    back only what counting needs). `copy_rows=True` also encodes each record's row for binary COPY, as it is
    stored if it is new (a bulk chunk on PostgreSQL); with `payloads_of_new=False` the payload column is then
    empty for the records of action 1, whose row holds it (one stored only if new: otherwise a duplicate or a
    rejection, neither of which stores anything), so that it is not sent twice from a prepare process.
    """
    standard = load_standard().forms
    out = PreparedColumns()
    rejected = out.rejected
    groups = _group_by_form(standard, forms, records, errors, rejected)
    threshold = received_at - collector.window
    omit_new = copy_rows and not payloads_of_new
    for code, indexes in groups.items():
        validator = validators[code]
        sensitive = collector.sensitive.get(code)
        kept = keep_records or standard[code].kind != "realtime"
        grouped = standard[code].group is not None
        form_field = copy.form_field(code)
        for start in range(0, len(indexes), SLICE_RECORDS):
            part = indexes[start : start + SLICE_RECORDS]
            chunk: list[dict[str, Any]] = [records[i] for i in part]  # type: ignore[misc]
            checked = validator.check(chunk, now=received_at)
            for position, found in checked.errors.items():
                rejected[part[position]] = (code, found)
            # Column by column: one C call per record and column (no object per record, no append per column).
            valid = [chunk[i] for i in checked.indexes] if checked.errors else chunk
            actions, events = checked.actions, checked.events
            record_ids = list(map(itemgetter("record_id"), valid))
            micros = list(map(copy.timestamp, events))
            months: list[int] = list(map(business_month, events))
            on_time = list(map(ge, events, repeat(threshold)))
            canonicals = list(map(orjson.dumps, valid, repeat(None), repeat(_SORTED)))
            digests = list(map(collector.digest, canonicals))
            stored = canonicals if sensitive is None else [collector.sealed_bytes(r, sensitive) for r in valid]
            out.indexes += [part[i] for i in checked.indexes]
            out.forms += [code] * len(valid)
            out.records += valid if kept else [None] * len(valid)
            out.record_ids += record_ids
            out.org_codes += map(itemgetter("org_code"), valid)
            out.actions += actions
            out.event_micros += micros
            out.event_months += months
            out.on_time += on_time
            out.digests += digests
            if omit_new:
                pairs = zip(actions, stored, strict=True)
                out.payloads += ["" if action == 1 else payload.decode() for action, payload in pairs]
            else:
                out.payloads += map(bytes.decode, stored)
            if copy_rows:
                conformances = (
                    [copy.CONFORMING if timely else copy.IN_BASIS for timely in on_time]
                    if grouped
                    else [copy.NOT_COUNTED] * len(valid)
                )  # ingest._decide's rule for an original (version 1): a timely one conforms
                out.copy_rows += copy.record_parts(
                    form_field,
                    record_ids,
                    actions,
                    digests,
                    stored,
                    micros,
                    months,
                    conformances,
                    list(months) if grouped else [None] * len(valid),
                    [held_number(code, record) for record in valid] if code in PROGRAM_OF_FORM else [None] * len(valid),
                )
    return out


def _group_by_form(
    standard: Mapping[str, FormSpec],
    forms: Sequence[str | None],
    records: Sequence[dict[str, Any] | None],
    errors: Mapping[int, RecordError],
    rejected: dict[int, tuple[str | None, list[RecordError]]],
) -> dict[str, list[int]]:
    """The indexes of the readable rows of each known form; the others go to `rejected` with why."""
    groups: dict[str, list[int]] = {}
    for index, (form, record) in enumerate(zip(forms, records, strict=True)):
        if record is None:
            rejected[index] = (
                form if form in standard else None,
                [errors.get(index) or make_error("json.malformed", "record", detail="empty")],
            )
        elif form is None or form not in standard:
            rejected[index] = (None, [make_error("form.unknown", "form", shown(None, form))])
        else:
            groups.setdefault(form, []).append(index)
    return groups


def prepare(
    collector: Collector, validators: Mapping[str, FormValidator], rows: Sequence[InputRow], received_at: datetime
) -> PreparedBatch:
    """Prepare a batch of rows (the real-time path, and bulk chunks prepared in this process).

    The same work as prepare_columns, straight into the candidates ingest() decides: one object per valid
    record, and its canonical bytes kept as the stored payload (no text copy to encode again for the driver).
    """
    standard = load_standard().forms
    rejected: dict[int, tuple[str | None, list[RecordError]]] = {}
    records = [None if row.error is not None else row.record for row in rows]
    forms = [row.form for row in rows]
    if rows and None not in records and forms.count(forms[0]) == len(forms) and forms[0] in standard:
        groups = {forms[0]: list(range(len(rows)))}  # a real-time batch: one form, every row readable
    else:
        errors = {index: row.error for index, row in enumerate(rows) if row.error is not None}
        groups = _group_by_form(standard, forms, records, errors, rejected)
    threshold = received_at - collector.window
    keyed = collector.keyed
    dumps = orjson.dumps
    candidates: list[Candidate] = []
    add = candidates.append
    for code, indexes in groups.items():
        spec = standard[code]
        sensitive = collector.sensitive.get(code)
        part = [records[i] for i in indexes]
        checked = validators[code].check(part, now=received_at)  # type: ignore[arg-type]
        for position, found in checked.errors.items():
            rejected[indexes[position]] = (code, found)
        for position, action, moment in zip(checked.indexes, checked.actions, checked.events, strict=True):
            record: dict[str, Any] = part[position]  # type: ignore[assignment]
            canonical = dumps(record, option=_SORTED)
            hasher = keyed.copy()
            hasher.update(canonical)
            add(
                Candidate(
                    indexes[position],
                    spec,
                    record,
                    record["record_id"],
                    record["org_code"],
                    action,
                    moment,
                    business_month(moment),
                    moment >= threshold,
                    hasher.hexdigest(),
                    canonical if sensitive is None else collector.sealed(record, sensitive),
                )
            )
    return PreparedBatch(validators, received_at, candidates, rejected)


class _GcPauses:
    """Nesting-safe pauses of the cyclic garbage collector (several jobs may run in one process)."""

    pauses = 0
    resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector over batch work.

    A bulk chunk allocates tens of thousands of dicts that all outlive many allocations; with the collector
    on, every ~40,000 survivors start a full collection over the whole process heap (measured: a third of
    a job's time). Records are acyclic and freed by reference counting; the job loop collects the young
    generations every 100,000 rows (cyclic garbage of requests served meanwhile), and the collector resumes
    when the last pause ends.
    """
    if _GcPauses.pauses == 0:
        _GcPauses.resume = gc.isenabled()
        gc.disable()
    _GcPauses.pauses += 1
    try:
        yield
    finally:
        _GcPauses.pauses -= 1
        if _GcPauses.pauses == 0 and _GcPauses.resume:
            gc.enable()
