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

A page is taken set-wise: its identities' links are read (and locked) in one statement, decided together (the ID
numbers' residents in two statements; only a record without a usable number costs its own blocking queries),
written back, and then its records are placed in the index with the page's final links, with one executemany per
kind of change. A record taken before its visit's or admission's own record, in the page or an earlier one, gets
that encounter's patient identity from it when it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection import service as collection
from cityhealth.records import repository
from cityhealth.records.models import LinkCursor, LinkEvent, LinkReview, PatientLink, TimelineEntry
from cityhealth.records.scoring import REVIEW_AT, Agreement, Score, Traits, compare
from cityhealth.records.timeline import IDENTITY_FORMS, LINKED_FORMS, Placement, identity_key, placement
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher

CURSOR = "timeline"
LAG = timedelta(minutes=2)
LINKER = "records-linker"  # the actor of automatic link events
_BEGINNING = (datetime(2000, 1, 1, tzinfo=UTC), 0, "", "")
_ENCOUNTERS = ("visit", "admission")

Identity = tuple[int, str]  # (organization, patient key)
Encounter = tuple[int, str, str]  # (organization, visit | admission, its number)


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


@dataclass(frozen=True)
class Decision:
    status: str  # linked | review | unlinked
    resident_id: int | None = None
    method: str | None = None
    score: float | None = None
    reason: str | None = None
    candidates: tuple[tuple[int, Score], ...] = ()


@dataclass(frozen=True)
class Change:
    """A patient identity's link as it was (None, None for a new one) and as decided."""

    identity: Identity
    before_resident: int | None  # the resident it was linked to, if it was linked
    before_status: str | None
    decision: Decision


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
    if not records:
        return after, counts
    now = clock.now()
    links = await _link_identities(session, clock, cipher, now, records, counts)
    counts.indexed = await _index(session, records, links)
    last = records[-1].key
    cursor = await repository.cursor(session, CURSOR)
    if cursor is None:
        repository.add(session, LinkCursor(name=CURSOR, received_at=last[0], organization_id=last[1], form=last[2],
                                           record_id=last[3], updated_at=now))
    elif last[0] >= cursor.received_at:  # a page re-read within LAG never moves the cursor back
        cursor.received_at, cursor.organization_id, cursor.form, cursor.record_id = last
        cursor.updated_at = now
    await session.flush()
    return last, counts


async def clear_index(session: AsyncSession) -> None:
    """Empty the timeline index and its cursor before a rebuild; the links and their history are kept."""
    await repository.clear_index(session, CURSOR)


async def _link_identities(session: AsyncSession, clock: Clock, cipher: FieldCipher, now: datetime,
                           records: Sequence[collection.StoredRecord], counts: PassCounts) -> dict[Identity, Any]:
    """Decide the links the page's patient-master and health-record records call for; the links of every identity
    they declare, as they now stand (rows of records_patient_links)."""
    declared: dict[Identity, collection.StoredRecord] = {}
    for record in records:  # in the order received: a later record of one identity decides it
        if record.form in IDENTITY_FORMS and record.action != 3:
            key = identity_key(record.form, record.fields)
            if key is not None:
                declared[(record.organization_id, key)] = record
    links = await repository.lock_links(session, declared)
    pending = [(identity, record) for identity, record in declared.items()
               if not _decided(links.get(identity), record)]
    decisions = await decide(session, clock, cipher, [record.fields for _, record in pending])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[Change] = []
    candidates: list[tuple[int, str, int, int, Score]] = []
    for (identity, record), decision in zip(pending, decisions, strict=True):
        link = links.get(identity)
        row = {"organization_id": identity[0], "patient_key": identity[1], "status": decision.status,
               "resident_id": decision.resident_id, "method": decision.method, "score": decision.score,
               "reason": decision.reason, "source_form": record.form, "source_record_id": record.record_id,
               "source_version": record.version, "updated_at": now}
        (updates if link is not None else inserts).append(row)
        changes.append(Change(identity, link.resident_id if link is not None and link.status == "linked" else None,
                              link.status if link is not None else None, decision))
        candidates += [(*identity, resident_id, record.version, score) for resident_id, score in decision.candidates]
        counts.linked += decision.status == "linked"
        counts.queued += decision.status == "review"
        counts.unlinked += decision.status == "unlinked"
    present = await repository.reviews_present(session, [candidate[:4] for candidate in candidates])
    await repository.insert_rows(session, LinkReview, [
        {"organization_id": org, "patient_key": key, "resident_id": resident_id, "source_version": version,
         "score": score.total, "agreements": {name: value.value for name, value in score.agreements.items()},
         "status": "open", "created_at": now}
        for org, key, resident_id, version, score in candidates if (org, key, resident_id, version) not in present])
    await repository.insert_rows(session, PatientLink, inserts)
    await repository.update_rows(session, PatientLink, updates)
    await record_changes(session, now, changes, actor=LINKER)
    return {**links, **{(row["organization_id"], row["patient_key"]): _LinkRow(row) for row in inserts + updates}}


