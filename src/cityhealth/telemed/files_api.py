"""A case's files over HTTP: upload an ECG tracing and read it back (metadata, drawn as SVG); find a study in a
PACS (QIDO-RS), record it for the case with its image counts, retrieve it for a consultation (WADO-RS).

Every route reaches its object through the case (files.py asks the case's object rule: the requester's
organization, or the reading centre the case is routed to; anyone else finds no such case)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import PayloadTooLarge
from cityhealth.security.crypto import field_cipher
from cityhealth.security.dependencies import refusals_audited, require_any
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import files
from cityhealth.telemed.dicomweb import RetrievedInstance
from cityhealth.telemed.files_schemas import EcgRead, FoundStudyRead, StudyRead, StudyRecordIn

router = APIRouter(
    prefix="/api/telemed/cases/{case_id}", tags=["telemed"], route_class=refusals_audited("telemed_case")
)
Member = Annotated[Principal, Depends(require_any(Scope.TELEMED_REQUEST, Scope.TELEMED_READ))]
SearchText = Annotated[str | None, Query(min_length=1, max_length=64)]
ECG_BODY = {
    "required": True,
    "description": "The ECG file as sent by the device: DICOM waveform (application/dicom) or HL7 aECG XML "
    "(application/hl7-v3+xml, application/xml, text/xml); application/octet-stream lets the file's marker decide",
    "content": {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in files.ECG_MEDIA_TYPES},
}


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413 naming the limit) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"an ECG file may be at most {limit} bytes", field="body", value=int(declared), rule="telemed.ecg.max_bytes"
        )
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise PayloadTooLarge(
                f"an ECG file may be at most {limit} bytes",
                field="body",
                value=len(received),
                rule="telemed.ecg.max_bytes",
            )
    return bytes(received)


@router.post(
    "/ecg",
    response_model=EcgRead,
    summary="Upload an ECG tracing for the case (DICOM waveform or HL7 aECG; the same file again is the same one)",
    openapi_extra={"requestBody": ECG_BODY},
)
async def upload_ecg(
    principal: Member,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    request: Request,
    case_id: RowId,
    content_type: Annotated[str | None, Header(max_length=200)] = None,
) -> EcgRead:
    data = await _body(request, files.MAX_ECG_UPLOAD_BYTES)
    return await files.upload_ecg(session, clock, field_cipher(settings), principal, case_id, data, content_type)


@router.get("/ecg", response_model=list[EcgRead], summary="The case's ECG tracings")
async def list_ecgs(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId
) -> list[EcgRead]:
    return await files.tracings_of_case(session, clock, field_cipher(settings), principal, case_id)


@router.get("/ecg/{tracing_id}", response_model=EcgRead, summary="One of the case's ECG tracings: its metadata")
async def get_ecg(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId, tracing_id: RowId
) -> EcgRead:
    return await files.ecg_of_case(session, clock, field_cipher(settings), principal, case_id, tracing_id)


@router.get(
    "/ecg/{tracing_id}/svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="One of the case's ECG tracings drawn on ECG paper (25 mm/s, 10 mm/mV) as SVG",
)
async def get_ecg_svg(
    principal: Member, database: DatabaseDep, clock: ClockDep, case_id: RowId, tracing_id: RowId
) -> Response:
    async with database.transaction() as session:  # ended before the drawing: see ecg.Drawing
        drawing = await files.ecg_drawing_of_case(session, clock, principal, case_id, tracing_id)
    svg = await asyncio.to_thread(drawing.svg)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get(
    "/imaging/search",
    response_model=list[FoundStudyRead],
    summary="Find a patient's studies (or an accession number's) in a configured PACS over QIDO-RS",
)
async def search_studies(
    principal: Member,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    case_id: RowId,
    pacs: Annotated[str, Query(min_length=1, max_length=64)],
    patient_id: SearchText = None,
    accession_number: SearchText = None,
) -> list[FoundStudyRead]:
    async with files.pacs_named(settings, pacs) as adapter:
        return await files.find_studies(
            session, clock, principal, adapter, case_id, patient_id=patient_id, accession_number=accession_number
        )


@router.post(
    "/imaging",
    response_model=StudyRead,
    summary="Record a study the PACS holds for the case: metadata, series and image counts (idempotent)",
)
async def record_study(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId, data: StudyRecordIn
) -> StudyRead:
    async with files.pacs_named(settings, data.pacs) as adapter:
        return await files.record_study(
            session, clock, field_cipher(settings), principal, adapter, case_id, data.study_instance_uid
        )


@router.get("/imaging", response_model=list[StudyRead], summary="The case's recorded studies and their image counts")
async def list_studies(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId
) -> list[StudyRead]:
    return await files.studies_of_case(session, clock, field_cipher(settings), principal, case_id)


@router.get("/imaging/{study_id}", response_model=StudyRead, summary="One of the case's studies: its image counts")
async def get_study(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId, study_id: RowId
) -> StudyRead:
    return await files.study_of_case(session, clock, field_cipher(settings), principal, case_id, study_id)


def multipart_related(instances: list[RetrievedInstance]) -> tuple[bytes, str]:
    """The instances as one multipart/related body of application/dicom parts, as WADO-RS answers."""
    boundary = secrets.token_hex(16)
    parts = [
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + instance.data + b"\r\n"
        for instance in instances
    ]
    body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


@router.get(
    "/imaging/{study_id}/instances",
    response_class=Response,
    responses={200: {"content": {"multipart/related": {}}}},
    summary="Retrieve the case's study from its PACS for a consultation (WADO-RS), handed over and not kept",
)
async def retrieve_study(
    principal: Member, session: SessionDep, clock: ClockDep, settings: SettingsDep, case_id: RowId, study_id: RowId
) -> Response:
    instances = await files.retrieve_study(session, clock, principal, settings, case_id, study_id)
    body, media_type = multipart_related(instances)
    return Response(
        body, headers={"Content-Type": media_type, "Cache-Control": "no-store", "X-Instance-Count": str(len(instances))}
    )
