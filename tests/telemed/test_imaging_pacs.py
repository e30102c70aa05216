"""Imaging through a real PACS: a generated study stored in Orthanc is found (QIDO-RS), counted, retrieved
(WADO-RS) and recorded through the platform's adapter; a study Orthanc does not have is a clear 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, PrincipalKind
from cityhealth.telemed import imaging
from cityhealth.telemed.dicomweb import DicomWebPacs, PacsUnavailable, StudyNotFound
from cityhealth.telemed.imaging_models import ImagingStudy
from tests.telemed.ecg_files import image_instance
from tests.telemed.orthanc import orthanc  # noqa: F401 - the session's PACS
from tests.telemed.support import a_case

DOCTOR = Principal(kind=PrincipalKind.STAFF, subject="staff:52", scopes=frozenset(), organization_id=3)


@dataclass(frozen=True)
class StoredStudy:
    uid: str
    patient_id: str
    accession: str
    instances: frozenset[str]


@pytest.fixture
def study(orthanc: str) -> StoredStudy:  # noqa: F811 - the fixture imported above
    """Three tiny images in two series of a new study, stored in Orthanc through its REST API."""
    uid, patient_id = generate_uid(), f"P{generate_uid()[-10:]}"
    accession = generate_uid()[-12:]
    series = [generate_uid(), generate_uid()]
    sop_uids = set()
    for number, series_uid in enumerate([series[0], series[0], series[1]], start=1):
        sop_uid, data = image_instance(uid, series_uid, number=number, patient_id=patient_id, accession=accession)
        response = httpx.post(f"{orthanc}/instances", content=data, headers={"Content-Type": "application/dicom"})
        assert response.status_code == 200, response.text
        sop_uids.add(sop_uid)
    return StoredStudy(uid, patient_id, accession, frozenset(sop_uids))


@pytest.fixture
async def pacs(orthanc: str) -> AsyncIterator[DicomWebPacs]:  # noqa: F811
    async with DicomWebPacs("orthanc-test", f"{orthanc}/dicom-web") as adapter:
        yield adapter


async def test_a_study_is_found_by_patient_and_accession_through_qido(pacs: DicomWebPacs, study: StoredStudy) -> None:
    by_patient = await pacs.search_studies(patient_id=study.patient_id)
    assert [found.study_instance_uid for found in by_patient] == [study.uid]
    found = by_patient[0]
    assert found.accession_number == study.accession
    assert found.modalities == ("CT",)
    assert found.study_date == date(2022, 11, 15)
    assert found.description == "Chest CT"
    assert (await pacs.search_studies(accession_number=study.accession))[0].study_instance_uid == study.uid
    assert await pacs.search_studies(patient_id="nobody-" + study.patient_id) == []


async def test_images_are_counted_per_study(pacs: DicomWebPacs, study: StoredStudy) -> None:
    counted = await pacs.count_images(study.uid)
    assert (counted.series, counted.images) == (2, 3)
    described = await pacs.study(study.uid)  # the counts as the PACS reports them agree
    assert (described.series_count, described.image_count) == (2, 3)


async def test_a_study_is_retrieved_whole_through_wado(pacs: DicomWebPacs, study: StoredStudy) -> None:
    instances = await pacs.retrieve_study(study.uid)
    assert {instance.sop_instance_uid for instance in instances} == study.instances
    assert all(instance.data[128:132] == b"DICM" for instance in instances)


async def test_a_study_the_pacs_does_not_have_is_a_clear_not_found(pacs: DicomWebPacs, orthanc: str) -> None:  # noqa: F811
    missing = generate_uid()
    for call in (pacs.study, pacs.count_images, pacs.retrieve_study):
        with pytest.raises(StudyNotFound) as caught:
            await call(missing)
        assert caught.value.status == 404
        assert caught.value.value == missing
        assert "has no study" in caught.value.message
        assert missing in caught.value.message


async def test_a_pacs_that_cannot_be_reached_is_named(study: StoredStudy) -> None:
    async with DicomWebPacs("closed", "http://127.0.0.1:9/dicom-web", timeout_s=2) as closed:
        with pytest.raises(PacsUnavailable) as caught:
            await closed.study(study.uid)
    assert caught.value.status == 502
    assert caught.value.rule == "pacs_reachable"
    assert "closed" in caught.value.message


async def test_a_recorded_study_keeps_metadata_and_counts_and_is_retrieved_for_a_consultation(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    clock: SimulatedClock,
    settings: Settings,
    pacs: DicomWebPacs,
    study: StoredStudy,
) -> None:
    cipher, case_id = field_cipher(settings), await a_case(app, client)
    async with database.transaction() as session:
        view = await imaging.record_study(session, clock, cipher, DOCTOR, pacs, study.uid, case_id=case_id)
    async with database.transaction() as session:
        again = await imaging.record_study(session, clock, cipher, DOCTOR, pacs, study.uid)
        assert await session.scalar(select(func.count()).select_from(ImagingStudy)) == 1
        row = await session.get(ImagingStudy, view.id)
        assert row is not None
        assert study.patient_id not in f"{row.patient_id_enc} {row.patient_id_hash}"
    assert again.id == view.id
    assert again.case_id == case_id
    assert (view.series_count, view.image_count, view.modalities) == (2, 3, ("CT",))
    assert view.patient_id_masked is not None
    assert view.patient_id_masked.endswith(study.patient_id[-4:])
    assert study.patient_id not in view.patient_id_masked
    async with database.transaction() as session:
        instances = await imaging.retrieve_for_consultation(session, clock, DOCTOR, pacs, view.id)
    assert {instance.sop_instance_uid for instance in instances} == study.instances


async def test_recording_a_study_the_pacs_lacks_records_nothing(
    database: Database, clock: SimulatedClock, settings: Settings, pacs: DicomWebPacs
) -> None:
    with pytest.raises(StudyNotFound):
        async with database.transaction() as session:
            await imaging.record_study(session, clock, field_cipher(settings), DOCTOR, pacs, generate_uid())
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(ImagingStudy)) == 0


async def test_a_report_is_written_signed_and_then_fixed(
    database: Database, clock: SimulatedClock, settings: Settings, pacs: DicomWebPacs, study: StoredStudy
) -> None:
    async with database.transaction() as session:
        view = await imaging.record_study(session, clock, field_cipher(settings), DOCTOR, pacs, study.uid)
        draft = await imaging.write_report(
            session, clock, DOCTOR, view.id, findings="No nodule.", impression="Normal", sign=False
        )
    assert (draft.status, draft.signed_at) == ("preliminary", None)
    async with database.transaction() as session:
        final = await imaging.write_report(
            session, clock, DOCTOR, view.id, findings="No nodule seen.", impression="Normal chest CT", sign=True
        )
    async with database.transaction() as session:
        retried = await imaging.write_report(
            session, clock, DOCTOR, view.id, findings="No nodule seen.", impression="Normal chest CT", sign=True
        )
        with pytest.raises(Conflict):
            await imaging.write_report(
                session, clock, DOCTOR, view.id, findings="A nodule.", impression="Abnormal", sign=True
            )
    assert final.status == "final"
    assert final.signed_at == clock.now()
    assert retried == final
    async with database.transaction() as session:
        assert await imaging.report_view(session, clock, DOCTOR, view.id) == final