class _LinkRow:
    """A link row as the page just wrote it (what the index reads of it)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.status: str = row["status"]
        self.resident_id: int | None = row["resident_id"]


def _decided(link: Any, record: collection.StoredRecord) -> bool:
    """Nothing to decide: an operator's decision, which automation never overrides, or this version's already."""
    return link is not None and (link.method == "operator" or (
        link.source_form == record.form and link.source_record_id == record.record_id
        and link.source_version == record.version))


async def record_changes(session: AsyncSession, now: datetime, changes: Sequence[Change], *, actor: str,
                         note: str | None = None, event_kind: str | None = None) -> None:
    """What follows a link's change (its rows written by the caller): the history event of each one that moved,
    its indexed records pointed at the new resident, and its open reviews closed when it is linked."""
    events = []
    for change in changes:
        decision = change.decision
        if (change.before_resident, change.before_status) != (decision.resident_id, decision.status) \
                or event_kind is not None:
            events.append({
                "organization_id": change.identity[0], "patient_key": change.identity[1],
                "kind": event_kind or {"linked": "linked", "review": "queued", "unlinked": "unlinked"}[decision.status],
                "from_resident_id": change.before_resident, "to_resident_id": decision.resident_id,
                "method": decision.method, "score": decision.score, "actor": actor,
                "note": note or decision.reason, "occurred_at": now})
    await repository.insert_rows(session, LinkEvent, events)
    await repository.assign_residents(session, [(*change.identity, change.decision.resident_id) for change in changes
                                                if change.before_resident != change.decision.resident_id])
    await repository.supersede_reviews_of(session, [change.identity for change in changes
                                                    if change.decision.status == "linked"], now, actor)


async def set_link(session: AsyncSession, now: datetime, link: PatientLink, decision: Decision, *, actor: str,
                   note: str | None = None, event_kind: str | None = None) -> PatientLink:
    """An operator's decision on one patient identity's link (a loaded, locked row), and what follows it."""
    change = Change((link.organization_id, link.patient_key), link.resident_id if link.status == "linked" else None,
                    link.status, decision)
    link.status, link.resident_id = decision.status, decision.resident_id
    link.method, link.score, link.reason = decision.method, decision.score, decision.reason
    link.updated_at = now
    await session.flush()
    await record_changes(session, now, [change], actor=actor, note=note, event_kind=event_kind)
    return link


async def _index(session: AsyncSession, records: Sequence[collection.StoredRecord], links: dict[Identity, Any]
                 ) -> int:
    """Place (or replace, or remove when revoked) the page's records in the timeline; how many changed."""
    indexed = await repository.timeline_versions(
        session, {(record.organization_id, record.form, record.record_id) for record in records})
    places: list[tuple[collection.StoredRecord, Placement]] = []
    gone: list[tuple[int, str, str]] = []
    for record in records:
        key = (record.organization_id, record.form, record.record_id)
        if indexed.get(key) == record.version:
            continue
        place = placement(record.form, record.fields)
        if place is None:
            continue
        if record.action == 3:
            if key in indexed:
                gone.append(key)
            continue
        places.append((record, place))
    owners = await _owners(session, places)
    identities = {(record.organization_id, patient) for record, place in places
                  if (patient := place.patient_key or _owner(owners, record, place)) is not None}
    residents = {identity: _resident(link) for identity, link in links.items()}
    residents |= await repository.link_states(session, identities - residents.keys())
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    adopted: list[tuple[int, str, str, str, int | None]] = []
    for record, place in places:
        patient_key = place.patient_key or _owner(owners, record, place)
        resident_id = residents.get((record.organization_id, patient_key)) if patient_key is not None else None
        row = {"organization_id": record.organization_id, "form": record.form, "record_id": record.record_id,
               "version": record.version, "category": place.category, "encounter_kind": place.encounter_kind,
               "encounter_no": place.encounter_no, "owns_encounter": place.owns_encounter,
               "patient_key": patient_key, "resident_id": resident_id, "event_time": record.event_time,
               "summary": place.summary}
        (updates if (record.organization_id, record.form, record.record_id) in indexed else inserts).append(row)
        if place.owns_encounter and place.encounter_kind in _ENCOUNTERS and place.encounter_no and patient_key:
            adopted.append((record.organization_id, place.encounter_kind, place.encounter_no, patient_key,
                            resident_id))
    await repository.delete_timeline_entries(session, gone)
    await repository.adopt_encounters(session, adopted)  # the encounter's records of earlier pages
    await repository.update_rows(session, TimelineEntry, updates)
    await repository.insert_rows(session, TimelineEntry, inserts)
    return len(gone) + len(updates) + len(inserts)


