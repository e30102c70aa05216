"""The bulletin's pathology figures: cumulative counts at a moment, for a city's members only, leaving out
members that left, people deactivated, and meetings and lectures not (yet) held."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from cityhealth.telemed.pathology_statistics import PathologyTotals, pathology_totals
from tests.telemed.pathology_support import (
    NOW,
    PATHOLOGY,
    hospital_headers,
    lecture_body,
    meeting_body,
    network,
    person,
    submit,
)
from tests.telemed.support import API, admin, doctor, report_body, requester, step


async def _totals(app: FastAPI, until_minutes: float) -> PathologyTotals:
    async with app.state.database.sessions() as session:
        return await pathology_totals(session, "320100", NOW + timedelta(minutes=until_minutes))


async def test_the_figures_count_the_city_network_at_a_moment(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    maanshan = await requester(app, network="pathology", area_code="340500")  # a member in another city
    leaver = await requester(app, network="pathology", area_code="320111")
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    retired = await person(client, net.admin, net.centre.organization_id, "expert")
    await person(client, net.admin, net.hospital.organization_id, "doctor")
    await person(client, net.admin, maanshan.organization_id, "doctor")
    await person(client, net.admin, leaver.organization_id, "doctor")
    left = await client.post(
        f"{API}/members/{leaver.member_id}/leave", json={"left_on": "2022-06-16"}, headers=net.admin
    )
    assert left.status_code == 200
    reported = (await submit(client, net.hospital))["case"]["id"]
    await submit(client, net.hospital)
    await submit(client, maanshan)
    for name in ("accept", "claim"):
        assert (await step(client, net.centre.headers, reported, name)).status_code == 200
    signed = await client.post(
        f"/api/telemed/cases/{reported}/report/sign", json=report_body(), headers=net.centre.headers
    )
    assert signed.status_code == 200
    hospital, centre = net.hospital.headers, net.centre.headers
    meetings = [
        (await client.post(f"{PATHOLOGY}/meetings", json=meeting_body([expert["id"]]), headers=hospital)).json()
        for _ in range(3)
    ]
    lecture = (await client.post(f"{PATHOLOGY}/lectures", json=lecture_body(expert["id"]), headers=centre)).json()
    cancelled = await client.post(
        f"{PATHOLOGY}/meetings/{meetings[1]['id']}/cancel", json={"request_key": "c"}, headers=net.hospital.headers
    )
    assert cancelled.status_code == 200
    app.state.clock.advance(timedelta(days=3))  # past every start
    administrator = await admin(app)
    deactivated = await client.post(f"{PATHOLOGY}/people/{retired['id']}/deactivate", json={}, headers=administrator)
    assert deactivated.status_code == 200
    held = await client.post(
        f"{PATHOLOGY}/meetings/{meetings[0]['id']}/hold",
        json={"request_key": "h", "minutes": "一致意见：慢性胃炎"},
        headers=await hospital_headers(app, net),
    )
    given = await client.post(
        f"{PATHOLOGY}/lectures/{lecture['id']}/hold",
        json={"request_key": "h", "attendance": 60},
        headers=await doctor(app, net.centre.organization_id),
    )
    assert held.status_code == given.status_code == 200

    # Before anything was registered: the members only (the leaver still a member then).
    assert await _totals(app, -1) == PathologyTotals(
        hospitals=3, experts=0, doctors=0, cases=0, reports=0, case_discussions=0, video_lectures=0
    )
    # Two days on: the leaver gone with its doctor; nothing held yet; both experts still active.
    assert await _totals(app, 2 * 24 * 60) == PathologyTotals(
        hospitals=2, experts=2, doctors=1, cases=2, reports=1, case_discussions=0, video_lectures=0
    )
    now = (app.state.clock.now() - NOW).total_seconds() / 60
    expected = PathologyTotals(
        hospitals=2, experts=1, doctors=1, cases=2, reports=1, case_discussions=1, video_lectures=1
    )
    assert await _totals(app, now) == expected
    answered = await client.get(
        f"{PATHOLOGY}/totals", params={"city": "320100", "until": app.state.clock.now().isoformat()},
        headers=administrator,
    )
    assert answered.json() == expected.model_dump()
    assert list(answered.json()) == [
        "hospitals", "experts", "doctors", "cases", "reports", "case_discussions", "video_lectures"
    ]


async def test_the_figures_need_an_aware_moment(app: FastAPI, client: httpx.AsyncClient) -> None:
    answered = await client.get(
        f"{PATHOLOGY}/totals", params={"city": "320100", "until": "2022-06-30T23:59:59"}, headers=await admin(app)
    )
    assert answered.status_code == 422
