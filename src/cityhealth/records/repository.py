"""Every query of the records room: links and their history, the review queue, the timeline index, consents
and the access log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, exists, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db import keyed
from cityhealth.records.models import (
    AccessLogEntry,
    Consent,
    LinkCursor,
    LinkEvent,
    LinkReview,
    PatientLink,
    TimelineEntry,
)

# --- links ---------------------------------------------------------------------------------------------------


async def get_link(session: AsyncSession, organization_id: int, patient_key: str) -> PatientLink | None:
    return await session.get(PatientLink, (organization_id, patient_key))


async def lock_link(session: AsyncSession, organization_id: int, patient_key: str) -> PatientLink | None:
    """The link row, locked against a concurrent operator's or linker's change (PostgreSQL; SQLite serialises)."""
    return await session.scalar(select(PatientLink).where(PatientLink.organization_id == organization_id,
                                                          PatientLink.patient_key == patient_key)
                                .with_for_update().execution_options(populate_existing=True))


async def links_by_status(session: AsyncSession, status: str, after: tuple[int, str] | None,
                          limit: int) -> list[PatientLink]:
    statement = select(PatientLink).where(PatientLink.status == status)
    if after is not None:
        statement = statement.where(
            (PatientLink.organization_id > after[0])
            | and_(PatientLink.organization_id == after[0], PatientLink.patient_key > after[1]))
    statement = statement.order_by(PatientLink.organization_id, PatientLink.patient_key).limit(limit)
    return list((await session.scalars(statement)).all())


async def links_of_resident(session: AsyncSession, resident_id: int) -> list[PatientLink]:
    return list((await session.scalars(select(PatientLink).where(PatientLink.resident_id == resident_id)
                                       .order_by(PatientLink.organization_id, PatientLink.patient_key))).all())


def add(session: AsyncSession, row: Any) -> None:
    session.add(row)


async def link_events(session: AsyncSession, organization_id: int, patient_key: str) -> list[LinkEvent]:
    return list((await session.scalars(select(LinkEvent).where(LinkEvent.organization_id == organization_id,
                                                               LinkEvent.patient_key == patient_key)
                                       .order_by(LinkEvent.id))).all())


# --- review queue --------------------------------------------------------------------------------------------


async def open_reviews(session: AsyncSession, after_id: int, limit: int) -> list[LinkReview]:
    return list((await session.scalars(select(LinkReview).where(LinkReview.status == "open", LinkReview.id > after_id)
                                       .order_by(LinkReview.id).limit(limit))).all())


async def lock_review(session: AsyncSession, review_id: int) -> LinkReview | None:
    return await session.scalar(select(LinkReview).where(LinkReview.id == review_id).with_for_update()
                                .execution_options(populate_existing=True))


# --- timeline ------------------------------------------------------------------------------------------------


async def count_identity_records(session: AsyncSession, organization_id: int, patient_key: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(TimelineEntry).where(
        TimelineEntry.organization_id == organization_id, TimelineEntry.patient_key == patient_key)) or 0)


async def resident_timeline(session: AsyncSession, resident_id: int, *, categories: Sequence[str],
                            before: tuple[datetime, int, str, str] | None, limit: int) -> list[TimelineEntry]:
    statement = select(TimelineEntry).where(TimelineEntry.resident_id == resident_id,
                                            TimelineEntry.category.in_(categories))
    if before is not None:
        moment, organization_id, form, record_id = before
        statement = statement.where(
            (TimelineEntry.event_time < moment)
            | and_(TimelineEntry.event_time == moment,
                   tuple_(TimelineEntry.organization_id, TimelineEntry.form, TimelineEntry.record_id)
                   < tuple_(organization_id, form, record_id)))
    statement = statement.order_by(TimelineEntry.event_time.desc(), TimelineEntry.organization_id.desc(),
                                   TimelineEntry.form.desc(), TimelineEntry.record_id.desc()).limit(limit)
    return list((await session.scalars(statement)).all())


async def latest_of_categories(session: AsyncSession, resident_id: int, categories: Sequence[str],
                               limit: int) -> list[TimelineEntry]:
    return await resident_timeline(session, resident_id, categories=categories, before=None, limit=limit)


async def open_admission(session: AsyncSession, resident_id: int, organization_id: int) -> str | None:
    """An admission of the resident at the organization without a discharge record yet."""
    admission = TimelineEntry
    return await session.scalar(select(admission.encounter_no).where(
        admission.resident_id == resident_id, admission.organization_id == organization_id,
        admission.form == "admission",
        ~exists().where(TimelineEntry.organization_id == admission.organization_id,
                        TimelineEntry.form == "discharge", TimelineEntry.encounter_kind == "admission",
                        TimelineEntry.encounter_no == admission.encounter_no),
    ).order_by(admission.event_time.desc()).limit(1))


async def visit_since(session: AsyncSession, resident_id: int, organization_id: int, since: datetime) -> str | None:
    return await session.scalar(select(TimelineEntry.encounter_no).where(
        TimelineEntry.resident_id == resident_id, TimelineEntry.organization_id == organization_id,
        TimelineEntry.form == "outpatient_visit", TimelineEntry.event_time >= since,
    ).order_by(TimelineEntry.event_time.desc()).limit(1))


# --- the linker's cursor -------------------------------------------------------------------------------------


async def cursor(session: AsyncSession, name: str) -> LinkCursor | None:
    return await session.scalar(select(LinkCursor).where(LinkCursor.name == name).with_for_update()
                                .execution_options(populate_existing=True))


async def clear_index(session: AsyncSession, name: str) -> None:
    """Forget the timeline and the cursor (a rebuild); links and their history stay."""
    await session.execute(delete(TimelineEntry))
    await session.execute(delete(LinkCursor).where(LinkCursor.name == name))


# --- consents and the access log -----------------------------------------------------------------------------


async def live_consent(session: AsyncSession, resident_id: int, organization_id: int, now: datetime) -> int | None:
    return await session.scalar(select(Consent.id).where(
        Consent.resident_id == resident_id, Consent.organization_id == organization_id,
        Consent.revoked_at.is_(None), Consent.granted_at <= now, Consent.expires_at > now,
    ).order_by(Consent.expires_at.desc()).limit(1))


async def consents_of(session: AsyncSession, resident_id: int) -> list[Consent]:
    return list((await session.scalars(select(Consent).where(Consent.resident_id == resident_id)
                                       .order_by(Consent.id.desc()))).all())


async def consent(session: AsyncSession, consent_id: int) -> Consent | None:
    return await session.get(Consent, consent_id)


async def access_log(session: AsyncSession, resident_id: int, before_id: int | None,
                     limit: int) -> list[AccessLogEntry]:
    statement = select(AccessLogEntry).where(AccessLogEntry.resident_id == resident_id)
    if before_id is not None:
        statement = statement.where(AccessLogEntry.id < before_id)
    return list((await session.scalars(statement.order_by(AccessLogEntry.id.desc()).limit(limit))).all())


async def break_glass_entries(session: AsyncSession, *, unreviewed: bool, limit: int) -> list[AccessLogEntry]:
    statement = select(AccessLogEntry).where(AccessLogEntry.reason_kind == "break_glass")
    if unreviewed:
        statement = statement.where(AccessLogEntry.reviewed_at.is_(None))
    return list((await session.scalars(statement.order_by(AccessLogEntry.id).limit(limit))).all())


async def lock_access_entry(session: AsyncSession, entry_id: int) -> AccessLogEntry | None:
    return await session.scalar(select(AccessLogEntry).where(AccessLogEntry.id == entry_id).with_for_update()
                                .execution_options(populate_existing=True))


async def open_reviews_of(session: AsyncSession, organization_id: int, patient_key: str) -> list[LinkReview]:
    return list((await session.scalars(select(LinkReview).where(
        LinkReview.organization_id == organization_id, LinkReview.patient_key == patient_key,
        LinkReview.status == "open"))).all())


# --- the linker's page: one statement per kind of work, whatever the page's size -----------------------------
# Core statements on many keys at once (db.keyed), no ORM objects: a page touches a thousand rows, and the
# operator's paths above (one link at a time) are the only ones that load objects.

_LINKS: Table = PatientLink.__table__  # type: ignore[assignment]
_REVIEWS: Table = LinkReview.__table__  # type: ignore[assignment]
_TIMELINE: Table = TimelineEntry.__table__  # type: ignore[assignment]
_IDENTITY = ("organization_id", "patient_key")
_RECORD = ("organization_id", "form", "record_id")
_ENCOUNTER = ("organization_id", "encounter_kind", "encounter_no")


async def lock_links(session: AsyncSession, keys: Collection[tuple[int, str]]) -> dict[tuple[int, str], Any]:
    """The links of these patient identities, locked against an operator's change (PostgreSQL; SQLite serialises)."""
    rows = await keyed.select_by_keys(session, _LINKS, [column.name for column in _LINKS.c], _IDENTITY, keys,
                                      for_update=True)
    return {(row.organization_id, row.patient_key): row for row in rows}