async def _owners(session: AsyncSession, places: Sequence[tuple[collection.StoredRecord, Placement]]
                  ) -> dict[Encounter, str | None]:
    """The patient identity of each visit and admission the page's records belong to: from its own record, in
    this page (the latest) or already indexed."""
    wanted = {(record.organization_id, place.encounter_kind, place.encounter_no) for record, place in places
              if place.encounter_kind in _ENCOUNTERS and place.encounter_no and not place.owns_encounter}
    in_page: dict[Encounter, str | None] = {}
    for record, place in places:
        if place.owns_encounter and place.encounter_kind in _ENCOUNTERS and place.encounter_no:
            in_page[(record.organization_id, place.encounter_kind, place.encounter_no)] = place.patient_key
    return await repository.encounter_owners(session, wanted - in_page.keys()) | in_page


def _owner(owners: dict[Encounter, str | None], record: collection.StoredRecord, place: Placement) -> str | None:
    if place.encounter_kind not in _ENCOUNTERS or not place.encounter_no or place.owns_encounter:
        return None
    return owners.get((record.organization_id, place.encounter_kind, place.encounter_no))


def _resident(link: Any) -> int | None:
    return link.resident_id if link.status == "linked" else None


async def decide(session: AsyncSession, clock: Clock, cipher: FieldCipher, fields: Sequence[dict[str, Any]]
                 ) -> list[Decision]:
    """The link each patient-master or health-record record's fields call for: those with a valid resident ID
    number through the master index in two statements for all; the others each scored against its candidates."""
    traits = [_traits(cipher, one) for one in fields]
    hashes = [_number_hash(cipher, clock, one) for one in fields]
    by_hash = await registry.resident_ids_by_id_number_hash(session, {h for h in hashes if h is not None})
    residents = await registry.residents_traits(session, set(by_hash.values()))
    decisions = []
    for record_traits, number_hash in zip(traits, hashes, strict=True):
        if number_hash is None:
            decisions.append(await _scored(session, record_traits))
            continue
        resident_id = by_hash.get(number_hash)
        resident = residents.get(resident_id) if resident_id is not None else None
        if resident_id is None:
            decisions.append(Decision("unlinked", reason="id_number.not_in_index"))
        elif resident is None or compare(record_traits, _resident_traits(resident)).agreements["name"] \
                is Agreement.DISAGREE:
            # One number, another person's surname: a typing error in either place, or a borrowed card.
            decisions.append(Decision("unlinked", reason="id_number.conflict"))
        else:
            decisions.append(Decision("linked", resident_id=resident_id, method="id_number"))
    return decisions


def _number_hash(cipher: FieldCipher, clock: Clock, fields: dict[str, Any]) -> str | None:
    number = fields.get("id_number")
    id_type = fields.get("id_type_code", "01")  # the health record's number is always a resident ID number
    if id_type != "01" or not isinstance(number, str) or not number:
        return None
    return registry.id_number_hash(cipher, clock, number)


async def _scored(session: AsyncSession, traits: Traits) -> Decision:
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
