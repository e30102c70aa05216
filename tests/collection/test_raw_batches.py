"""A real-time batch's raw body is kept sealed, and opens again to the bytes received (either format)."""

from __future__ import annotations

import os
import zlib
from datetime import timedelta

import httpx
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.collection.models import RawPayload
from cityhealth.collection.uploads import open_raw_batch
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit
from tests.factories.collection import make_record


async def test_a_stored_raw_batch_opens_to_the_bytes_received(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    sent = orjson.dumps([make_record("outpatient_visit", hospital.code, f"r-{i}", clock.now() - timedelta(hours=1),
                                     doctor_name="独特的医生名") for i in range(20)])
    response = await client.post("/api/collection/forms/outpatient_visit/records", content=sent,
                                 headers=hospital.headers | {"content-type": "application/json"})
    assert response.status_code == 200
    async with database.transaction() as session:
        stored = (await session.execute(select(RawPayload.body))).scalar_one()
    assert stored is not None
    assert "独特的医生名".encode() not in stored  # sealed
    assert len(stored) < len(sent)  # compressed first
    assert open_raw_batch(runtime(app)[0], stored) == sent


def test_a_raw_batch_sealed_with_zlib_before_still_opens(app: FastAPI) -> None:
    collector = runtime(app)[0]
    body = b'[{"record_id": "old"}]'
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(collector.spool_key).encrypt(nonce, zlib.compress(body, 1), b"raw-batch")
    assert open_raw_batch(collector, sealed) == body
