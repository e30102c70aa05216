"""Lab results and specimens over HL7 v2: a batch of received messages decided in the caller's transaction.

`receive` reads a message (CPU only, before any transaction); `ingest` decides a batch of them in the
session it is given (the MLLP listener's group commit owns the transaction): repeats of accepted messages
are answered AA and not stored again; every other message is kept, its raw text encrypted, with the
acknowledgement it gets; accepted results become lab reports linked to the master patient index (an
unmatched patient's report is kept, flagged); specimens take the steps the messages report, and a step
their state does not allow refuses its message (AE naming the specimen's state and the step).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher
from cityhealth.telemed import lab_repository as repository
from cityhealth.telemed.lab_models import RAW_PURPOSE, LabMessage, LabObservation, LabReport, LabSpecimenStep
from cityhealth.telemed.lab_parse import (
    APPLICATION_ERROR,
    Header,
    Hl7Problem,
    LabMessageIn,
    parse,
)
from cityhealth.telemed.volumes import LabCredit, add_lab

# The routing of a specimen: collected -> shipped -> received -> reported, or rejected on the way. A lab
# that sends no OML reports a specimen first in its results (None -> reported).
NEXT_STATES: dict[str | None, frozenset[str]] = {
    None: frozenset({"collected", "reported"}),
    "collected": frozenset({"shipped", "rejected"}),
    "shipped": frozenset({"received", "rejected"}),
    "received": frozenset({"reported", "rejected"}),
    "reported": frozenset(),
    "rejected": frozenset(),
}


@dataclass(frozen=True)
class Received:
    """A message as it arrived, read: its content, or the problem that refuses it."""

    raw: bytes
    received_at: datetime
    message: LabMessageIn | None
    problem: Hl7Problem | None

    @property
    def header(self) -> Header | None:
        return self.message.header if self.message is not None else (self.problem.header if self.problem else None)


@dataclass(frozen=True)
class Outcome:
    """What a message is acknowledged with."""

    ack: str
    header: Header | None
    problem: Hl7Problem | None = None
    duplicate: bool = False
    reports: int = 0
    unmatched: int = 0


@dataclass
class _Plan:
    """A batch's rows, built before anything is written."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome | None] = field(default_factory=list)


def receive(raw: bytes, clock: Clock) -> Received:
    """Read one message; a message that cannot be read is received all the same, with its problem."""
    try:
        return Received(raw, clock.now(), parse(raw), None)
    except Hl7Problem as problem:
        return Received(raw, clock.now(), None, problem)


def _key(header: Header) -> repository.MessageKey:
    return header.sending_application, header.sending_facility, header.control_id


def _specimen_owner(header: Header) -> str:
    """The registry code a lab system names its organization by (its specimens' owner, and the organization
    its reports are credited to): MSH-4's namespace id, else MSH-3's."""
    return header.sending_facility or header.sending_application


def _patient(cipher: FieldCipher, clock: Clock, message: LabMessageIn) -> tuple[str | None, str | None]:
    """(keyed hash of the first valid ID number in PID-3, unmatched reason when there is none)."""
    for value in message.patient_ids:
        hashed = registry.id_number_hash(cipher, clock, value)
        if hashed is not None:
            return hashed, None
    return None, "invalid_identifier" if message.patient_ids else "no_identifier"


def _walk_specimens(
    message: LabMessageIn, states: dict[repository.SpecimenKey, str | None]
) -> dict[repository.SpecimenKey, str | None]:
    """The specimens' states after the message's steps, or Hl7Problem naming the state and the refused step."""
    after = dict(states)
    owner = _specimen_owner(message.header)
    for step in message.steps:
        key = (owner, step.specimen_no)
        state = after.get(key)
        if state == step.step:
            continue  # reported again (a corrected result, a resend under a new control id): nothing moves
        if step.step not in NEXT_STATES[state]:
            allowed = ", ".join(sorted(NEXT_STATES[state])) or "none: it is final"
            raise Hl7Problem(
                "AE",
                APPLICATION_ERROR,
                f"{step.location}-2",
                f"specimen {step.specimen_no} is {state or 'not known here'}: step {step.step!r} is "
                f"not allowed from it (allowed: {allowed})",
                message.header,
            )
        after[key] = step.step
    return after


