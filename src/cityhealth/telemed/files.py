"""A case's files: its ECG tracings, its imaging studies (held by a PACS) and its resident's lab results.

The ECG and imaging use cases (ecg.py, imaging.py) read, keep and draw; this module puts the case's object rule
in front of them (cases.visible: the requester's organization, or the reading centre while the case is routed
to it; anyone else finds no such case), so the files API and the worklist page ask one rule. A tracing or a
study is reached through its case only: one that belongs to another case is not found under this one. Every
read is audited (by the use case it calls, or here for the lists).
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from dataclasses import dataclass
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal
from cityhealth.telemed import cases, ecg, imaging
from cityhealth.telemed import ecg_repository as ecg_rows
from cityhealth.telemed import imaging_repository as imaging_rows
from cityhealth.telemed import lab_repository as lab_rows
from cityhealth.telemed.cases import View
from cityhealth.telemed.dicomweb import DicomWebPacs, RetrievedInstance, check_uid
from cityhealth.telemed.ecg_tracing import refuse
from cityhealth.telemed.files_schemas import (
    EcgRead,
    FoundStudyRead,
    LabObservationRead,
    LabResultRead,
    StudyRead,
)
from cityhealth.telemed.models import Case
from cityhealth.telemed.schemas import CaseDetail

# An upload's own limit, below the platform's request limit: a 10 s 12-lead DICOM file is about 250 kB, a
# 24-hour ambulatory recording's first hour a few MB.
MAX_ECG_UPLOAD_BYTES = 8 * 1024 * 1024
# The media types an ECG upload may declare; octet-stream (or none) lets the file's own marker decide.
ECG_MEDIA_TYPES: dict[str, str | None] = {
    "application/dicom": "dicom",
    "application/hl7-v3+xml": "aecg",
    "application/xml": "aecg",
    "text/xml": "aecg",
    "application/octet-stream": None,
}
LAB_RESOURCE = "telemed_lab_report"
LAB_RESULTS_SHOWN = 20


def declared_format(content_type: str | None) -> str | None:
    """The ECG format a request's Content-Type declares; None lets the file's marker decide."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not media_type:
        return None
    if media_type not in ECG_MEDIA_TYPES:
        raise refuse(
            f"an ECG upload is {', '.join(ECG_MEDIA_TYPES)}, not {media_type}",
            rule="content_type",
            field="content-type",
            value=media_type[:64],
        )
    return ECG_MEDIA_TYPES[media_type]


def _ecg_read(summary: ecg.EcgSummary, case_id: int) -> EcgRead:
    return EcgRead(
        id=summary.id,
        case_id=case_id,
        source_format=summary.source_format,
        leads=list(summary.leads),
        sampling_rate_hz=summary.sampling_rate_hz,
        sample_count=summary.sample_count,
        duration_s=summary.duration_s,
        acquired_at=summary.acquired_at,
        patient_id_masked=summary.patient_id_masked,
        created=summary.created,
    )


def _study_read(view: imaging.StudyView, case_id: int) -> StudyRead:
    return StudyRead(
        id=view.id,
        case_id=case_id,
        study_instance_uid=view.study_instance_uid,
        pacs=view.pacs,
        accession_number=view.accession_number,
        modalities=list(view.modalities),
        description=view.description,
        study_date=view.study_date,
        series_count=view.series_count,
        image_count=view.image_count,
        counted_at=view.counted_at,
        patient_id_masked=view.patient_id_masked,
    )


def _residents(case: Case) -> list[int | None]:
    return [case.resident_id] if case.resident_id is not None else []


# --- ECG -----------------------------------------------------------------------------------------------------


async def upload_ecg(
    session: AsyncSession,
    clock: Clock,
    cipher: FieldCipher,
    principal: Principal,
    case_id: int,
    data: bytes,
    content_type: str | None,
) -> EcgRead:
    """Keep an ECG file for the case. A file that is not an ECG the platform reads is refused (422 naming the
    check) and nothing is kept; the same file again is the tracing already kept; a file already kept for
    another case is a 409 (a tracing belongs to one case)."""
    await cases.visible(session, principal, case_id)
    declared = declared_format(content_type)
    if not data:
        raise refuse("the request has no body: send the ECG file", rule="empty_file", field="body", value=0)
    held = await ecg_rows.tracing_by_sha256(session, hashlib.sha256(data).hexdigest())
    if held is not None and held.case_id != case_id:
        raise Conflict(
            "this ECG file has been uploaded for another case already",
            field="file",
            value=held.file_sha256[:12],
            rule="telemed.ecg.one_case",
        )
    summary = await ecg.store_ecg(session, clock, cipher, principal, data, declared_format=declared, case_id=case_id)
    return _ecg_read(summary, case_id)


