"""The real-time upload's lane past the router (collection.api.UploadLane): the answers routing gives."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.registry.identifiers import make_resident_id
from cityhealth.security.principals import Scope
from tests.collection.conftest import Unit
from tests.factories.collection import make_record
from tests.factories.routing import watch_router
from tests.factories.security import headers_for, machine


def _cases(unit: Unit, other: Unit, reader: dict[str, str], clock: SimulatedClock) -> list[tuple[str, dict[str, str],
                                                                                                   bytes]]:
    """(form, headers, body): every way a sender's upload is answered, for `unit`."""
    moment = clock.now() - timedelta(hours=2)

    def batch(*ids: str, org: str = unit.code, **overrides: Any) -> bytes:
        return orjson.dumps([make_record("outpatient_visit", org, rid, moment, **overrides) for rid in ids])

    number = make_resident_id("320115", date(1980, 1, 1), 11)
    return [
        ("outpatient_visit", {}, batch("a-1")),  # no token
        ("outpatient_visit", reader, batch("a-1")),  # no collection.upload scope
        ("no_such_form", unit.headers, batch("a-1")),  # an unknown form
        ("outpatient_visit", unit.headers, b"[{"),  # not JSON
        ("outpatient_visit", unit.headers, b"[]"),  # no record
        ("outpatient_visit", unit.headers, b'{"record_id": "x"}'),  # not an array
        ("outpatient_visit", unit.headers, batch("a-1", org=other.code)),  # another unit's records
        ("outpatient_visit", unit.headers, batch("a-1", "a-2", number)),  # accepted, an id number masked
        ("outpatient_visit", unit.headers, batch("a-1", "a-2", number)),  # the retry: duplicates
        ("outpatient_visit", unit.headers, batch("a-3", "a-3", "a-4", action="x")),  # rejections
        ("outpatient_visit", unit.headers | {"content-type": "application/x-ndjson"},
         b"\n".join(orjson.dumps(make_record("outpatient_visit", unit.code, f"n-{i}", moment)) for i in range(2))),
    ]


async def test_an_upload_takes_the_lane_past_the_router_and_gets_the_answer_routing_gives(
    app: FastAPI, hospital: Unit, other_hospital: Unit, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed = watch_router(app, monkeypatch)
    answers: dict[tuple[bool, int], tuple[Any, ...]] = {}
    for lane, unit, other in ((True, hospital, other_hospital), (False, other_hospital, hospital)):
        reader = await headers_for(app, machine(Scope.COLLECTION_READ, organization_id=unit.org.id,
                                                client_id=f"reader-{lane}"))
        cases = _cases(unit, other, reader, clock)
        # A root path is what only routing resolves: the lane leaves such a request to the router.
        transport = httpx.ASGITransport(app=app, root_path="" if lane else "/city")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for i, (form, headers, body) in enumerate(cases):
                response = await http.post(f"{'' if lane else '/city'}/api/collection/forms/{form}/records",
                                           content=body, headers={"content-type": "application/json",
                                                                  "x-request-id": f"case-{i:04d}"} | headers)
                answers[lane, i] = (response.status_code, response.headers.get("content-type"),
                                    response.headers.get("x-request-id"),
                                    orjson.loads(response.content.replace(other.code.encode(), b"OTHER")))
        if lane:
            assert routed == []  # every upload took the lane
    # Under a root path the strict-JSON middleware, not the route, refuses the malformed body (case 3): the
    # platform's own paths leave it to the route, whose answer is compared with the lane's below all the same.
    assert len(routed) == len(cases) - 1
    statuses = [answers[True, i][0] for i in range(len(cases))]
    assert statuses == [401, 403, 404, 422, 422, 422, 403, 200, 200, 200, 200]
    assert [r["status"] for r in answers[True, 8][3]["records"]] == ["duplicate"] * 3
    assert "*" in answers[True, 7][3]["records"][2]["record_id"]  # the id number, masked
    for i in range(len(cases)):
        if i != 3:
            assert answers[True, i] == answers[False, i], i
    assert answers[True, 3][3]["rule"] == "json.malformed"


async def test_an_upload_with_a_query_string_or_a_longer_path_takes_the_usual_way(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed = watch_router(app, monkeypatch)
    body = [make_record("outpatient_visit", hospital.code, "q-1", clock.now() - timedelta(hours=2))]
    dry = await client.post("/api/collection/forms/outpatient_visit/records", json=body, headers=hospital.headers,
                            params={"dry_run": "true"})
    assert (dry.status_code, dry.json()["dry_run"]) == (200, True)
    deeper = await client.post("/api/collection/forms/a/b/records", json=body, headers=hospital.headers)
    assert deeper.status_code == 404
    assert routed == ["POST /api/collection/forms/outpatient_visit/records", "POST /api/collection/forms/a/b/records"]
