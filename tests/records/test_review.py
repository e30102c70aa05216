"""Records without a usable ID number: the score links above the threshold, queues inside the band for an
operator, and does nothing below it; the operator's accept and reject."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.records.models import LinkReview
from tests.factories.booking import World
from tests.factories.registry import audit_events
from tests.records.support import (
    LINKAGE,
    count,
    events_of,
    hours_ago,
    link,
    link_of,
    open_reviews,
    operator,
    passport_master,
    person,
    residents_of_timeline,
    upload,
    visit,
)

GULOU = "H-GULOU"


async def test_a_score_above_the_threshold_links(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [passport_master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.resident_id, found.method) == ("linked", who.resident_id, "score")
    assert found.score is not None
    assert found.score >= 20


async def test_a_score_in_the_review_band_is_queued_not_linked(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)  # a man
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [passport_master(GULOU, "m-1", hours_ago(clock, 3), "P001", who, sex_code="2", sex_name="女",
                                  phone="13900000000")])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    counts = await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("review", None, "score.review_band")
    assert counts.queued == 1
    reviews = await open_reviews(database)
    assert [(r.patient_key, r.resident_id, r.agreements["sex"]) for r in reviews] == [
        ("P001", who.resident_id, "disagree")]
    assert await residents_of_timeline(database) == {"v-1": None}
    response = await client.get(f"{LINKAGE}/reviews", headers=await operator(app))
    assert [row["id"] for row in response.json()] == [reviews[0].id]


async def test_a_score_below_the_band_queues_nothing(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [passport_master(GULOU, "m-1", hours_ago(clock, 3), "P001", who, name="赵六", sex_code="2",
                                  sex_name="女", phone="13900000000")])
    await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.reason) == ("unlinked", "score.below_review")
    assert await count(database, LinkReview) == 0


async def _queued(app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings,
                  clock: SimulatedClock, world: World) -> tuple[int, LinkReview]:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [passport_master(GULOU, "m-1", hours_ago(clock, 3), "P001", who, sex_code="2", sex_name="女",
                                  phone="13900000000")])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    return who.resident_id, (await open_reviews(database))[0]


async def test_accepting_a_review_links_and_the_records_follow(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    resident_id, review = await _queued(app, client, database, settings, clock, world)
    response = await client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={"note": "same person, sex mistyped"},
                                 headers=await operator(app))
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["method"]) == ("linked", "operator")
    assert await residents_of_timeline(database) == {"v-1": resident_id}
    assert await open_reviews(database) == []
    assert (await events_of(database, world.hospital_id, "P001"))[-1] == (
        "merged", None, resident_id, "operator", "staff:42")
    assert len(await audit_events(database, resource_type="records_link_review", action="update")) == 1


async def test_accepting_the_same_review_again_changes_nothing(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    _, review = await _queued(app, client, database, settings, clock, world)
    headers = await operator(app)
    await client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    events = await events_of(database, world.hospital_id, "P001")
    again = await client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    assert again.status_code == 200, again.text
    assert await events_of(database, world.hospital_id, "P001") == events


async def test_rejecting_the_only_candidate_leaves_the_identity_unlinked_and_automation_keeps_off(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    _, review = await _queued(app, client, database, settings, clock, world)
    response = await client.post(f"{LINKAGE}/reviews/{review.id}/reject", json={}, headers=await operator(app))
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("unlinked", "review.rejected")
    await link(database, clock, settings, rebuild=True)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.method) == ("unlinked", "operator")


async def test_a_decided_review_cannot_be_decided_the_other_way(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    _, review = await _queued(app, client, database, settings, clock, world)
    headers = await operator(app)
    await client.post(f"{LINKAGE}/reviews/{review.id}/reject", json={}, headers=headers)
    response = await client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    assert response.status_code == 409, response.text
    assert (response.json()["code"], response.json()["rule"]) == ("review_decided", "review.open")


async def test_the_review_queue_is_closed_to_a_clinician(
        app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    from tests.records.support import clinician

    response = await client.get(f"{LINKAGE}/reviews", headers=await clinician(app, world.hospital_id))
    assert response.status_code == 403, response.text
