"""A real-time batch of originals on PostgreSQL: inserted first, the keys already stored decided after.

Most real-time batches are new records: every row an original (action 1), no key twice, none stored yet. For
those, ingest.py used to probe the stored keys (one round trip) and then insert (another). Here the insert goes
first, and a key that is already stored keeps its row (`ON CONFLICT DO NOTHING`); the statement returns the keys
it inserted. Each of those is a version 1, as ingest._decide says of an original without a stored version. Only
when some key was stored already are those keys probed and decided as before (a duplicate, or a rejection:
`action.exists`, `record.revoked`); nothing of theirs is written. The unit's write lock is held throughout, as
for the probe, so the store cannot change between the insert and that probe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.prepare import Candidate
from cityhealth.collection.public_health import PROGRAM_OF_FORM
from cityhealth.collection.repository import stored_records
from cityhealth.collection.repository.dialect import is_postgres
from cityhealth.collection.repository.organizations import Sender
from cityhealth.collection.repository.stored_records import StoredState

# form -> the field naming the health record its records hold (public_health.held_number)
_NUMBER_FIELDS = {form: name for form, (_, name) in PROGRAM_OF_FORM.items()}


def inserted_first(session: AsyncSession, candidates: list[Candidate], dry_run: bool) -> bool:
    """Whether this round is stored by store_originals, with no probe before it: PostgreSQL, written, at most
    JSON_INSERT_MAX_ROWS originals, none with a bulk COPY row."""
    return (
        not dry_run
        and 0 < len(candidates) <= stored_records.JSON_INSERT_MAX_ROWS
        and all(candidate.action == 1 and candidate.copy_row is None for candidate in candidates)
        and is_postgres(session)
    )


def new_row(candidate: Candidate) -> tuple[Any, ...]:
    """An accepted new record as stored_records.insert_records takes it (NEW_RECORD_FIELDS order)."""
    code = candidate.form.code
    number_field = _NUMBER_FIELDS.get(code)  # held_number(), without a call for the forms holding none
    return (
        code,
        candidate.record_id,
        candidate.action,
        candidate.digest,
        candidate.payload,
        candidate.event_time,
        candidate.event_month,
        candidate.conformance,
        candidate.conformance_month,
        None if number_field is None else str(candidate.record[number_field]),
    )


async def store_originals(
    session: AsyncSession,
    sender: Sender,
    accepted: list[Candidate],
    received_at: datetime,
    job_id: int | None,
    decide: Callable[[Candidate, StoredState | None], bool],
) -> list[Candidate]:
    """Store a round of originals, each already decided as a new record (inserted_first() said so); the ones
    that stand, in order. A key found stored is decided against its stored state by `decide` (ingest._decide,
    which rejects through its own callback), and kept only if it stands (as a duplicate)."""
    inserted = await stored_records.insert_unless_stored(
        session, sender.id, received_at, job_id, [new_row(candidate) for candidate in accepted]
    )
    if len(inserted) == len(accepted):
        return accepted
    stored = [candidate for candidate in accepted if (candidate.form.code, candidate.record_id) not in inserted]
    keys = [(candidate.form.code, candidate.record_id) for candidate in stored]
    state = await stored_records.existing_records(session, sender.id, keys)
    standing = set()
    for candidate, key in zip(stored, keys, strict=True):
        previous = state.get(key)
        if previous is None:  # the insert met this key, so it is stored: the probe cannot miss it
            raise RuntimeError(f"record {key} was neither inserted nor found stored")
        if decide(candidate, previous):
            standing.add(key)
    return [
        candidate
        for candidate in accepted
        if (key := (candidate.form.code, candidate.record_id)) in inserted or key in standing
    ]