class _OfCase(Protocol):
    @property
    def case_id(self) -> int | None: ...


def _require_of_case(row: _OfCase | None, case_id: int, what: str, field: str, value: int, rule: str) -> None:
    """A tracing or study named under a case must be that case's: anything else is the case's 404, whether the
    row does not exist or belongs to another case (the caller has already passed the case's object rule)."""
    if row is None or row.case_id != case_id:
        raise NotFound(f"case {case_id} has no {what} {value}", field=field, value=value, rule=rule)


async def _tracing_of(session: AsyncSession, principal: Principal, case_id: int, tracing_id: int) -> None:
    await cases.visible(session, principal, case_id)
    row = await ecg_rows.tracing(session, tracing_id)
    _require_of_case(row, case_id, "ECG tracing", "tracing_id", tracing_id, "telemed.ecg.of_case")


async def ecg_of_case(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case_id: int, tracing_id: int
) -> EcgRead:
    await _tracing_of(session, principal, case_id, tracing_id)
    return _ecg_read(await ecg.ecg_summary(session, clock, cipher, principal, tracing_id), case_id)


async def ecg_drawing_of_case(
    session: AsyncSession, clock: Clock, principal: Principal, case_id: int, tracing_id: int
) -> ecg.Drawing:
    """One of the case's tracings, to draw after the transaction (ecg.Drawing)."""
    await _tracing_of(session, principal, case_id, tracing_id)
    return await ecg.ecg_drawing(session, clock, principal, tracing_id)


async def _tracings(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case: Case
) -> list[EcgRead]:
    rows = await ecg_rows.tracings_of_case(session, case.id)
    record(
        session,
        clock,
        principal,
        Action.LIST,
        ecg.RESOURCE,
        resident_ids=_residents(case),
        detail=f"case {case.id}: tracings={len(rows)}",
    )
    return [_ecg_read(ecg.summary_of(row, cipher), case.id) for row in rows]


async def tracings_of_case(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case_id: int
) -> list[EcgRead]:
    case, _ = await cases.visible(session, principal, case_id)
    return await _tracings(session, clock, cipher, principal, case)


# --- imaging -------------------------------------------------------------------------------------------------


def pacs_named(settings: Settings, name: str) -> DicomWebPacs:
    """The configured PACS of that name (settings.telemed_pacs), or a 422 naming it."""
    root = settings.telemed_pacs.get(name)
    if root is None:
        known = ", ".join(sorted(settings.telemed_pacs)) or "none is configured"
        raise ValidationFailed(
            f"no PACS named {name!r} (known: {known})", field="pacs", value=name[:64], rule="telemed.pacs.known"
        )
    return DicomWebPacs(name, root, transport=httpx.AsyncHTTPTransport(verify=_tls()))


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every PACS request of the process: loading the CA bundle costs ~30 ms of CPU, which a
    client made per request (one per study recorded) would pay every time."""
    return httpx.create_ssl_context()


async def find_studies(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    pacs: DicomWebPacs,
    case_id: int,
    *,
    patient_id: str | None,
    accession_number: str | None,
) -> list[FoundStudyRead]:
    """The PACS's studies of a patient or an accession number, searched for the case (QIDO-RS)."""
    await cases.visible(session, principal, case_id)
    found = await imaging.find_studies(
        session, clock, principal, pacs, patient_id=patient_id, accession_number=accession_number
    )
    return [
        FoundStudyRead(
            study_instance_uid=item.study_instance_uid,
            modalities=list(item.modalities),
            description=item.description,
            study_date=item.study_date,
            image_count=item.image_count,
            patient_id_masked=item.patient_id_masked,
        )
        for item in found
    ]


