"""Patient linkage: each uploading unit's patient identity tied to one resident of the master index, and every
stored record placed in the shared record's index as it is linked.

A patient-master (or health-record) record with a valid resident ID number is linked through the master index's
keyed hash of the number, found by `registry.service` (the plain number lives only in memory while hashed); the
number is refused as a link when the index does not know it, or knows it under another surname (a conflict, kept
and reported, not linked). Without a valid ID number the record is scored against the candidates the index
blocks on (records/scoring.py): a link above the threshold, the review queue in the band, nothing below.

The linker follows the stored records in the order received (collection.service.records_received_after), a page
per transaction, from a cursor kept in the same transaction as the page's work; each page starts LAG before the
cursor, since a batch received earlier may commit later. Re-reading a record changes nothing (its version is
already indexed), so a rebuild is the same pass from the beginning over an emptied index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection import service as collection
from cityhealth.records import repository
from cityhealth.records.models import LinkCursor, LinkEvent, LinkReview, PatientLink, TimelineEntry
from cityhealth.records.scoring import REVIEW_AT, Agreement, Score, Traits, compare
from cityhealth.records.timeline import IDENTITY_FORMS, LINKED_FORMS, identity_key, placement
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher

CURSOR = "timeline"
LAG = timedelta(minutes=2)
LINKER = "records-linker"  # the actor of automatic link events
_BEGINNING = (datetime(2000, 1, 1, tzinfo=UTC), 0, "", "")


@dataclass
class PassCounts:
    read: int = 0
    indexed: int = 0
    linked: int = 0
    queued: int = 0
    unlinked: int = 0

    def add(self, other: PassCounts) -> None:
        self.read += other.read
        self.indexed += other.indexed
        self.linked += other.linked
        self.queued += other.queued
        self.unlinked += other.unlinked


@dataclass
class Page:
    """What a page's records need from the index, read in three statements rather than a few per record, and
    kept current as the page is taken."""

    entries: dict[tuple[int, str, str], TimelineEntry]
    links: dict[tuple[int, str], PatientLink]
    owners: dict[tuple[int, str, str], str | None]

    @classmethod
    async def read(cls, session: AsyncSession, records: list[collection.StoredRecord]) -> Page:
        places = [(record, placement(record.form, record.fields)) for record in records]
        identities = {(r.organization_id, key) for r in records
                      if r.form in IDENTITY_FORMS and (key := identity_key(r.form, r.fields)) is not None}
        identities |= {(r.organization_id, p.patient_key) for r, p in places if p is not None and p.patient_key}
        encounters = {(r.organization_id, p.encounter_kind, p.encounter_no) for r, p in places
                      if p is not None and p.encounter_kind in ("visit", "admission") and p.encounter_no}
        owners = await repository.encounter_owners(session, encounters)
        identities |= {(org, key) for (org, _, _), key in owners.items() if key}
        return cls(entries=await repository.timeline_entries(
                       session, {(r.organization_id, r.form, r.record_id) for r in records}),
                   links=await repository.links_for(session, identities), owners=owners)


@dataclass(frozen=True)
class Decision:
    status: str  # linked | review | unlinked
    resident_id: int | None = None
    method: str | None = None
    score: float | None = None
    reason: str | None = None
    candidates: tuple[tuple[int, Score], ...] = ()


async def start_key(session: AsyncSession) -> tuple[datetime, int, str, str]:
    """Where a linker run begins: LAG before the cursor (the beginning when there is none)."""
    cursor = await repository.cursor(session, CURSOR)
    if cursor is None:
        return _BEGINNING
    return (cursor.received_at - LAG, 0, "", "")


async def link_page(session: AsyncSession, clock: Clock, cipher: FieldCipher, after: tuple[datetime, int, str, str],
                    limit: int) -> tuple[tuple[datetime, int, str, str], PassCounts]:
    """Link and index the next page of stored records after `after`; the key to go on from, and the counts."""
    records = await collection.records_received_after(session, cipher, after, LINKED_FORMS, limit)
    counts = PassCounts(read=len(records))
    page = await Page.read(session, records)
    for record in records:
        await _take(session, clock, cipher, record, counts, page)
    if not records:
        return after, counts
    last = records[-1].key
    cursor = await repository.cursor(session, CURSOR)
    if cursor is None:
        repository.add(session, LinkCursor(name=CURSOR, received_at=last[0], organization_id=last[1], form=last[2],
                                           record_id=last[3], updated_at=clock.now()))
    elif last[0] >= cursor.received_at:  # a page re-read within LAG never moves the cursor back
        cursor.received_at, cursor.organization_id, cursor.form, cursor.record_id = last
        cursor.updated_at = clock.now()
    await session.flush()
    return last, counts


async def clear_index(session: AsyncSession) -> None:
    """Empty the timeline index and its cursor before a rebuild; the links and their history are kept."""
    await repository.clear_index(session, CURSOR)


async def _take(session: AsyncSession, clock: Clock, cipher: FieldCipher, record: collection.StoredRecord,
                counts: PassCounts, page: Page) -> None:
    if record.form in IDENTITY_FORMS and record.action != 3:
        key = identity_key(record.form, record.fields)
        if key is not None:
            outcome = await link_identity(session, clock, cipher, record, key)
            link = await repository.get_link(session, record.organization_id, key)  # in the session already
            if link is not None:
                page.links[(record.organization_id, key)] = link
            if outcome == "linked":
                counts.linked += 1
            elif outcome == "review":
                counts.queued += 1
            elif outcome == "unlinked":
                counts.unlinked += 1
    if await _index(session, record, page):
        counts.indexed += 1


async def _index(session: AsyncSession, record: collection.StoredRecord, page: Page) -> bool:
    """Place (or replace, or remove when revoked) the record in the timeline; False when already there."""
    key = (record.organization_id, record.form, record.record_id)
    existing = page.entries.get(key)
    if existing is not None and existing.version == record.version:
        return False
    place = placement(record.form, record.fields)
    if place is None:
        return False
    if record.action == 3:
        if existing is not None:
            await repository.delete_timeline_entry(session, record.organization_id, record.form, record.record_id)
            page.entries.pop(key)
            return True
        return False
    patient_key = place.patient_key
    if patient_key is None and place.encounter_kind in ("visit", "admission") and place.encounter_no:
        patient_key = page.owners.get((record.organization_id, place.encounter_kind, place.encounter_no))
    link = page.links.get((record.organization_id, patient_key)) if patient_key is not None else None
    resident_id = link.resident_id if link is not None and link.status == "linked" else None
    entry = existing or TimelineEntry(organization_id=record.organization_id, form=record.form,
                                      record_id=record.record_id)
    entry.version = record.version
    entry.category = place.category
    entry.encounter_kind, entry.encounter_no = place.encounter_kind, place.encounter_no
    entry.owns_encounter = place.owns_encounter
    entry.patient_key, entry.resident_id = patient_key, resident_id
    entry.event_time = record.event_time
    entry.summary = place.summary
    if existing is None:
        repository.add(session, entry)
        page.entries[key] = entry
    if place.owns_encounter and place.encounter_kind in ("visit", "admission") and place.encounter_no:
        page.owners[(record.organization_id, place.encounter_kind, place.encounter_no)] = patient_key
    if place.owns_encounter and place.encounter_kind in ("visit", "admission") and place.encounter_no and patient_key:
        await session.flush()  # the session does not autoflush: the records taken before must be in the table
        await repository.adopt_encounter(session, record.organization_id, place.encounter_kind, place.encounter_no,
                                         patient_key, resident_id)
    return True


async def link_identity(session: AsyncSession, clock: Clock, cipher: FieldCipher, record: collection.StoredRecord,
                        patient_key: str) -> str | None:
    """Decide a patient identity's link from its master record; None when nothing changed (already decided on
    this version, or an operator's decision, which automation never overrides)."""
    link = await repository.lock_link(session, record.organization_id, patient_key)
    if link is not None and (link.method == "operator" or (
            link.source_form == record.form and link.source_record_id == record.record_id
            and link.source_version == record.version)):
        return None
    decision = await decide(session, clock, cipher, record.fields)
    now = clock.now()
    if decision.status == "review":
        for resident_id, score in decision.candidates:
            if not await repository.review_exists(session, record.organization_id, patient_key, resident_id,
                                                  record.version):
                repository.add(session, LinkReview(
                    organization_id=record.organization_id, patient_key=patient_key, resident_id=resident_id,
                    source_version=record.version, score=score.total,
                    agreements={name: value.value for name, value in score.agreements.items()},
                    status="open", created_at=now))
    new = link is None
    if link is None:
        link = PatientLink(organization_id=record.organization_id, patient_key=patient_key)
        repository.add(session, link)
    link.source_form, link.source_record_id, link.source_version = record.form, record.record_id, record.version
    await set_link(session, now, link, decision, actor=LINKER, new=new)
    return decision.status


