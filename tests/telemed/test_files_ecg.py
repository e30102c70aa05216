"""ECG tracings over HTTP: uploaded for a case (DICOM waveform or aECG, by Content-Type or by the file's own
marker), read back as metadata and as SVG by the requester and the centre the case is routed to; every bad
upload is a 422 (or 413) naming the problem with nothing kept; anyone else finds no such case."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydicom.uid import generate_uid
from sqlalchemy import select

from cityhealth.security.models import AuditEvent
from cityhealth.telemed import files
from tests.telemed.ecg_files import aecg, dicom_ecg, image_instance
from tests.telemed.files_support import case_world, tracings_kept, upload, watch_drawings
from tests.telemed.support import CASES, submit


async def test_a_dicom_ecg_is_uploaded_by_the_requester_and_read_by_the_centre(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world, data = await case_world(app, client), dicom_ecg()
    sent = await upload(client, world.requester.headers, world.ecg(), data, "application/dicom")
    assert sent.status_code == 200, sent.text
    kept = sent.json()
    assert (kept["case_id"], kept["source_format"], kept["created"]) == (world.case_id, "dicom", True)
    assert (len(kept["leads"]), kept["sample_count"], kept["duration_s"]) == (12, 5000, 10.0)
    assert kept["patient_id_masked"] == "**************1234"
    read = await client.get(world.ecg(f"/{kept['id']}"), headers=world.centre.headers)
    assert read.status_code == 200
    assert read.json()["leads"] == kept["leads"]
    drawn = await client.get(world.ecg(f"/{kept['id']}/svg"), headers=world.centre.headers)
    assert drawn.status_code == 200
    assert drawn.headers["content-type"].startswith("image/svg+xml")
    assert drawn.text.lstrip().startswith("<svg")
    listed = await client.get(world.ecg(), headers=world.centre.headers)
    assert [item["id"] for item in listed.json()] == [kept["id"]]
    again = await upload(client, world.centre.headers, world.ecg(), data, "application/dicom")
    assert (again.json()["id"], again.json()["created"]) == (kept["id"], False)
    assert await tracings_kept(app) == 1


async def test_a_tracing_is_drawn_off_the_event_loop_once_its_reading_has_committed(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await case_world(app, client)
    kept = (await upload(client, world.requester.headers, world.ecg(), dicom_ecg(), "application/dicom")).json()
    drawings = watch_drawings(app, monkeypatch)
    for caller in (world.centre, world.requester):
        drawn = await client.get(world.ecg(f"/{kept['id']}/svg"), headers=caller.headers)
        assert drawn.status_code == 200, drawn.text
    assert drawings == [(True, 1), (True, 2)]  # in a thread, each reading's audit event already committed


@pytest.mark.parametrize("content_type", ["application/hl7-v3+xml", "text/xml; charset=utf-8", None])
async def test_an_aecg_is_taken_by_its_content_type_or_its_xml_start(
    app: FastAPI, client: httpx.AsyncClient, content_type: str | None
) -> None:
    world = await case_world(app, client)
    sent = await upload(client, world.centre.headers, world.ecg(), aecg().encode(), content_type)
    assert sent.status_code == 200, sent.text
    assert sent.json()["source_format"] == "aecg"


async def test_a_dicom_file_sent_as_octet_stream_is_recognised_by_its_marker(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await case_world(app, client)
    sent = await upload(client, world.requester.headers, world.ecg(), dicom_ecg(), "application/octet-stream")
    assert (sent.status_code, sent.json()["source_format"]) == (200, "dicom")


def _broken_xml() -> bytes:
    return aecg().replace("</component>", "", 1).encode()


def _ct_image() -> bytes:
    return image_instance(generate_uid(), generate_uid(), number=1, patient_id="P1", accession="A1")[1]


@pytest.mark.parametrize(
    ("data", "content_type", "rule"),
    [
        (b"plain text, not a tracing", "application/dicom", "dicom"),
        (_ct_image(), "application/dicom", "ecg_sop_class"),
        (dicom_ecg(truncate=100), "application/dicom", "waveform_length"),
        (_broken_xml(), "application/hl7-v3+xml", "xml_well_formed"),
        (b"<?xml version='1.0'?><html/>", "application/xml", "aecg_root"),
        (b"\x00\x01 neither DICOM nor XML", "application/octet-stream", "ecg_format"),
        (b"\x00\x01 neither DICOM nor XML", None, "ecg_format"),
        (dicom_ecg(), "image/png", "content_type"),
        (b"", "application/dicom", "empty_file"),
    ],
    ids=["not-dicom", "dicom-image", "truncated-waveform", "xml-broken", "not-aecg", "sniffed", "no-type",
         "png-type", "empty"],
)
async def test_a_file_that_is_not_an_ecg_is_refused_naming_the_problem_and_nothing_is_kept(
    app: FastAPI, client: httpx.AsyncClient, data: bytes, content_type: str | None, rule: str
) -> None:
    world = await case_world(app, client)
    refused = await upload(client, world.requester.headers, world.ecg(), data, content_type)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert (problem["code"], problem["rule"]) == ("ecg_file_refused", rule)
    assert await tracings_kept(app) == 0


async def test_a_file_over_the_upload_limit_is_refused_before_it_is_read(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await case_world(app, client)
    too_big = dicom_ecg() + b"\x00" * files.MAX_ECG_UPLOAD_BYTES
    refused = await upload(client, world.requester.headers, world.ecg(), too_big, "application/dicom")
    assert refused.status_code == 413, refused.text
    assert (refused.json()["rule"], refused.json()["field"]) == ("telemed.ecg.max_bytes", "body")
    assert await tracings_kept(app) == 0


async def test_another_centre_and_another_requester_find_no_such_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await case_world(app, client)
    kept = (await upload(client, world.requester.headers, world.ecg(), dicom_ecg(), "application/dicom")).json()
    for stranger in (world.other_centre.headers, world.other_requester.headers):
        for url in (world.ecg(), world.ecg(f"/{kept['id']}"), world.ecg(f"/{kept['id']}/svg")):
            response = await client.get(url, headers=stranger)
            assert (response.status_code, response.json()["field"]) == (404, "case_id"), url
        sent = await upload(client, stranger, world.ecg(), aecg().encode(), "application/hl7-v3+xml")
        assert sent.status_code == 404
    assert await tracings_kept(app) == 1
    async with app.state.database.transaction() as session:
        denied = await session.scalars(
            select(AuditEvent).where(AuditEvent.resource_type == "telemed_case", AuditEvent.action == "denied")
        )
        assert len(list(denied)) == 8


async def test_a_tracing_is_not_found_under_another_case_of_the_same_caller(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await case_world(app, client)
    kept = (await upload(client, world.requester.headers, world.ecg(), dicom_ecg(), "application/dicom")).json()
    second = (await submit(client, world.requester))["id"]
    response = await client.get(f"{CASES}/{second}/ecg/{kept['id']}", headers=world.requester.headers)
    assert (response.status_code, response.json()["field"]) == (404, "tracing_id")
    missing = await client.get(world.ecg("/999999/svg"), headers=world.requester.headers)
    assert (missing.status_code, missing.json()["field"]) == (404, "tracing_id")


async def test_the_same_file_for_a_second_case_is_a_conflict(app: FastAPI, client: httpx.AsyncClient) -> None:
    world, data = await case_world(app, client), dicom_ecg()
    assert (await upload(client, world.requester.headers, world.ecg(), data, None)).status_code == 200
    second = (await submit(client, world.requester))["id"]
    refused = await upload(client, world.requester.headers, f"{CASES}/{second}/ecg", data, None)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "telemed.ecg.one_case"
    assert await tracings_kept(app) == 1
