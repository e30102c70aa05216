"""Imaging use cases: find a patient's studies in a PACS, record a study for a case (metadata and image counts,
never pixels), retrieve it for a consultation, and write and sign its report.

The PACS is reached through `dicomweb.DicomWebPacs`; the caller (the room's service) has checked the case's
object rule, and every function here audits what it showed. Nothing commits: the caller's transaction does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.security import audit
from cityhealth.security.audit import Action
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal
from cityhealth.telemed import imaging_repository as repository
from cityhealth.telemed import volumes
from cityhealth.telemed.cases import require_case
from cityhealth.telemed.dicomweb import DicomWebPacs, RetrievedInstance, StudyMetadata
from cityhealth.telemed.ecg import mask_identifier
from cityhealth.telemed.imaging_models import PATIENT_ID_PURPOSE, PATIENT_NAME_PURPOSE, ImagingReport, ImagingStudy

STUDY = "telemed_imaging_study"
REPORT = "telemed_imaging_report"
MAX_REPORT_CHARS = 20_000


@dataclass(frozen=True)
class StudyView:
    id: int
    study_instance_uid: str
    pacs: str
    case_id: int | None
    accession_number: str | None
    modalities: tuple[str, ...]
    description: str | None
    study_date: date | None
    series_count: int
    image_count: int
    counted_at: datetime
    patient_id_masked: str | None


@dataclass(frozen=True)
class FoundStudy:
    """A study as a search lists it: the patient's identifier masked."""

    study_instance_uid: str
    modalities: tuple[str, ...]
    description: str | None
    study_date: date | None
    image_count: int | None
    patient_id_masked: str | None


@dataclass(frozen=True)
class ReportView:
    study_id: int
    status: str
    author: str
    findings: str
    impression: str
    signed_at: datetime | None


async def find_studies(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    pacs: DicomWebPacs,
    *,
    patient_id: str | None = None,
    accession_number: str | None = None,
) -> list[FoundStudy]:
    """The PACS's studies of a patient or an accession number (QIDO-RS), audited as a search."""
    if patient_id is None and accession_number is None:
        raise ValidationFailed(
            "name a patient id or an accession number to search by", field="patient_id", rule="search_criterion"
        )
    found = await pacs.search_studies(patient_id=patient_id, accession_number=accession_number)
    audit.record(session, clock, principal, Action.SEARCH, STUDY, detail=f"PACS {pacs.name}: {len(found)} studies")
    return [
        FoundStudy(
            item.study_instance_uid,
            item.modalities,
            item.description,
            item.study_date,
            item.image_count,
            None if item.patient_id is None else mask_identifier(item.patient_id),
        )
        for item in found
    ]


async def record_study(
    session: AsyncSession,
    clock: Clock,
    cipher: FieldCipher,
    principal: Principal,
    pacs: DicomWebPacs,
    study_instance_uid: str,
    *,
    case_id: int | None = None,
) -> StudyView:
    """Record (or refresh) a study the PACS holds: its metadata and its series and images counted.

    Idempotent: the same study again refreshes the counts; its case, once set, stays. StudyNotFound (404) when
    the PACS does not have it.
    """
    await require_case(session, case_id)
    meta: StudyMetadata = await pacs.study(study_instance_uid)
    counted = await pacs.count_images(study_instance_uid)
    now = clock.now()
    patient_id, patient_name = meta.patient_id, meta.patient_name
    values = {
        "study_instance_uid": meta.study_instance_uid,
        "pacs": pacs.name[:64],
        "case_id": case_id,
        "organization_id": await volumes.registered(session, principal.organization_id),
        "accession_number": (meta.accession_number or "")[:16] or None,
        "modalities": ",".join(meta.modalities)[:64] or None,
        "description": (meta.description or "")[:64] or None,
        "study_date": meta.study_date,
        "series_count": counted.series,
        "image_count": counted.images,
        "counted_at": now,
        "patient_id_hash": cipher.lookup_hash(PATIENT_ID_PURPOSE, patient_id) if patient_id else None,
        "patient_id_enc": cipher.encrypt(PATIENT_ID_PURPOSE, patient_id) if patient_id else None,
        "patient_name_enc": cipher.encrypt(PATIENT_NAME_PURPOSE, patient_name) if patient_name else None,
        "created_at": now,
        "updated_at": now,
    }
    study_id = await _keep_study(session, values)
    row = await _study(session, study_id)
    if case_id is not None and row.case_id is None:
        row.case_id = case_id
        await session.flush()
    audit.record(
        session,
        clock,
        principal,
        Action.UPDATE,
        STUDY,
        resource_id=study_id,
        detail=f"{counted.images} images in {counted.series} series",
    )
    return _view(row, cipher)