async def set_link(session: AsyncSession, now: datetime, link: PatientLink, decision: Decision, *, actor: str,
                   new: bool = False, note: str | None = None, event_kind: str | None = None) -> PatientLink:
    """Write a patient identity's link, its history event when it moved, and re-point its indexed records."""
    before = link.resident_id if not new and link.status == "linked" else None
    before_status = None if new else link.status
    link.status, link.resident_id = decision.status, decision.resident_id
    link.method, link.score, link.reason = decision.method, decision.score, decision.reason
    link.updated_at = now
    await session.flush()
    if (before, before_status) != (decision.resident_id, decision.status) or event_kind is not None:
        kind = event_kind or {"linked": "linked", "review": "queued", "unlinked": "unlinked"}[decision.status]
        repository.add(session, LinkEvent(
            organization_id=link.organization_id, patient_key=link.patient_key, kind=kind, from_resident_id=before,
            to_resident_id=decision.resident_id, method=decision.method, score=decision.score, actor=actor,
            note=note or decision.reason, occurred_at=now))
    if before != decision.resident_id:
        await repository.assign_resident(session, link.organization_id, link.patient_key, decision.resident_id)
    if decision.status == "linked":
        await repository.supersede_reviews(session, link.organization_id, link.patient_key, now, actor)
    await session.flush()
    return link


