"""Group commit: a session's queued booking attempts decided together, in one transaction.

Every booking attempt that passes the pre-check and the gate is decided here; a single attempt is a batch
of one. At release time one transaction per attempt would hold the session's row lock from its write to its
commit, one after another, ~8 round trips each (the audit chain's append included). Instead one leader per
session and process (the platform's `db.group_commit.GroupCommit`) decides the attempts queued meanwhile in
one transaction, a statement per step for the whole batch (`group_repository`; on PostgreSQL 9 statements
whatever the batch's size). Whether an attempt may take a slot is asked of the one rule, `slots.refusal`,
on the row as the batch read it and again under its lock:

1. the session's batch lock (one batch of a session at a time across processes); only then are the
   queued attempts taken, so those that queued during the wait join this batch;
2. the Idempotency-Keys: advisory locks (another process running the same key: 409), stored replays;
3. a plain read of the session: the attempts that cannot get a slot are refused before any personal data
   is read (no audit event is due for them);
4. the residents and their bans in one query, their day rows locked in id order; their day's bookings
   with the session's row lock; the caps checked in Python, counting the batch's earlier attempts (the
   same resident twice); slots handed out in queue order within each channel's pool;
5. one statement writes the session's counters, the bookings, the statistics and the keys; one audit
   event per booking is queued, and all are appended to the chain at the commit.

Each attempt gets its own result or refusal; a refusal after the resident was identified
(`attempts.Refused`) is audited by the attempt's own request, in the booking route. When an attempt is
refused after identifying its resident, the slot it would have had may go to an attempt queued behind the
cut: those go back to the head of the queue for the next batch. A database error rolls the batch back,
and the group commit then decides each of its attempts again in a batch of its own, so the error answers
only its own attempt.

The leader's task, not a request, owns each batch's transaction: the batch serves many requests, and none
of them may commit or roll back the others' bookings.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import group_repository as batch_db
from cityhealth.booking import idempotency, messages, waitlist
from cityhealth.booking.attempts import (
    RESOURCE,
    Attempt,
    Refused,
    WriteResult,
    audit_booking,
    banned_error,
    booking_read,
    booking_values,
    check_caps,
    month_of,
    session_not_found,
    settle_audit,
)
from cityhealth.booking.availability import SlotGate, Transactions
from cityhealth.booking.channels import resident_not_found
from cityhealth.booking.idempotency import IdempotencyContext, in_flight_error
from cityhealth.booking.repository import DayBooking
from cityhealth.booking.slots import SessionSlots, is_sold_out, refusal
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.db.group_commit import Batch, GroupCommit, Requeue
from cityhealth.errors import DomainError
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher

logger = logging.getLogger(__name__)

Outcomes = list[WriteResult | BaseException | None]
HOLD_EXPIRY_ACTOR = "booking:hold_expiry"  # who expires a lapsed hold whose slot an attempt takes


@dataclass(frozen=True)
class WritePath:
    database: Database
    writes: Transactions  # the batches' transactions (availability.WriteEngine on PostgreSQL)
    clock: Clock
    cipher: FieldCipher
    gate: SlotGate
    committer: GroupCommit[Attempt, WriteResult]

    def key(self, session_id: int) -> tuple[int, int]:
        """The session's queue in this process's group committer."""
        return id(self.database), session_id


class _NothingWon(Exception):
    """No attempt of the batch gets a slot: roll back, so that nothing at all is written."""


async def decide_batch(path: WritePath, session_id: int, batch: Batch[Attempt, WriteResult],
                       ) -> list[WriteResult | BaseException]:
    """Decide the batch together: one result or refusal per attempt (raises when nothing could be written)."""
    attempts: list[Attempt] = []
    outcomes: Outcomes = []
    pools: list[SessionSlots] = []
    try:
        async with path.writes.transaction() as tx:
            await batch_db.lock_batch(tx, session_id)
            attempts = batch.take()
            outcomes.extend([None] * len(attempts))
            await _decide(tx, path, session_id, attempts, outcomes, pools)
    except _NothingWon:
        pass
    except Exception as error:
        # A database error (a unique-index backstop, a deadlock, a lost connection) or a bug: nothing of
        # the batch was written. The group commit decides each attempt again in a batch of its own, where
        # the error, if it is its own, stays its own. No message or parameter is logged: they can carry a
        # resident's identifiers.
        logger.warning("booking group commit of %d attempts failed (%s)", len(batch.take()), type(error).__name__)
        raise
    _observe(path, attempts, outcomes, pools[-1] if pools else None)
    return [RuntimeError("the group commit left an attempt undecided") if outcome is None else outcome
            for outcome in outcomes]


def _observe(path: WritePath, attempts: list[Attempt], outcomes: Outcomes, pool: SessionSlots | None) -> None:
    """Tell the gate what is left and give back the decided attempts' claims, in one step (no await
    between), so that an attempt arriving meanwhile is neither refused for claims already decided nor let
    in for slots already taken. Attempts already queued are left to the next batch: one queued ahead of
    them may still lose (the same resident twice), and its slot is then theirs."""
    if pool is not None:
        seen_at = time.monotonic()
        for channel in {attempt.channel for attempt in attempts}:
            path.gate.observe(pool.session_id, channel, pool.left(channel), seen_at)
    for attempt, outcome in zip(attempts, outcomes, strict=True):
        if attempt.claim is not None and not isinstance(outcome, Requeue):
            attempt.claim.release()


async def _decide(tx: AsyncSession, path: WritePath, session_id: int, batch: list[Attempt], outcomes: Outcomes,
                  pools: list[SessionSlots]) -> None:
    now = path.clock.now()
    if not batch:  # every request queued was cancelled meanwhile
        raise _NothingWon
    locked_keys = await batch_db.try_lock_keys(tx, [a.idem for a in batch])
    open_ = []
    for i, is_locked in enumerate(locked_keys):
        if is_locked:
            open_.append(i)
        else:
            outcomes[i] = in_flight_error()  # as the single path answers (audited by the route)
    pool, stored = await batch_db.stored_and_pool(tx, session_id, [batch[i].idem for i in open_], now)
    open_ = [i for i in open_ if not _replayed(batch[i], stored, outcomes, i)]
    if pool is None:
        for i in open_:
            outcomes[i] = settle_audit(session_not_found(session_id))
        raise _NothingWon
    pools.append(pool)
    candidates = _candidates(batch, open_, pool, now, outcomes)
    if not candidates:
        raise _NothingWon
    residents, created = await _identify(tx, path, batch, candidates, now, outcomes)
    day = batch[0].row["service_date"]
    locked = await batch_db.lock_day_and_pool(tx, session_id, residents.values(), day, reserve=len(candidates),
                                              now=now)
    if locked is None:
        raise RuntimeError(f"session {session_id} vanished under the batch")
    pools.append(locked.pool)
    winners = _hand_out(batch, candidates, residents, locked, now, outcomes)
    if not winners:
        raise _NothingWon
    await _write(tx, path, batch, winners, residents, locked, now, outcomes)
    await batch_db.drop_resident_days(tx, created - {residents[i] for i, _ in winners}, day)


def _replayed(attempt: Attempt, stored: batch_db.Stored, outcomes: Outcomes, i: int) -> bool:
    """A request with this key committed since the pre-check (in another process): its response, or 422."""
    found = stored.get((attempt.idem.subject, attempt.idem.key))
    if found is None:
        return False
    try:
        replay = idempotency.replay_of(attempt.idem, *found)
    except DomainError as error:
        outcomes[i] = error
        return True
    assert replay is not None  # noqa: S101 - a stored row always replays
    outcomes[i] = WriteResult(replay.status, replay.body, replayed=True)
    return True


def _refusal(pool: SessionSlots, attempt: Attempt, now: datetime) -> DomainError | None:
    return refusal(pool, attempt.rules, attempt.channel, now)


def _candidates(batch: list[Attempt], open_: list[int], pool: SessionSlots, now: datetime,
                outcomes: Outcomes) -> list[int]:
    """The attempts that fit in the pool as it stands, in queue order. Those behind the cut are refused
    before any personal data is read, unless a candidate's refusal may free a slot for them: then
    `_hand_out` sends them to the next batch instead."""
    trial = pool.copy()
    candidates = []
    for i in open_:
        error = _refusal(trial, batch[i], now)
        if error is None:
            trial.take(batch[i].channel)
            candidates.append(i)
        else:
            outcomes[i] = settle_audit(error)
    return candidates


async def _identify(tx: AsyncSession, path: WritePath, batch: list[Attempt], candidates: list[int], now: datetime,
                    outcomes: Outcomes) -> tuple[dict[int, int], set[int]]:
    """The candidates' residents (by index in the batch), found and not banned, their days locked; the
    others refused. Also the residents whose day row the locking created."""
    hashes: dict[int, str] = {}
    for i in candidates:
        target = batch[i].target
        if batch[i].caller.resident_id is None and target is not None:
            hashes[i] = path.cipher.lookup_hash(ID_NUMBER, target.number)
    found, created = await batch_db.identify(
        tx, now, [r for i in candidates if (r := batch[i].caller.resident_id) is not None], hashes.values(),
        batch[0].row["service_date"])
    by_id = {f.id: f for f in found}
    by_hash = {f.id_number_hash: f for f in found}
    identified: dict[int, int] = {}
    for i in candidates:
        resident_id = batch[i].caller.resident_id
        match = by_id.get(resident_id) if resident_id is not None else by_hash.get(hashes.get(i, ""))
        if match is None:
            outcomes[i] = resident_not_found(batch[i].target)
        elif match.banned_until is not None:
            outcomes[i] = Refused(match.id, banned_error(match.banned_until))
        else:
            identified[i] = match.id
    return identified, created


def _hand_out(batch: list[Attempt], candidates: list[int], residents: dict[int, int], locked: batch_db.LockedPool,
              now: datetime, outcomes: Outcomes) -> list[tuple[int, int]]:
    """Check each identified candidate's caps (counting the batch's earlier bookings of the same resident)
    and give it a slot from the locked row: [(index in the batch, slot number)]."""
    row = batch[0].row
    pool, day_bookings = locked.pool, locked.day_bookings
    winners: list[tuple[int, int]] = []
    for i in candidates:
        resident = residents.get(i)
        if resident is None:
            continue  # refused in _identify
        violation = check_caps(day_bookings[resident], row["department_id"], row["starts_at"], row["ends_at"])
        no_slot = None if violation is not None else _refusal(pool, batch[i], now)
        if violation is not None:
            outcomes[i] = Refused(resident, violation)
        elif no_slot is not None:
            # Taken meanwhile by a writer that is not a batch (a reschedule, a waitlist offer).
            outcomes[i] = Refused(resident, no_slot)
        else:
            winners.append((i, pool.take(batch[i].channel)))
            # A later attempt of the same resident in this batch counts this one (a negative, unused id).
            day_bookings[resident].append(DayBooking(-1 - i, row["department_id"], row["starts_at"], row["ends_at"]))
    if len(winners) < len(candidates):
        # Some candidates were refused, so the attempts refused behind the cut may fit after all: as many
        # as there are slots left go back to the head of the queue (they read no personal data and were
        # told nothing yet), and the next batch decides them first.
        cut, trial = set(candidates), pool.copy()
        for i, outcome in enumerate(outcomes):
            if (i not in cut and isinstance(outcome, DomainError) and is_sold_out(outcome)
                    and _refusal(trial, batch[i], now) is None):
                trial.take(batch[i].channel)
                outcomes[i] = Requeue()
    return winners


async def _write(tx: AsyncSession, path: WritePath, batch: list[Attempt], winners: list[tuple[int, int]],
                 residents: dict[int, int], locked: batch_db.LockedPool, now: datetime, outcomes: Outcomes) -> None:
    """The winners' bookings, counters, keys and audit events (one per booking, in its request's context)."""
    bookings: list[dict[str, Any]] = []
    responses: list[tuple[IdempotencyContext, str]] = []
    for (i, slot_no), booking_id in zip(winners, locked.booking_ids, strict=False):
        booking = {**booking_values(batch[i], residents[i], slot_no, now), "id": booking_id}
        body = booking_read(booking).model_dump_json()
        bookings.append(booking)
        responses.append((batch[i].idem, body))
        outcomes[i] = WriteResult(201, body)
    counts = Counter((batch[i].row["organization_id"], month_of(now), batch[i].channel, batch[i].caller.app_id or 0)
                     for i, _ in winners if not batch[i].hold)
    # The lapsed holds whose slots went to this batch, or whose residents it books (one booking per department
    # and day), expire now, in its transaction; those it did not need stay held in the row written (the
    # sweeper tidies them and offers their slots to the waitlist).
    written, taken = locked.pool.copy(), {slot for _, slot in winners}
    booked_residents = {residents[i] for i, _ in winners}
    for hold in locked.pool.lapsed:
        if hold.slot_no not in taken and hold.resident_id not in booked_residents:
            written.keep(hold)
    await batch_db.expire_lapsed(tx, written.lapsed, now)
    freed = await waitlist.expire_lapsed_holds(tx, path.clock, locked.lapsed_elsewhere_of(booked_residents),
                                               HOLD_EXPIRY_ACTOR)
    await batch_db.write_batch(tx, path.clock, batch_db.BatchWrites(
        written, locked.booked_read, max(taken), bookings, dict(counts), responses))
    await waitlist.offer_freed(tx, path.clock, freed)
    for hold in written.lapsed:
        record(tx, path.clock, None, Action.UPDATE, RESOURCE, resource_id=hold.booking_id,
               resident_ids=[hold.resident_id], detail="hold expired", actor=HOLD_EXPIRY_ACTOR)
    for (i, _), booking in zip(winners, bookings, strict=True):
        audit_booking(tx, path.clock, batch[i], booking["id"], residents[i])
    await messages.booked(tx, now, [b for (i, _), b in zip(winners, bookings, strict=True) if not batch[i].hold])