async def link_states(session: AsyncSession, keys: Collection[tuple[int, str]]
                      ) -> dict[tuple[int, str], int | None]:
    """The resident each of these patient identities is linked to (None: held for review, or unlinked)."""
    rows = await keyed.select_by_keys(session, _LINKS, (*_IDENTITY, "status", "resident_id"), _IDENTITY, keys)
    return {(org, key): resident if status == "linked" else None for org, key, status, resident in rows}


async def insert_rows(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    await keyed.insert_many(session, model.__table__, rows)


async def update_rows(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Update each row by the primary key it carries (one executemany)."""
    if rows:
        await session.execute(update(model), rows)


async def reviews_present(session: AsyncSession, candidates: Collection[tuple[int, str, int, int]]
                          ) -> set[tuple[int, str, int, int]]:
    """Which of these (organization, patient key, resident, version) candidates are queued already."""
    names = (*_IDENTITY, "resident_id", "source_version")
    return {tuple(row) for row in await keyed.select_by_keys(session, _REVIEWS, names, names, candidates)}


async def assign_residents(session: AsyncSession, changes: Collection[tuple[int, str, int | None]]) -> None:
    """Point every indexed record of each (organization, patient key) at its resident (None: at no one)."""
    await keyed.update_by_keys(session, _TIMELINE, _IDENTITY, ("resident_id",), changes)


async def supersede_reviews_of(session: AsyncSession, keys: Collection[tuple[int, str]], now: datetime,
                               actor: str) -> None:
    """Close these patient identities' open reviews: their links were decided."""
    await keyed.update_by_keys(session, _REVIEWS, _IDENTITY, (), keys, where=[_REVIEWS.c.status == "open"],
                               fixed={"status": "superseded", "decided_at": now, "decided_by": actor})


async def adopt_encounters(session: AsyncSession,
                           owners: Collection[tuple[int, str, str, str, int | None]]) -> None:
    """Give each (organization, kind, number) encounter's other records its patient key and resident."""
    await keyed.update_by_keys(session, _TIMELINE, _ENCOUNTER, ("patient_key", "resident_id"), owners,
                               where=[_TIMELINE.c.owns_encounter.is_(False)])


async def delete_timeline_entries(session: AsyncSession, keys: Collection[tuple[int, str, str]]) -> None:
    await keyed.delete_by_keys(session, _TIMELINE, _RECORD, keys)


async def timeline_versions(session: AsyncSession, keys: Collection[tuple[int, str, str]]
                            ) -> dict[tuple[int, str, str], int]:
    """The indexed version of each of these records that is in the index."""
    rows = await keyed.select_by_keys(session, _TIMELINE, (*_RECORD, "version"), _RECORD, keys)
    return {(org, form, record_id): version for org, form, record_id, version in rows}


async def encounter_owners(session: AsyncSession, keys: Collection[tuple[int, str, str]]
                           ) -> dict[tuple[int, str, str], str | None]:
    """The patient identities of these visits and admissions (organization, kind, number), where they arrived."""
    rows = await keyed.select_by_keys(session, _TIMELINE, (*_ENCOUNTER, "patient_key"), _ENCOUNTER, keys,
                                      where=[_TIMELINE.c.owns_encounter.is_(True)])
    return {(org, str(kind), str(number)): key for org, kind, number, key in rows}
