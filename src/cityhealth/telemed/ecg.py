"""ECG use cases: take an uploaded DICOM waveform or aECG file, keep its tracing, show it and draw it.

The reading workflow (the room's service) calls these with a case it has already checked the caller may
see (a reading centre sees a case only while it is routed to it); every call here audits what it showed.
Nothing commits: the caller's transaction does.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import NotFound
from cityhealth.security import audit
from cityhealth.security.audit import Action
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal
from cityhealth.telemed import ecg_repository as repository
from cityhealth.telemed.cases import require_case
from cityhealth.telemed.ecg_aecg import read_aecg
from cityhealth.telemed.ecg_dicom import read_dicom
from cityhealth.telemed.ecg_models import PATIENT_ID_PURPOSE, PATIENT_NAME_PURPOSE, EcgTracing
from cityhealth.telemed.ecg_render import render_svg
from cityhealth.telemed.ecg_tracing import Tracing, refuse

RESOURCE = "telemed_ecg_tracing"
FORMATS = ("dicom", "aecg")


@dataclass(frozen=True)
class EcgSummary:
    """A stored tracing as a caller sees it: the patient's identifier masked."""

    id: int
    source_format: str
    leads: tuple[str, ...]
    sampling_rate_hz: float
    sample_count: int
    duration_s: float
    acquired_at: datetime | None
    case_id: int | None
    patient_id_masked: str | None
    created: bool  # False when the same file had been uploaded before


def read_ecg_file(data: bytes, declared_format: str | None = None) -> Tracing:
    """The file's tracing. `declared_format` ("dicom" or "aecg") is what the uploader says the file is; without
    it the file's own marker decides (DICM at byte 128 for DICOM, an XML start for aECG)."""
    if declared_format is not None and declared_format not in FORMATS:
        raise refuse(
            "the declared ECG format must be dicom or aecg", rule="format", field="format", value=declared_format[:16]
        )
    kind = declared_format or _sniff(data)
    return read_dicom(data) if kind == "dicom" else read_aecg(data)


def _sniff(data: bytes) -> str:
    if data[128:132] == b"DICM":
        return "dicom"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        return "aecg"
    raise refuse("the file is neither DICOM (no DICM marker at byte 128) nor aECG XML", rule="ecg_format")


async def store_ecg(
    session: AsyncSession,
    clock: Clock,
    cipher: FieldCipher,
    principal: Principal,
    data: bytes,
    *,
    declared_format: str | None = None,
    case_id: int | None = None,
) -> EcgSummary:
    """Keep an uploaded ECG; the same file again (a retry) is the tracing already kept, not a second one."""
    await require_case(session, case_id)
    digest = hashlib.sha256(data).hexdigest()
    existing = await repository.tracing_by_sha256(session, digest)
    if existing is None:
        tracing = read_ecg_file(data, declared_format)
        patient = tracing.patient
        new_id = await repository.insert_tracing(
            session,
            {
                "file_sha256": digest,
                "source_format": tracing.source_format,
                "source_uid": (tracing.source_uid or "")[:128] or None,
                "case_id": case_id,
                "uploaded_by": principal.subject[:64],
                "organization_id": principal.organization_id,
                "leads": ",".join(tracing.leads),
                "sampling_rate_hz": tracing.sampling_rate_hz,
                "sample_count": tracing.sample_count,
                "duration_ms": round(tracing.duration_s * 1000),
                "acquired_at": tracing.acquired_at,
                "samples": pack_samples(tracing.samples),
                "patient_id_hash": cipher.lookup_hash(PATIENT_ID_PURPOSE, patient.identifier)
                if patient.identifier
                else None,
                "patient_id_enc": cipher.encrypt(PATIENT_ID_PURPOSE, patient.identifier)
                if patient.identifier
                else None,
                "patient_name_enc": cipher.encrypt(PATIENT_NAME_PURPOSE, patient.name) if patient.name else None,
                "created_at": clock.now(),
            },
        )
        existing = await repository.tracing_by_sha256(session, digest)
        if existing is None:  # pragma: no cover - the row was just inserted or found in conflict
            raise RuntimeError("the tracing vanished after its insert")
        created = new_id is not None
    else:
        created = False
    audit.record(
        session,
        clock,
        principal,
        Action.CREATE if created else Action.READ,
        RESOURCE,
        resource_id=existing.id,
        detail=None if created else "the same file uploaded again",
    )
    return _summary(existing, cipher, created=created)


