"""Every query of the records room: links and their history, the review queue, the timeline index, consents
and the access log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

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


async def review_exists(session: AsyncSession, organization_id: int, patient_key: str, resident_id: int,
                        version: int) -> bool:
    return bool(await session.scalar(select(exists().where(
        LinkReview.organization_id == organization_id, LinkReview.patient_key == patient_key,
        LinkReview.resident_id == resident_id, LinkReview.source_version == version))))


async def open_reviews(session: AsyncSession, after_id: int, limit: int) -> list[LinkReview]:
    return list((await session.scalars(select(LinkReview).where(LinkReview.status == "open", LinkReview.id > after_id)
                                       .order_by(LinkReview.id).limit(limit))).all())


async def lock_review(session: AsyncSession, review_id: int) -> LinkReview | None:
    return await session.scalar(select(LinkReview).where(LinkReview.id == review_id).with_for_update()
                                .execution_options(populate_existing=True))


async def supersede_reviews(session: AsyncSession, organization_id: int, patient_key: str, now: datetime,
                            actor: str, *, except_id: int | None = None) -> None:
    """Close a patient identity's other open reviews: its link was decided."""
    statement = update(LinkReview).where(LinkReview.organization_id == organization_id,
                                         LinkReview.patient_key == patient_key, LinkReview.status == "open")
    if except_id is not None:
        statement = statement.where(LinkReview.id != except_id)
    await session.execute(statement.values(status="superseded", decided_at=now, decided_by=actor)
                          .execution_options(synchronize_session=False))


# --- timeline ------------------------------------------------------------------------------------------------
# The bulk updates below do not synchronise the session's objects: matching them in Python costs a pass over
# every object of the linker's page per statement; the linker reads none of them again in that transaction.


async def timeline_entry(session: AsyncSession, organization_id: int, form: str, record_id: str
                         ) -> TimelineEntry | None:
    return await session.get(TimelineEntry, (organization_id, form, record_id))


async def delete_timeline_entry(session: AsyncSession, organization_id: int, form: str, record_id: str) -> None:
    await session.execute(delete(TimelineEntry).where(TimelineEntry.organization_id == organization_id,
                                                      TimelineEntry.form == form, TimelineEntry.record_id == record_id))


async def encounter_owner(session: AsyncSession, organization_id: int, kind: str, number: str) -> str | None:
    """The patient identity of a visit or admission (from its own record), if it has arrived."""
    return await session.scalar(select(TimelineEntry.patient_key).where(
        TimelineEntry.organization_id == organization_id, TimelineEntry.encounter_kind == kind,
        TimelineEntry.encounter_no == number, TimelineEntry.owns_encounter.is_(True)).limit(1))


async def adopt_encounter(session: AsyncSession, organization_id: int, kind: str, number: str, patient_key: str,
                          resident_id: int | None) -> None:
    """Give an encounter's other records its patient identity and resident (those that came before it too)."""
    await session.execute(update(TimelineEntry).where(
        TimelineEntry.organization_id == organization_id, TimelineEntry.encounter_kind == kind,
        TimelineEntry.encounter_no == number, TimelineEntry.owns_encounter.is_(False),
    ).values(patient_key=patient_key, resident_id=resident_id).execution_options(synchronize_session=False))


async def assign_resident(session: AsyncSession, organization_id: int, patient_key: str,
                          resident_id: int | None) -> int:
    """Point every indexed record of a patient identity at `resident_id` (None: at no one); how many."""
    result = await session.execute(update(TimelineEntry).where(
        TimelineEntry.organization_id == organization_id, TimelineEntry.patient_key == patient_key,
    ).values(resident_id=resident_id).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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


async def timeline_entries(session: AsyncSession, keys: Collection[tuple[int, str, str]]
                           ) -> dict[tuple[int, str, str], TimelineEntry]:
    """The indexed entries of these records (a page's, in one statement)."""
    if not keys:
        return {}
    rows = await session.scalars(select(TimelineEntry).where(
        tuple_(TimelineEntry.organization_id, TimelineEntry.form, TimelineEntry.record_id).in_(sorted(keys))))
    return {(row.organization_id, row.form, row.record_id): row for row in rows}


async def links_for(session: AsyncSession, keys: Collection[tuple[int, str]]) -> dict[tuple[int, str], PatientLink]:
    if not keys:
        return {}
    rows = await session.scalars(select(PatientLink).where(
        tuple_(PatientLink.organization_id, PatientLink.patient_key).in_(sorted(keys))))
    return {(row.organization_id, row.patient_key): row for row in rows}


async def encounter_owners(session: AsyncSession, keys: Collection[tuple[int, str, str]]
                           ) -> dict[tuple[int, str, str], str | None]:
    """The patient identities of these visits and admissions (organization, kind, number), where they arrived."""
    if not keys:
        return {}
    rows = await session.execute(select(TimelineEntry.organization_id, TimelineEntry.encounter_kind,
                                        TimelineEntry.encounter_no, TimelineEntry.patient_key).where(
        tuple_(TimelineEntry.organization_id, TimelineEntry.encounter_kind, TimelineEntry.encounter_no)
        .in_(sorted(keys)), TimelineEntry.owns_encounter.is_(True)))
    return {(org, str(kind), str(number)): key for org, kind, number, key in rows}
