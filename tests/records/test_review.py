"""Records without a usable ID number: the score links above the threshold, queues inside the band for an
operator, and does nothing below it; the operator's accept and reject."""

from __future__ import annotations

from cityhealth.records.models import LinkReview
from tests.factories.registry import audit_events, count
from tests.records.support import LINKAGE, City, open_reviews, residents_of_timeline


async def test_a_score_above_the_threshold_links(city: City) -> None:
    who = await city.registered(3, by_passport=True)
    await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.resident_id, found.method) == ("linked", who.resident_id, "score")
    assert found.score is not None
    assert found.score >= 20


async def test_a_score_in_the_review_band_is_queued_not_linked(city: City) -> None:
    # the resident is a man: the hospital's record says a woman, with another phone
    who = await city.registered(3, by_passport=True, sex_code="2", sex_name="女", phone="13900000000")
    await city.visited()
    counts = await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("review", None, "score.review_band")
    assert counts.queued == 1
    reviews = await open_reviews(city.database)
    assert [(r.patient_key, r.resident_id, r.agreements["sex"]) for r in reviews] == [
        ("P001", who.resident_id, "disagree")]
    assert await residents_of_timeline(city.database) == {"v-1": None}
    response = await city.client.get(f"{LINKAGE}/reviews", headers=await city.operator())
    assert [row["id"] for row in response.json()] == [reviews[0].id]


async def test_a_score_below_the_band_queues_nothing(city: City) -> None:
    await city.registered(3, by_passport=True, name="赵六", sex_code="2", sex_name="女", phone="13900000000")
    await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.reason) == ("unlinked", "score.below_review")
    assert await count(city.database, LinkReview) == 0


async def _queued(city: City) -> tuple[int, LinkReview]:
    who = await city.registered(3, by_passport=True, sex_code="2", sex_name="女", phone="13900000000")
    await city.visited()
    await city.link()
    return who.resident_id, (await open_reviews(city.database))[0]


async def test_accepting_a_review_links_and_the_records_follow(city: City) -> None:
    resident_id, review = await _queued(city)
    response = await city.client.post(f"{LINKAGE}/reviews/{review.id}/accept",
                                      json={"note": "same person, sex mistyped"}, headers=await city.operator())
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["method"]) == ("linked", "operator")
    assert await residents_of_timeline(city.database) == {"v-1": resident_id}
    assert await open_reviews(city.database) == []
    assert (await city.events_of("P001"))[-1] == (
        "merged", None, resident_id, "operator", "staff:42")
    assert len(await audit_events(city.database, resource_type="records_link_review", action="update")) == 1


async def test_accepting_the_same_review_again_changes_nothing(city: City) -> None:
    _, review = await _queued(city)
    headers = await city.operator()
    await city.client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    events = await city.events_of("P001")
    again = await city.client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    assert again.status_code == 200, again.text
    assert await city.events_of("P001") == events


async def test_rejecting_the_only_candidate_leaves_the_identity_unlinked_and_automation_keeps_off(city: City) -> None:
    _, review = await _queued(city)
    response = await city.client.post(f"{LINKAGE}/reviews/{review.id}/reject", json={}, headers=await city.operator())
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("unlinked", "review.rejected")
    await city.link(rebuild=True)
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.method) == ("unlinked", "operator")


async def test_a_decided_review_cannot_be_decided_the_other_way(city: City) -> None:
    _, review = await _queued(city)
    headers = await city.operator()
    await city.client.post(f"{LINKAGE}/reviews/{review.id}/reject", json={}, headers=headers)
    response = await city.client.post(f"{LINKAGE}/reviews/{review.id}/accept", json={}, headers=headers)
    assert response.status_code == 409, response.text
    assert (response.json()["code"], response.json()["rule"]) == ("review_decided", "review.open")


async def test_the_review_queue_is_closed_to_a_clinician(city: City) -> None:
    response = await city.client.get(f"{LINKAGE}/reviews", headers=await city.clinician())
    assert response.status_code == 403, response.text
