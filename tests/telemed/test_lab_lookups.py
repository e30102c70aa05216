"""The lab batch's two lookups by composite key: which messages were accepted before, and which specimens exist.

Both answer exactly the keys asked, and on PostgreSQL each key is one probe of its unique index, however many
rows the table holds: a row-value IN list had let the planner use only the column the keys share (one
application name for a dozen lab systems) and filter the month's every message by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cityhealth.db.driver import pg_driver
from cityhealth.db.engine import Database
from cityhealth.telemed import lab_repository
from tests.conftest import BACKEND

pytestmark = pytest.mark.asyncio

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)


def _message(facility: str, control_id: str, ack: str = "AA") -> dict[str, Any]:
    return {
        "sending_application": "LIS",
        "sending_facility": facility,
        "control_id": control_id,
        "message_type": "ORU^R01",
        "ack_code": ack,
        "error_code": None if ack == "AA" else 207,
        "error_location": None if ack == "AA" else "OBX[1]-5",
        "error_text": None if ack == "AA" else "a value of type NM that is not a number",
        "raw_cipher": "not read here",
        "raw_bytes": 10,
        "received_at": AT,
    }


def _specimen(facility: str, number: str, state: str) -> dict[str, Any]:
    return {"sending_facility": facility, "specimen_no": number, "specimen_type": "BLD", "state": state,
            "reject_reason": None, "created_at": AT, "updated_at": AT}


async def _fill(database: Database, messages: int) -> None:
    """`messages` accepted messages from twelve labs under one application name, a refused one, and specimens."""
    rows = [_message(f"LAB-{n % 12:02d}", f"C{n:06d}") for n in range(messages)]
    rows.append(_message("LAB-01", "REFUSED-1", ack="AE"))
    async with database.transaction() as session:
        await lab_repository.insert_results(session, rows, [], [])
        await lab_repository.insert_specimens(
            session, [_specimen(f"LAB-{n % 12:02d}", f"S{n:06d}", "shipped") for n in range(messages)]
        )


async def test_the_lookups_answer_exactly_the_keys_asked(database: Database) -> None:
    await _fill(database, 60)
    asked = [("LIS", "LAB-00", "C000000"), ("LIS", "LAB-01", "C000013"), ("LIS", "LAB-01", "C000000"),
             ("LIS", "LAB-01", "REFUSED-1"), ("OTHER", "LAB-00", "C000000"), ("LIS", "LAB-11", "C000059")]
    async with database.transaction() as session:
        accepted = await lab_repository.accepted_keys(session, asked)
        specimens = await lab_repository.specimens(
            session, [("LAB-03", "S000003"), ("LAB-04", "S000003"), ("LAB-11", "S000059"), ("LAB-00", "none")]
        )
    # A refused message's key is not an accepted one; a key differing in any part is another message.
    assert accepted == {("LIS", "LAB-00", "C000000"), ("LIS", "LAB-01", "C000013"), ("LIS", "LAB-11", "C000059")}
    assert {key: state for key, (_, state) in specimens.items()} == {
        ("LAB-03", "S000003"): "shipped", ("LAB-11", "S000059"): "shipped"
    }
    async with database.transaction() as session:
        assert await lab_repository.accepted_keys(session, []) == set()
        assert await lab_repository.specimens(session, []) == {}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.skipif(BACKEND != "postgresql", reason="the plan is PostgreSQL's")
async def test_on_postgresql_each_key_is_one_probe_of_its_unique_index(database: Database) -> None:
    await _fill(database, 3_000)  # no ANALYZE: as in a listener's first minutes, before autovacuum looks
    probes = {
        "accepted": (
            lab_repository._ACCEPTED_PROBE,
            (["LIS"] * 3, ["LAB-00", "LAB-01", "LAB-02"], ["C000000", "C000013", "NEW"]),
            "ux_telemed_lab_messages_accepted",
        ),
        "specimens": (
            lab_repository._SPECIMENS_PROBE,
            (["LAB-00", "LAB-01", "LAB-02"], ["S000000", "S000013", "NEW"]),
            "ux_telemed_lab_specimens_number",
        ),
    }
    for name, (statement, params, index) in probes.items():
        async with database.transaction() as session:
            driver = await pg_driver(session)
            explained = await driver.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *params)
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        scans = [node for node in _nodes(plan) if node.get("Relation Name", "").startswith("telemed_lab_")]
        assert [(node["Node Type"], node.get("Index Name")) for node in scans] in (
            [("Index Scan", index)], [("Index Only Scan", index)]
        ), (name, scans)
        [scan] = scans
        assert scan.get("Rows Removed by Filter", 0) == 0, (name, scan)
        assert scan["Actual Loops"] == 3, (name, scan)  # one probe per key
        assert scan["Actual Rows"] <= 1, (name, scan)
