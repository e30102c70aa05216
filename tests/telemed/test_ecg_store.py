"""Keeping ECGs: stored once per file, identifiers sealed, the tracing read back and drawn to scale."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import NotFound
from cityhealth.security.audit import Action
from cityhealth.security.crypto import FieldCipher, field_cipher
from cityhealth.security.keys import encrypted_columns, rotate_column
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal, PrincipalKind
from cityhealth.telemed import ecg
from cityhealth.telemed.ecg_models import PATIENT_ID_PURPOSE, EcgTracing
from cityhealth.telemed.ecg_tracing import EcgFileRefused
from tests.telemed.ecg_files import aecg, dicom_ecg
from tests.telemed.support import a_case

DOCTOR = Principal(kind=PrincipalKind.STAFF, subject="staff:41", scopes=frozenset(), organization_id=7)
SVG = "{http://www.w3.org/2000/svg}"


async def test_an_upload_is_kept_once_however_often_it_is_retried(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    cipher, data, case_id = field_cipher(settings), dicom_ecg(), await a_case(app, client)
    async with database.transaction() as session:
        first = await ecg.store_ecg(session, clock, cipher, DOCTOR, data, case_id=case_id)
    async with database.transaction() as session:
        again = await ecg.store_ecg(session, clock, cipher, DOCTOR, data, declared_format="dicom")
    assert first.created
    assert not again.created
    assert again.id == first.id
    assert again.case_id == case_id
    assert (first.leads, first.sample_count, first.duration_s) == (again.leads, 5000, 10.0)
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(EcgTracing)) == 1
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.resource_type == ecg.RESOURCE).order_by(AuditEvent.id)
                )
            )
            .scalars()
            .all()
        )
    assert list(actions) == [Action.CREATE.value, Action.READ.value]


async def test_the_patient_identifier_is_sealed_and_found_by_its_keyed_hash(
    database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    cipher = field_cipher(settings)
    async with database.transaction() as session:
        summary = await ecg.store_ecg(session, clock, cipher, DOCTOR, aecg().encode())
    assert summary.patient_id_masked == "**************1234"
    async with database.transaction() as session:
        row = await session.get(EcgTracing, summary.id)
        assert row is not None
        stored = " ".join(str(value) for value in (row.patient_id_enc, row.patient_name_enc, row.patient_id_hash))
        assert "320102198001011234" not in stored
        assert "Wang" not in stored
        assert cipher.decrypt(PATIENT_ID_PURPOSE, row.patient_id_enc or "") == "320102198001011234"
        from cityhealth.telemed import ecg_repository

        found = await ecg_repository.tracings_of_patient(
            session, cipher.lookup_hash(PATIENT_ID_PURPOSE, "320102198001011234")
        )
    assert [item.id for item in found] == [summary.id]


async def test_the_samples_read_back_are_those_uploaded(
    database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    cipher, data = field_cipher(settings), dicom_ecg()
    async with database.transaction() as session:
        summary = await ecg.store_ecg(session, clock, cipher, DOCTOR, data)
        samples = await ecg.ecg_samples(session, clock, DOCTOR, summary.id)
    from cityhealth.telemed.ecg_dicom import read_dicom

    tracing = read_dicom(data)
    assert samples == dict(zip(tracing.leads, tracing.samples, strict=True))


async def test_a_refused_file_leaves_nothing_behind(
    database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    with pytest.raises(EcgFileRefused):
        async with database.transaction() as session:
            await ecg.store_ecg(session, clock, field_cipher(settings), DOCTOR, b"GIF89a not an ECG")
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(EcgTracing)) == 0
        with pytest.raises(NotFound):
            await ecg.ecg_summary(session, clock, field_cipher(settings), DOCTOR, 1)


def _points(polyline: ET.Element) -> list[tuple[float, float]]:
    pairs = (pair.split(",") for pair in (polyline.get("points") or "").split())
    return [(float(x), float(y)) for x, y in pairs]


async def test_the_tracing_is_drawn_as_a_12_lead_report_at_25_mm_s_and_10_mm_mv(
    database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    # aVR (lead index 3) steps by 4 x 40 x 6.25 uV = 1 mV each half second.
    async with database.transaction() as session:
        summary = await ecg.store_ecg(session, clock, field_cipher(settings), DOCTOR, dicom_ecg(sensitivity="6.25"))
        drawing = await ecg.ecg_drawing(session, clock, DOCTOR, summary.id)
    svg = drawing.svg()
    root = ET.fromstring(svg)  # noqa: S314 - the platform's own output
    assert root.get("width") == "267mm"
    assert root.get("height") == "130mm"
    traces = root.findall(f"{SVG}polyline[@class='lead']")
    assert [trace.get("data-lead") for trace in traces] == [
        "I",
        "aVR",
        "V1",
        "V4",
        "II",
        "aVL",
        "V2",
        "V5",
        "III",
        "aVF",
        "V3",
        "V6",
        "II",
    ]
    assert len(root.findall(f"{SVG}polyline[@class='calibration']")) == 4
    avr = _points(traces[1])
    xs, ys = [x for x, _ in avr], [y for _, y in avr]
    assert min(xs) == pytest.approx(12 + 62.5)
    assert max(xs) == pytest.approx(12 + 125, abs=0.2)
    assert max(ys) - min(ys) == pytest.approx(10.0)  # 1 mV = 10 mm
    rhythm = _points(traces[-1])
    assert max(x for x, _ in rhythm) == pytest.approx(12 + 250, abs=0.2)  # 10 s = 250 mm
    labels = {text.text for text in root.iter(f"{SVG}text")}
    assert set(summary.leads) <= labels
    assert re.search(r"25 mm/s · 10 mm/mV · 500 Hz · 10 s", svg)


def test_leads_other_than_the_twelve_get_a_row_each() -> None:
    from cityhealth.telemed.ecg_render import render_svg

    svg = render_svg(("II", "V5", "CM5"), 250.0, [[0] * 500, [1000] * 500, [-500] * 500])
    root = ET.fromstring(svg)  # noqa: S314 - the platform's own output
    traces = root.findall(f"{SVG}polyline[@class='lead']")
    assert [trace.get("data-lead") for trace in traces] == ["II", "V5", "CM5"]
    baselines = [25.0, 55.0, 85.0]
    for trace, baseline, microvolts in zip(traces, baselines, (0, 1000, -500), strict=True):
        assert {y for _, y in _points(trace)} == {baseline - microvolts / 100}


async def test_key_rotation_re_encrypts_the_tracing_identifiers(database: Database, clock: SimulatedClock) -> None:
    old, new, lookup = b"o" * 32, b"n" * 32, b"l" * 32
    async with database.transaction() as session:
        summary = await ecg.store_ecg(session, clock, FieldCipher(old, lookup), DOCTOR, dicom_ecg())
    rotating = FieldCipher(new, lookup, [old])
    columns = [item for item in encrypted_columns() if item.table == "telemed_ecg_tracings"]
    assert {item.column for item in columns} == {"patient_id_enc", "patient_name_enc"}
    assert sum([(await rotate_column(database, rotating, item)).rotated for item in columns]) == 2
    async with database.transaction() as session:
        view = await ecg.ecg_summary(session, clock, FieldCipher(new, lookup), DOCTOR, summary.id)
    assert view.patient_id_masked == summary.patient_id_masked


async def test_a_tracing_for_a_case_that_does_not_exist_is_refused_naming_it(
    database: Database, clock: SimulatedClock, settings: Settings
) -> None:
    async with database.transaction() as session:
        with pytest.raises(NotFound) as caught:
            await ecg.store_ecg(session, clock, field_cipher(settings), DOCTOR, dicom_ecg(), case_id=404_404)
    assert (caught.value.field, caught.value.value) == ("case_id", 404_404)
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(EcgTracing)) == 0