async def ingest(
    session: AsyncSession,
    clock: Clock,
    cipher: FieldCipher,
    batch: Sequence[Received],
    senders: registry.OrganizationIds | None = None,
) -> list[Outcome]:
    """Decide `batch` in `session` (flushed, not committed): one outcome per message, in order. `senders`: the
    listener's organization ids already looked up, to credit the senders with."""
    now = clock.now()
    keys = [_key(item.message.header) for item in batch if item.message is not None]
    seen = await repository.accepted_keys(session, keys)
    patients = [_patient(cipher, clock, item.message) if item.message is not None else (None, None) for item in batch]
    residents = await registry.resident_ids_by_id_number_hash(session, {h for h, _ in patients if h is not None})
    specimen_keys = {
        (_specimen_owner(item.message.header), step.specimen_no)
        for item in batch
        if item.message is not None
        for step in item.message.steps
    }
    existing = await repository.specimens(session, specimen_keys)
    states: dict[repository.SpecimenKey, str | None] = {key: state for key, (_, state) in existing.items()}

    outcomes: list[Outcome] = []
    kept: list[tuple[Received, Outcome, tuple[str | None, str | None]]] = []
    for item, (patient_hash, reason) in zip(batch, patients, strict=True):
        message = item.message
        if message is None:
            outcome = Outcome(item.problem.ack if item.problem else "AR", item.header, item.problem)
        elif _key(message.header) in seen:
            outcome = Outcome("AA", message.header, duplicate=True)
        else:
            try:
                states = _walk_specimens(message, states)
            except Hl7Problem as problem:
                outcome = Outcome(problem.ack, message.header, problem)
            else:
                seen.add(_key(message.header))
                matched = patient_hash is not None and patient_hash in residents
                reports = len(message.orders) if message.header.message_type == "ORU^R01" else 0
                outcome = Outcome("AA", message.header, reports=reports, unmatched=0 if matched else reports)
        outcomes.append(outcome)
        if not outcome.duplicate:
            kept.append((item, outcome, (patient_hash, reason)))

    report_rows: list[dict[str, Any]] = []
    observation_rows: list[dict[str, Any]] = []
    for index, (item, outcome, (patient_hash, reason)) in enumerate(kept):
        if outcome.ack != "AA" or item.message is None or not outcome.reports:
            continue
        resident_id = residents.get(patient_hash) if patient_hash is not None else None
        owner = _specimen_owner(item.message.header)
        for order in item.message.orders:
            observation_rows += [
                {
                    "report_index": len(report_rows),
                    "set_id": obx.set_id,
                    "value_type": obx.value_type,
                    "code": obx.code,
                    "name": obx.name,
                    "value": obx.value,
                    "units": obx.units,
                    "reference_range": obx.reference_range,
                    "abnormal_flag": obx.abnormal_flag,
                    "status": obx.status,
                }
                for obx in order.observations
            ]
            report_rows.append(
                {
                    "message_index": index,
                    "sending_facility": owner,
                    "placer_order_no": order.placer_order_no,
                    "filler_order_no": order.filler_order_no,
                    "specimen_no": order.specimen_no,
                    "test_code": order.test_code,
                    "test_name": order.test_name,
                    "result_status": order.result_status,
                    "observed_at": order.observed_at,
                    "resident_id": resident_id,
                    "patient_hash": patient_hash,
                    "unmatched_reason": None if resident_id is not None else (reason or "not_in_index"),
                    "created_at": now,
                }
            )
    message_ids = await repository.insert_results(
        session, [_message_row(cipher, item, outcome) for item, outcome, _ in kept], report_rows, observation_rows
    )
    step_rows: list[tuple[repository.SpecimenKey, dict[str, Any]]] = []
    for (item, outcome, _), message_id in zip(kept, message_ids, strict=True):
        if outcome.ack != "AA" or item.message is None:
            continue
        owner = _specimen_owner(item.message.header)
        for step in item.message.steps:
            step_rows.append(
                (
                    (owner, step.specimen_no),
                    {"step": step.step, "reason": step.reason, "type": step.specimen_type, "message_id": message_id},
                )
            )
    moved = await _move_specimens(session, now, existing, step_rows)
    shipped = Counter(row["message_id"] for _, row in moved if row["to_state"] == "shipped")
    await add_lab(
        session,
        [
            LabCredit(_specimen_owner(item.message.header), item.received_at, outcome.reports, shipped[message_id])
            for (item, outcome, _), message_id in zip(kept, message_ids, strict=True)
            if outcome.ack == "AA" and item.message is not None
        ],
        senders,
    )
    return outcomes