async def _keep_study(session: AsyncSession, values: dict[str, Any]) -> int:
    """Insert the study or refresh its PACS facts, keeping the month's images exact: a new study adds its images
    to its first recording's month, a recount the difference (under the row's lock, so two recounts at once
    each add their own difference)."""
    study_id = await repository.insert_study(session, values)
    if study_id is not None:
        await volumes.add_images(session, values["organization_id"], values["created_at"], values["image_count"])
        return study_id
    held = await repository.study_by_uid(session, values["study_instance_uid"], for_update=True)
    if held is None:  # pragma: no cover - the insert above found it
        raise RuntimeError("the study vanished after its insert conflicted")
    before = held.image_count
    study_id = await repository.upsert_study(session, values)
    await volumes.add_images(session, held.organization_id, held.created_at, values["image_count"] - before)
    return study_id


async def study_view(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, study_id: int
) -> StudyView:
    row = await _study(session, study_id)
    audit.record(session, clock, principal, Action.READ, STUDY, resource_id=row.id)
    return _view(row, cipher)


async def retrieve_for_consultation(
    session: AsyncSession, clock: Clock, principal: Principal, pacs: DicomWebPacs, study_id: int
) -> list[RetrievedInstance]:
    """The recorded study's instances, fetched from its PACS over WADO-RS for a consultation; not kept."""
    row = await _study(session, study_id)
    instances = await pacs.retrieve_study(row.study_instance_uid)
    audit.record(
        session,
        clock,
        principal,
        Action.EXPORT,
        STUDY,
        resource_id=row.id,
        detail=f"retrieved {len(instances)} instances from PACS {pacs.name} for a consultation",
    )
    return instances


async def write_report(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    study_id: int,
    *,
    findings: str,
    impression: str,
    sign: bool,
) -> ReportView:
    """Write (or rewrite) the study's preliminary report, signing it final when `sign`.

    A final report is fixed: writing it again with the same text is the same report (a retried request), with
    other text a 409 naming the report.
    """
    for field, text in (("findings", findings), ("impression", impression)):
        if not text.strip() or len(text) > MAX_REPORT_CHARS:
            raise ValidationFailed(
                f"the report's {field} must be 1 to {MAX_REPORT_CHARS} characters",
                field=field,
                value=len(text),
                rule="report_text",
            )
    row = await _study(session, study_id)
    now = clock.now()
    await repository.insert_report(
        session,
        {
            "study_id": row.id,
            "status": "preliminary",
            "author": principal.subject[:64],
            "findings": findings,
            "impression": impression,
            "signed_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    report = await repository.report_of(session, row.id, for_update=True)
    if report is None:  # pragma: no cover - inserted just above or by a concurrent writer
        raise RuntimeError("the report vanished after its insert")
    await session.refresh(report)
    if report.status == "final":
        if (report.findings, report.impression) != (findings, impression) or not sign:
            raise Conflict(
                "the study's report is final and signed; it cannot be changed",
                field="study_id",
                value=study_id,
                rule="report_final",
            )
        return _report(report)
    report.findings, report.impression, report.author, report.updated_at = (
        findings,
        impression,
        principal.subject[:64],
        now,
    )
    if sign:
        report.status, report.signed_at = "final", now
        await volumes.add_imaging_report(session, principal.organization_id, now)
    await session.flush()
    audit.record(
        session,
        clock,
        principal,
        Action.UPDATE,
        REPORT,
        resource_id=report.id,
        detail="signed final" if sign else "preliminary",
    )
    return _report(report)


async def require_recorder(session: AsyncSession, principal: Principal, study_id: int) -> None:
    """Only the organization that recorded the study reports it (403 naming the study otherwise)."""
    row = await _study(session, study_id)
    if row.organization_id is None or row.organization_id != principal.organization_id:
        raise Forbidden(
            f"study {study_id} was recorded by another organization: only it reports the study",
            field="study_id",
            value=study_id,
            rule="telemed.imaging.report_by_recorder",
        )


async def report_view(session: AsyncSession, clock: Clock, principal: Principal, study_id: int) -> ReportView:
    report = await repository.report_of(session, study_id)
    if report is None:
        raise NotFound("the study has no report", field="study_id", value=study_id)
    audit.record(session, clock, principal, Action.READ, REPORT, resource_id=report.id)
    return _report(report)


async def _study(session: AsyncSession, study_id: int) -> ImagingStudy:
    row = await repository.study(session, study_id)
    if row is None:
        raise NotFound("no such imaging study", field="study_id", value=study_id)
    return row


def _view(row: ImagingStudy, cipher: FieldCipher) -> StudyView:
    identifier = cipher.decrypt(PATIENT_ID_PURPOSE, row.patient_id_enc) if row.patient_id_enc else None
    return StudyView(
        row.id,
        row.study_instance_uid,
        row.pacs,
        row.case_id,
        row.accession_number,
        tuple(row.modalities.split(",")) if row.modalities else (),
        row.description,
        row.study_date,
        row.series_count,
        row.image_count,
        row.counted_at,
        None if identifier is None else mask_identifier(identifier),
    )


def _report(row: ImagingReport) -> ReportView:
    return ReportView(row.study_id, row.status, row.author, row.findings, row.impression, row.signed_at)


def view_of(row: ImagingStudy, cipher: FieldCipher) -> StudyView:
    """A recorded study as shown in a list (the caller audits the list)."""
    return _view(row, cipher)
