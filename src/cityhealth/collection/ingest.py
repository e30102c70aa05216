"""入库: one batch of rows from one unit — validated, decided (new, amended, revoked, duplicate, rejected),
stored and counted, all in the caller's transaction.

The same pipeline serves the real-time path (a request is one batch) and the bulk path (a job chunk is one
batch). The record key is (organization, form, record id); an identical re-send changes nothing.
Validation and serialisation happen in prepare.py, before any database access; what is left here is one
existence lookup for the whole batch, the decisions, one COPY (or executemany) of the new records, and a
handful of upserts of counters aggregated over the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import business_date
from cityhealth.collection import originals
from cityhealth.collection.metrics import (
    MetricDeltas,
    count_decisions,
    count_managed,
    count_new_columns,
    field_key,
    month_of,
)
from cityhealth.collection.models import CONFORMING, IN_BASIS, NOT_COUNTED
from cityhealth.collection.new_records import ColumnsPrepared, new_chunk_keys
from cityhealth.collection.prepare import (
    ACCEPTED,
    AMENDED,
    DUPLICATE,
    REJECTED,
    REVOKED,
    Candidate,
    Collector,
    InputRow,
    PreparedBatch,
    prepare,
)
from cityhealth.collection.public_health import held_number
from cityhealth.collection.repository import organizations, record_copy, stored_records
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.repository.stored_records import StoredState
from cityhealth.collection.rules import RecordError, make_error
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.findings import masked_row
from cityhealth.personal_numbers import may_hold_number, scrub

__all__ = [
    "ACCEPTED",
    "AMENDED",
    "DUPLICATE",
    "OUTCOMES",
    "REJECTED",
    "REVOKED",
    "BatchResult",
    "Collector",
    "ForeignOrganization",
    "InputRow",
    "RowOutcome",
    "ingest",
    "masked_row",
]

OUTCOMES = (ACCEPTED, AMENDED, REVOKED, DUPLICATE, REJECTED)


@dataclass(slots=True)
class RowOutcome:
    position: int
    form: str | None
    record_id: str | None
    status: str
    version: int | None = None
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    row: dict[str, Any] | None = None  # rejected rows only: as sent, personal fields masked

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"position": self.position, "record_id": self.record_id, "status": self.status}
        if self.version is not None:
            body["version"] = self.version
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        if self.warnings:
            body["warnings"] = self.warnings
        return body


class ForeignOrganization(Exception):
    """Records name another registered organization: the sender is uploading as someone else."""

    def __init__(self, codes: set[str]) -> None:
        super().__init__("records name another organization")
        self.codes = codes


@dataclass
class BatchResult:
    """The rejected rows' outcomes, rows per status, and (detailed) every row's answer in order, as sent back."""

    outcomes: list[RowOutcome]
    tally: Counter[str] = field(default_factory=Counter)
    records: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, outcomes: list[RowOutcome]) -> BatchResult:
        return cls(outcomes, Counter(outcome.status for outcome in outcomes))

    @property
    def rejected(self) -> list[RowOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == REJECTED]

    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        totals.update(self.tally)
        totals["received"] = sum(self.tally.values())
        return totals


Rejections = dict[int, tuple[str | None, list[RecordError]]]


async def ingest(
    session: AsyncSession,
    collector: Collector,
    sender: Sender,
    rows: Sequence[InputRow],
    *,
    received_at: datetime,
    dry_run: bool = False,
    sequential_repeats: bool = False,
    forbid_foreign: bool = True,
    job_id: int | None = None,
    previously_rejected: Mapping[int, tuple[str | None, list[RecordError]]] | None = None,
    prepared: PreparedBatch | ColumnsPrepared | None = None,
    detailed: bool = True,
) -> BatchResult:
    """Validate, decide, store and count one batch. Raises ForeignOrganization (forbid_foreign) before writing.

    `sequential_repeats`: a key repeated in the batch is applied in order (bulk files carry a record and its
    amendment); otherwise every occurrence of a repeated key is rejected (a real-time batch is ambiguous).
    `previously_rejected` (a job's rejected rows run again): position -> the form and errors counted then,
    taken back out of the counters so that a row is received once however often it is re-run.
    `prepared`: the batch already validated (a bulk job prepares ahead); used if it was validated against
    the code tables loaded now, else prepared again; as columns, a chunk of new records is stored and counted
    by its columns (new_records.py). `detailed=False` leaves out every row's answer (`records`).
    """
    if prepared is None and (known := collector.current_validators()) is not None:
        # Prepared before any statement (the usual case: the code tables did not change since the last batch),
        # so that the unit's lock, taken next, is not held while the CPU works.
        prepared = prepare(collector, known, rows, received_at)
    generations = await stored_records.begin_unit_writes(session, sender.id, lock=not dry_run)
    validators = await collector.validators_for(session, generations)
    day = business_date(received_at)
    month = month_of(day)
    if isinstance(prepared, ColumnsPrepared):
        columns = prepared.columns
        current = prepared.validators is validators and prepared.received_at == received_at
        keys = new_chunk_keys(columns, sender.code) if current and not dry_run and not detailed else None
        if keys is not None and not await stored_records.existing_records(session, sender.id, keys):
            await record_copy.copy_new_records(session, sender.id, received_at, job_id, columns.copy_rows)
            deltas = MetricDeltas(sender.id)
            count_new_columns(deltas, columns.forms, columns.event_months, columns.on_time, day, month)
            rejected: Rejections = dict(columns.rejected)
            await _count_rest(session, sender, deltas, rows, rejected, previously_rejected, received_at, month)
            return _result(rows, [], rejected, {}, detailed, accepted=len(keys))
        prepared = prepared.batch()
    if prepared is None or prepared.validators is not validators or prepared.received_at != received_at:
        prepared = prepare(collector, validators, rows, received_at)
    rejected = dict(prepared.rejected)

    def reject(index: int, form: str | None, errors: list[RecordError]) -> None:
        rejected[index] = (form, errors)

    candidates = await _check_senders(session, sender, prepared.candidates, reject, forbid_foreign)
    rounds = _rounds(candidates, reject, sequential_repeats)
    # A round of originals on PostgreSQL is inserted with no probe before it (originals.py).
    first = len(rounds) == 1 and originals.inserted_first(session, rounds[0], dry_run)
    keys = [] if first else [(c.form.code, c.record_id) for round_ in rounds for c in round_]
    if len(rounds) > 1:
        keys = list(dict.fromkeys(keys))
    state = await stored_records.existing_records(session, sender.id, keys)

    deltas = MetricDeltas(sender.id)
    warnings: dict[int, list[dict[str, Any]]] = {}
    decided: list[Candidate] = []
    for number, round_ in enumerate(rounds):
        settled: list[Candidate] = []
        later = number + 1 < len(rounds)
        if not state and not later and all(candidate.action == 1 for candidate in round_):
            # Nothing stored under these keys (or, `first`, not probed: store_originals decides the stored ones
            # after its insert) and every record an original (a batch of new records): each is accepted as
            # version 1, as _decide would say, without a decision call per record.
            for candidate in round_:
                candidate.status, candidate.version = ACCEPTED, 1
                if candidate.form.group is not None:
                    candidate.conformance = CONFORMING if candidate.on_time else IN_BASIS
                    candidate.conformance_month = candidate.event_month
                else:
                    candidate.conformance, candidate.conformance_month = NOT_COUNTED, None
            settled = round_
            round_ = []
        for candidate in round_:
            key = (candidate.form.code, candidate.record_id)
            if not _decide(candidate, state.get(key) if state else None, reject):
                continue
            settled.append(candidate)
            if later and candidate.status != DUPLICATE:
                state[key] = StoredState(
                    candidate.version,
                    candidate.action,
                    candidate.digest,
                    candidate.conformance,
                    candidate.conformance_month,
                    held_number(key[0], candidate.record),
                )
        if first:
            settled = await originals.store_originals(
                session, sender, settled, received_at, job_id, lambda c, stored: _decide(c, stored, reject)
            )
        elif not dry_run:
            await _store(session, sender, settled, received_at, job_id)
        count_decisions(deltas, sender, settled, warnings, day, month)
        decided.extend(settled)

    if not dry_run:
        await _count_rest(session, sender, deltas, rows, rejected, previously_rejected, received_at, month)
    return _result(rows, decided, rejected, warnings, detailed)


async def _count_rest(
    session: AsyncSession,
    sender: Sender,
    deltas: MetricDeltas,
    rows: Sequence[InputRow],
    rejected: Rejections,
    previously_rejected: Mapping[int, tuple[str | None, list[RecordError]]] | None,
    received_at: datetime,
    month: int,
) -> None:
    """The batch's managed numbers and rejections counted, a re-run's earlier rejections taken back, and the
    deltas written."""
    forms = load_standard().forms
    day = business_date(received_at)
    await count_managed(session, sender, deltas, month)
    for form, errors in rejected.values():
        if form in forms:
            deltas.count(day, form, "received")
            deltas.reject(day, form, errors)
    if previously_rejected:
        _take_back(deltas, rows, previously_rejected, day)
    await deltas.flush(session, received_at)


def _take_back(
    deltas: MetricDeltas,
    rows: Sequence[InputRow],
    previously_rejected: Mapping[int, tuple[str | None, list[RecordError]]],
    day: Any,
) -> None:
    """Remove the counts a re-run row made when it was rejected before (it is counted again now)."""
    forms = load_standard().forms
    for row in rows:
        if row.position not in previously_rejected:
            continue
        old_form, old_errors = previously_rejected[row.position]
        if old_form in forms:
            deltas.count(day, old_form, "received", -1)
            deltas.count(day, old_form, "rejected", -1)
            for error in old_errors:
                deltas.rejections[(day, old_form, error.rule, field_key(error.field))] -= 1


def _rejected_outcome(row: InputRow, form: str | None, errors: list[RecordError]) -> RowOutcome:
    record = row.record
    record_id = record.get("record_id") if isinstance(record, dict) else None
    return RowOutcome(
        position=row.position,
        form=form,
        # Some senders key records by ID number: the rejection is answered, stored and exported masked.
        record_id=scrub(record_id) if isinstance(record_id, str) else None,
        status=REJECTED,
        errors=errors,
        row=record if row.masked else masked_row(record),
    )


def _result(
    rows: Sequence[InputRow],
    decided: list[Candidate],
    rejected: Rejections,
    warnings: dict[int, list[dict[str, Any]]],
    detailed: bool,
    accepted: int = 0,  # new records accepted by their columns, not among `decided` (not detailed)
) -> BatchResult:
    tally: Counter[str] = Counter(candidate.status for candidate in decided)
    if accepted:
        tally[ACCEPTED] += accepted
    if rejected:
        tally[REJECTED] = len(rejected)
    if not detailed:
        outcomes = [_rejected_outcome(rows[index], *rejected[index]) for index in sorted(rejected)]
        return BatchResult(outcomes, tally)
    # The real-time answer, built as the response's dicts at once: only a rejection needs a RowOutcome.
    # A unit may use an ID number as its record id: the answer masks it as a rejection's would. One search over
    # all the batch's ids says whether any could be one (a newline never joins two ids into a number).
    masking = may_hold_number("\n".join([candidate.record_id for candidate in decided]))
    records: list[dict[str, Any]] = []
    if not rejected and [candidate.index for candidate in decided] == list(range(len(rows))):
        # Every row decided, in order (the usual batch): no lookup per row.
        for row, done in zip(rows, decided, strict=True):
            rid = done.record_id
            answer = {
                "position": row.position,
                "record_id": scrub(rid) if masking else rid,
                "status": done.status,
                "version": done.version,
            }
            if warnings and (found := warnings.get(done.index)):
                answer["warnings"] = found
            records.append(answer)
        return BatchResult([], tally, records)
    by_index = {candidate.index: candidate for candidate in decided}
    rejections: list[RowOutcome] = []
    for index, row in enumerate(rows):
        candidate = by_index.get(index)
        if candidate is None:
            outcome = _rejected_outcome(row, *rejected[index])
            rejections.append(outcome)
            records.append(outcome.as_dict())
            continue
        rid = candidate.record_id
        answer = {"position": row.position, "record_id": scrub(rid) if masking else rid, "status": candidate.status}
        if candidate.version is not None:
            answer["version"] = candidate.version
        found = warnings.get(index)
        if found:
            answer["warnings"] = found
        records.append(answer)
    return BatchResult(rejections, tally, records)


async def _check_senders(
    session: AsyncSession,
    sender: Sender,
    candidates: list[Candidate],
    reject: Any,
    forbid_foreign: bool,
) -> list[Candidate]:
    named = {candidate.org_code for candidate in candidates} - {sender.code}
    if not named:
        return candidates
    registered = await organizations.existing_org_codes(session, named)
    if registered and forbid_foreign:
        raise ForeignOrganization(registered)
    kept = []
    for candidate in candidates:
        code = candidate.org_code
        if code == sender.code:
            kept.append(candidate)
        else:
            rule = "org_code.not_sender" if code in registered else "org_code.unknown"
            reject(candidate.index, candidate.form.code, [make_error(rule, "org_code", code)])
    return kept


def _rounds(candidates: list[Candidate], reject: Any, sequential: bool) -> list[list[Candidate]]:
    """Split by occurrence of each key: round k holds every key's k-th occurrence."""
    keys = [(candidate.form.code, candidate.record_id) for candidate in candidates]
    if len(set(keys)) == len(keys):  # the usual batch: every key once
        return [candidates] if candidates else []
    seen = Counter(keys)
    if not sequential:
        kept = []
        for candidate, key in zip(candidates, keys, strict=True):
            if seen[key] > 1:
                reject(
                    candidate.index,
                    candidate.form.code,
                    [make_error("record_id.duplicate_in_batch", "record_id", candidate.record_id)],
                )
            else:
                kept.append(candidate)
        return [kept] if kept else []
    rounds: list[list[Candidate]] = []
    occurrence: dict[tuple[str, str], int] = {}
    for candidate, key in zip(candidates, keys, strict=True):
        k = occurrence.get(key, 0)
        occurrence[key] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(candidate)
    return rounds


def _decide(candidate: Candidate, previous: StoredState | None, reject: Any) -> bool:
    """Fill in the candidate's decision against the stored state of its key; False if it was rejected."""
    form = candidate.form
    if previous is None:
        if candidate.action != 1:
            reject(candidate.index, form.code, [make_error("action.no_original", "action", str(candidate.action))])
            return False
        candidate.status, candidate.version = ACCEPTED, 1
        if form.group is not None:
            candidate.conformance = CONFORMING if candidate.on_time else IN_BASIS
            candidate.conformance_month = candidate.event_month
        else:
            candidate.conformance, candidate.conformance_month = NOT_COUNTED, None
        return True
    candidate.previous = previous
    candidate.conformance_month = previous.conformance_month
    if previous.payload_hash == candidate.digest:
        candidate.status, candidate.version, candidate.conformance = DUPLICATE, previous.version, previous.conformance
        return True
    if previous.action == 3:
        reject(candidate.index, form.code, [make_error("record.revoked", "action", str(candidate.action))])
        return False
    if candidate.action == 1:
        reject(candidate.index, form.code, [make_error("action.exists", "record_id", candidate.record_id)])
        return False
    candidate.version = previous.version + 1
    if candidate.action == 2:
        # An amendment means the real-time version did not match the final data: no longer conforming.
        candidate.status = AMENDED
        candidate.conformance = IN_BASIS if previous.conformance == CONFORMING else previous.conformance
    else:
        # A revoked record is no longer an accepted record: it leaves the basis too.
        candidate.status, candidate.conformance = REVOKED, NOT_COUNTED
    return True


async def _store(
    session: AsyncSession,
    sender: Sender,
    decided: list[Candidate],
    received_at: datetime,
    job_id: int | None,
) -> None:
    inserts: list[tuple[Any, ...]] = []
    encoded: list[bytes] = []  # bulk chunks on PostgreSQL: rows built by the prepare processes
    changes: list[dict[str, Any]] = []
    organization_id = sender.id
    for candidate in decided:
        status = candidate.status
        if status == ACCEPTED and candidate.copy_row is not None:
            encoded.append(candidate.copy_row)
        elif status == ACCEPTED:
            inserts.append(originals.new_row(candidate))
        elif status != DUPLICATE:
            changes.append(
                {
                    "b_org": organization_id,
                    "b_form": candidate.form.code,
                    "b_rid": candidate.record_id,
                    "version": candidate.version,
                    "action": candidate.action,
                    "payload_hash": candidate.digest,
                    "fields": payload.decode() if type(payload := candidate.payload) is bytes else payload,
                    "event_time": candidate.event_time,
                    "event_month": candidate.event_month,
                    "received_at": received_at,
                    "conformance": candidate.conformance,
                    "job_id": job_id,
                    "health_record_no": held_number(candidate.form.code, candidate.record),
                }
            )
    await stored_records.insert_records(session, organization_id, received_at, job_id, inserts)
    await record_copy.copy_new_records(session, organization_id, received_at, job_id, encoded)
    if changes:
        await stored_records.supersede(
            session, organization_id, [(c["b_form"], c["b_rid"]) for c in changes], received_at
        )
        await stored_records.update_records(session, changes)