async def _move_specimens(
    session: AsyncSession,
    now: datetime,
    existing: dict[repository.SpecimenKey, tuple[int, str]],
    steps: list[tuple[repository.SpecimenKey, dict[str, Any]]],
) -> list[tuple[repository.SpecimenKey, dict[str, Any]]]:
    """Write the specimens' steps (already checked in order) and where each now stands; the steps taken."""
    current: dict[repository.SpecimenKey, str | None] = {key: state for key, (_, state) in existing.items()}
    new: dict[repository.SpecimenKey, dict[str, Any]] = {}
    moved: list[tuple[repository.SpecimenKey, dict[str, Any]]] = []
    for key, step in steps:
        if current.get(key) == step["step"]:
            continue
        moved.append(
            (
                key,
                {
                    "from_state": current.get(key),
                    "to_state": step["step"],
                    "reason": step["reason"],
                    "message_id": step["message_id"],
                    "at": now,
                },
            )
        )
        current[key] = step["step"]
        final = {"state": step["step"], "reject_reason": step["reason"] if step["step"] == "rejected" else None}
        if key in existing:
            continue
        new.setdefault(
            key,
            {
                "sending_facility": key[0],
                "specimen_no": key[1],
                "specimen_type": step["type"],
                "created_at": now,
                "updated_at": now,
            },
        ).update(final)
    created = dict(zip(new, await repository.insert_specimens(session, list(new.values())), strict=True))
    ids = {key: specimen_id for key, (specimen_id, _) in existing.items()} | created
    await repository.update_specimens(
        session,
        [
            {"specimen_id": ids[key], "new_state": current[key], "new_reason": _reason_of(moved, key), "now": now}
            for key in existing
            if current[key] != existing[key][1]
        ],
    )
    await repository.insert_steps(session, [row | {"specimen_id": ids[key]} for key, row in moved])
    return moved


def _reason_of(moved: list[tuple[repository.SpecimenKey, dict[str, Any]]], key: repository.SpecimenKey) -> str | None:
    last = [row for found, row in moved if found == key][-1]
    return str(last["reason"]) if last["to_state"] == "rejected" else None


def _message_row(cipher: FieldCipher, item: Received, outcome: Outcome) -> dict[str, Any]:
    header, problem = outcome.header, outcome.problem
    return {
        "sending_application": header.sending_application if header else "",
        "sending_facility": header.sending_facility if header else "",
        "control_id": header.control_id or None if header else None,
        "message_type": header.message_type[:16] if header and header.message_type else None,
        "ack_code": outcome.ack,
        "error_code": problem.code if problem else None,
        "error_location": problem.location[:32] if problem else None,
        "error_text": problem.text[:400] if problem else None,
        # Every raw message is encrypted: one that cannot be read cannot be shown to carry no personal data.
        "raw_cipher": cipher.encrypt(RAW_PURPOSE, item.raw.decode("utf-8", errors="surrogateescape")),
        "raw_bytes": len(item.raw),
        "received_at": item.received_at,
    }


def raw_message(cipher: FieldCipher, row: LabMessage) -> bytes:
    """A kept message's raw bytes, as they arrived (the caller audits the reading)."""
    return cipher.decrypt(RAW_PURPOSE, row.raw_cipher).encode("utf-8", errors="surrogateescape")


async def kept_messages(session: AsyncSession, *, control_id: str | None = None) -> list[LabMessage]:
    return await repository.messages(session, control_id=control_id)


async def message_counts(session: AsyncSession, *, control_id: str | None = None) -> dict[str, int]:
    return await repository.message_count(session, control_id=control_id)


async def reports_of(session: AsyncSession, message_ids: Sequence[int]) -> list[tuple[LabReport, list[LabObservation]]]:
    """The reports the messages produced, each with its observations."""
    reports = await repository.reports_of(session, message_ids)
    observations = await repository.observations_of(session, [report.id for report in reports])
    return [(report, [obx for obx in observations if obx.report_id == report.id]) for report in reports]


async def specimen_state(
    session: AsyncSession, sending_facility: str, specimen_no: str
) -> tuple[str, str | None, list[LabSpecimenStep]] | None:
    """(state, reject reason, steps) of a specimen, or None when it is not known."""
    found = await repository.specimen(session, sending_facility, specimen_no)
    if found is None:
        return None
    return found.state, found.reject_reason, await repository.specimen_steps(session, found.id)
