"""The real-time upload's statements: originals inserted before any probe, the audit chain appended on the
driver's connection (collection/originals.py, security/audit.write_pending_now)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.repository import stored_records
from cityhealth.db.engine import Database
from cityhealth.security import audit
from cityhealth.security.audit import Action, record, write_pending_now
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.models import AuditEvent
from tests.collection.conftest import Unit, post_records, stored_count
from tests.factories.collection import make_record


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """The keys of every existence probe that reached the database (an empty key list sends none)."""
    seen: list[list[tuple[str, str]]] = []
    probe = stored_records.existing_records

    async def existing_records(session: Any, organization_id: int, keys: Sequence[tuple[str, str]]) -> Any:
        if keys:
            seen.append(sorted(keys))
        return await probe(session, organization_id, keys)

    monkeypatch.setattr(stored_records, "existing_records", existing_records)
    return seen


async def test_originals_are_inserted_first_and_only_the_stored_keys_are_probed_and_decided(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    probes: list[list[tuple[str, str]]],
) -> None:
    at = clock.now() - timedelta(hours=1)
    first = [make_record("outpatient_visit", hospital.code, f"o-{n}", at) for n in range(4)]
    response = await post_records(client, hospital, "outpatient_visit", first)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["accepted"] == 4
    revoke = make_record("outpatient_visit", hospital.code, "o-3", at, action=3)
    assert (await post_records(client, hospital, "outpatient_visit", [revoke])).json()["counts"]["revoked"] == 1
    probes_before = list(probes)
    # o-0 sent again as it was, o-1 changed but still an original, o-3 (revoked) as an original again, o-9 new.
    again = [
        first[0],
        {**first[1], "visit_no": "V9999999"},
        make_record("outpatient_visit", hospital.code, "o-3", at),
        make_record("outpatient_visit", hospital.code, "o-9", at),
    ]
    response = await post_records(client, hospital, "outpatient_visit", again)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["record_id"], r["status"]) for r in body["records"]] == [
        ("o-0", "duplicate"), ("o-1", "rejected"), ("o-3", "rejected"), ("o-9", "accepted")]
    assert [e["rule"] for r in body["records"] for e in r.get("errors", [])] == ["action.exists", "record.revoked"]
    assert body["counts"] == {"accepted": 1, "amended": 0, "revoked": 0, "duplicate": 1, "rejected": 2,
                              "received": 4}
    assert await stored_count(database) == 5  # o-0…o-3 and o-9, nothing else written
    new_probes = probes[len(probes_before):]
    if database.is_sqlite:  # probed before the insert, every key
        assert new_probes == [sorted(("outpatient_visit", f"o-{n}") for n in (0, 1, 3, 9))]
        return
    # PostgreSQL: the first batch (all new) and the last one's new record were never probed.
    assert probes_before == [[("outpatient_visit", "o-3")]]  # the revocation is not an original
    assert new_probes == [[("outpatient_visit", f"o-{n}") for n in (0, 1, 3)]]


async def test_a_batch_of_new_originals_is_stored_whole(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database,
    probes: list[list[tuple[str, str]]],
) -> None:
    at = clock.now() - timedelta(hours=1)
    batch = [make_record("outpatient_visit", hospital.code, f"n-{n}", at) for n in range(30)]
    response = await post_records(client, hospital, "outpatient_visit", batch)
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["records"]} == {"accepted"}
    assert await stored_count(database) == 30
    assert probes == ([[("outpatient_visit", f"n-{n}") for n in sorted(range(30), key=str)]]
                      if database.is_sqlite else [])


async def test_events_written_on_the_driver_join_the_chain_before_the_commit(
    database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooked: list[int] = []
    document = audit._pg_document
    monkeypatch.setattr(audit, "_pg_document", lambda pending: hooked.append(len(pending)) or document(pending))
    async with database.transaction() as session:
        for n in range(2):
            record(session, clock, None, Action.READ, "resident", resource_id=n, detail=f"读取 {n}\n")
        await write_pending_now(session)
        written = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        if database.is_sqlite:
            assert written == 0  # SQLite: left to the commit hook
        else:
            assert (written, hooked) == (2, [2])  # written now, in one document
    after = await verify_chain(database)
    assert (after.ok, after.checked) == (True, 2)
    assert hooked == ([] if database.is_sqlite else [2])  # the commit hook had nothing left to write