async def decide(session: AsyncSession, clock: Clock, cipher: FieldCipher, fields: dict[str, Any]) -> Decision:
    """The link a patient-master or health-record record's fields call for."""
    number = fields.get("id_number")
    id_type = fields.get("id_type_code", "01")  # the health record's number is always a resident ID number
    number_hash = (registry.id_number_hash(cipher, clock, number)
                   if id_type == "01" and isinstance(number, str) and number else None)
    traits = _traits(cipher, fields)
    if number_hash is not None:
        resident_id = (await registry.resident_ids_by_id_number_hash(session, [number_hash])).get(number_hash)
        if resident_id is None:
            return Decision("unlinked", reason="id_number.not_in_index")
        resident = await registry.resident_traits(session, resident_id)
        if resident is None or compare(traits, _resident_traits(resident)).agreements["name"] is Agreement.DISAGREE:
            # One number, another person's surname: a typing error in either place, or a borrowed card.
            return Decision("unlinked", reason="id_number.conflict")
        return Decision("linked", resident_id=resident_id, method="id_number")
    candidates = await registry.link_candidates(session, name=traits.name, birth_date=traits.birth_date,
                                                phone_hash=traits.phone_hash)
    scored = sorted(((row.id, compare(traits, _resident_traits(row))) for row in candidates),
                    key=lambda pair: (-pair[1].total, pair[0]))
    if not scored or scored[0][1].total < REVIEW_AT:
        return Decision("unlinked", score=scored[0][1].total if scored else None, reason="score.below_review")
    best_id, best = scored[0]
    runner_up = scored[1][1] if len(scored) > 1 else None
    if best.decision == "link" and (runner_up is None or runner_up.decision != "link"):
        return Decision("linked", resident_id=best_id, method="score", score=best.total)
    band = tuple(pair for pair in scored if pair[1].total >= REVIEW_AT)
    reason = "score.ambiguous" if best.decision == "link" else "score.review_band"
    return Decision("review", score=best.total, reason=reason, candidates=band)


def _traits(cipher: FieldCipher, fields: dict[str, Any]) -> Traits:
    phone = fields.get("phone")
    sex = fields.get("sex_code")
    return Traits(
        name=fields.get("name") or None,
        sex=int(sex) if isinstance(sex, str) and sex.isdigit() else None,
        birth_date=_date(fields.get("birth_date")),
        phone_hash=registry.phone_hash(cipher, phone) if isinstance(phone, str) and phone else None,
        address_area=fields.get("address_area_code") or None,
    )


def _resident_traits(row: registry.ResidentTraits) -> Traits:
    return Traits(row.name, row.sex, row.birth_date, row.phone_hash, row.address_area_code)


def _date(value: Any) -> date | None:
    """A birth date as sent: yyyyMMdd, or ISO 8601."""
    if not isinstance(value, str):
        return None
    digits = value[:10].replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