async def ecg_summary(
    session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, tracing_id: int
) -> EcgSummary:
    row = await _tracing(session, tracing_id)
    audit.record(session, clock, principal, Action.READ, RESOURCE, resource_id=row.id)
    return _summary(row, cipher, created=False)


@dataclass(frozen=True)
class Drawing:
    """A tracing's samples as read, to be drawn once the transaction that read them has ended: drawing is CPU
    work (tens of milliseconds for twelve leads), which on SQLite would hold the write lock taken by the read's
    audit event, and in any case belongs off the event loop (`asyncio.to_thread(drawing.svg)`)."""

    leads: tuple[str, ...]
    sampling_rate_hz: float
    samples: bytes
    sample_count: int

    @classmethod
    def of(cls, row: EcgTracing) -> Drawing:
        return cls(tuple(row.leads.split(",")), row.sampling_rate_hz, row.samples, row.sample_count)

    def by_lead(self) -> dict[str, tuple[int, ...]]:
        """Each lead's samples in microvolts, as stored."""
        unpacked = unpack_samples(self.samples, len(self.leads), self.sample_count)
        return dict(zip(self.leads, unpacked, strict=True))

    def svg(self) -> str:
        """The tracing drawn on ECG paper (ecg_render.py)."""
        return render_svg(self.leads, self.sampling_rate_hz, tuple(self.by_lead().values()))


async def ecg_drawing(session: AsyncSession, clock: Clock, principal: Principal, tracing_id: int) -> Drawing:
    """What drawing the tracing takes, its reading audited."""
    row = await _tracing(session, tracing_id)
    audit.record(session, clock, principal, Action.READ, RESOURCE, resource_id=row.id, detail="tracing drawn")
    return Drawing.of(row)


async def ecg_samples(
    session: AsyncSession, clock: Clock, principal: Principal, tracing_id: int
) -> dict[str, tuple[int, ...]]:
    """Each lead's samples in microvolts, as stored."""
    row = await _tracing(session, tracing_id)
    audit.record(session, clock, principal, Action.READ, RESOURCE, resource_id=row.id, detail="samples")
    return Drawing.of(row).by_lead()


async def _tracing(session: AsyncSession, tracing_id: int) -> EcgTracing:
    row = await repository.tracing(session, tracing_id)
    if row is None:
        raise NotFound("no such ECG tracing", field="tracing_id", value=tracing_id)
    return row


def pack_samples(samples: tuple[tuple[int, ...], ...]) -> bytes:
    """Leads one after another, little-endian int32 microvolts, zlib-compressed."""
    return zlib.compress(b"".join(struct.pack(f"<{len(lead)}i", *lead) for lead in samples), 6)


def unpack_samples(blob: bytes, leads: int, count: int) -> tuple[tuple[int, ...], ...]:
    values = struct.unpack(f"<{leads * count}i", zlib.decompress(blob))
    return tuple(tuple(values[index * count : (index + 1) * count]) for index in range(leads))


def mask_identifier(value: str) -> str:
    """A patient identifier as shown: its last four characters only."""
    return "*" * max(0, len(value) - 4) + value[-4:] if len(value) > 4 else "*" * len(value)


def _summary(row: EcgTracing, cipher: FieldCipher, *, created: bool) -> EcgSummary:
    identifier = cipher.decrypt(PATIENT_ID_PURPOSE, row.patient_id_enc) if row.patient_id_enc else None
    return EcgSummary(
        row.id,
        row.source_format,
        tuple(row.leads.split(",")),
        row.sampling_rate_hz,
        row.sample_count,
        row.sample_count / row.sampling_rate_hz,
        row.acquired_at,
        row.case_id,
        None if identifier is None else mask_identifier(identifier),
        created,
    )


def summary_of(row: EcgTracing, cipher: FieldCipher) -> EcgSummary:
    """A kept tracing as shown in a list (the caller audits the list)."""
    return _summary(row, cipher, created=False)