async def record_study(
    session: AsyncSession,
    clock: Clock,
    cipher: FieldCipher,
    principal: Principal,
    pacs: DicomWebPacs,
    case_id: int,
    study_instance_uid: str,
) -> StudyRead:
    """Record a study the PACS holds for the case, its series and images counted; again, its counts refreshed.
    A study the PACS does not have is a 404 naming it; one recorded for another case a 409."""
    await cases.visible(session, principal, case_id)
    uid = check_uid(study_instance_uid)
    held = await imaging_rows.study_by_uid(session, uid)
    if held is not None and held.case_id not in (None, case_id):
        raise Conflict(
            f"study {uid} is recorded for another case",
            field="study_instance_uid",
            value=uid,
            rule="telemed.study.one_case",
        )
    view = await imaging.record_study(session, clock, cipher, principal, pacs, uid, case_id=case_id)
    return _study_read(view, case_id)


async def _study_of(session: AsyncSession, principal: Principal, case_id: int, study_id: int) -> None:
    await cases.visible(session, principal, case_id)
    row = await imaging_rows.study(session, study_id)
    _require_of_case(row, case_id, "imaging study", "study_id", study_id, "telemed.study.of_case")


async def study_of_case(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case_id: int, study_id: int
) -> StudyRead:
    await _study_of(session, principal, case_id, study_id)
    return _study_read(await imaging.study_view(session, clock, cipher, principal, study_id), case_id)


async def _studies(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case: Case
) -> list[StudyRead]:
    rows = await imaging_rows.studies_of_case(session, case.id)
    record(
        session,
        clock,
        principal,
        Action.LIST,
        imaging.STUDY,
        resident_ids=_residents(case),
        detail=f"case {case.id}: studies={len(rows)}",
    )
    return [_study_read(imaging.view_of(row, cipher), case.id) for row in rows]


async def studies_of_case(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case_id: int
) -> list[StudyRead]:
    case, _ = await cases.visible(session, principal, case_id)
    return await _studies(session, clock, cipher, principal, case)


async def retrieve_study(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    settings: Settings,
    case_id: int,
    study_id: int,
) -> list[RetrievedInstance]:
    """The case's study fetched whole from its PACS (WADO-RS) for a consultation; handed over, not kept."""
    await _study_of(session, principal, case_id, study_id)
    row = await imaging_rows.study(session, study_id)
    assert row is not None  # noqa: S101 - _study_of found it
    async with pacs_named(settings, row.pacs) as pacs:
        return await imaging.retrieve_for_consultation(session, clock, principal, pacs, study_id)


# --- lab results and the case's page ---------------------------------------------------------------------------


async def _lab_results(session: AsyncSession, clock: Clock, principal: Principal, case: Case) -> list[LabResultRead]:
    if case.resident_id is None:
        return []
    reports = await lab_rows.reports_of_resident(session, case.resident_id, LAB_RESULTS_SHOWN)
    observations = await lab_rows.observations_of(session, [report.id for report in reports]) if reports else []
    record(
        session,
        clock,
        principal,
        Action.READ,
        LAB_RESOURCE,
        resident_ids=_residents(case),
        detail=f"case {case.id}: lab reports={len(reports)}",
    )
    return [
        LabResultRead(
            test_code=report.test_code,
            test_name=report.test_name,
            sending_facility=report.sending_facility,
            observed_at=report.observed_at,
            result_status=report.result_status,
            observations=[
                LabObservationRead(
                    code=item.code,
                    name=item.name,
                    value=item.value,
                    units=item.units,
                    reference_range=item.reference_range,
                    abnormal_flag=item.abnormal_flag,
                )
                for item in observations
                if item.report_id == report.id
            ],
        )
        for report in reports
    ]


@dataclass(frozen=True)
class CasePage:
    """Everything a case's page shows, each part audited as it is read."""

    detail: CaseDetail
    tracings: list[EcgRead]
    studies: list[StudyRead]
    lab_results: list[LabResultRead]


async def case_page(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, case_id: int, as_: View
) -> CasePage:
    """The case as the caller sees it `as_` its reading centre or its requester (else not found), with its
    tracings, studies and its resident's lab results."""
    case, _ = await cases.visible(session, principal, case_id, as_=as_)
    detail = await cases.get_case(session, clock, principal, case_id)
    return CasePage(
        detail,
        await _tracings(session, clock, cipher, principal, case),
        await _studies(session, clock, cipher, principal, case),
        await _lab_results(session, clock, principal, case),
    )
