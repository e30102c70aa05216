"""Articles through their review: written, submitted, approved by another editor, published, unpublished; every
illegal move refused naming the state it met, every retry answered as the first time."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.hotline.knowledge_support import BASE, article_body, editor, published_article


async def test_an_article_is_written_reviewed_by_another_editor_and_published(client: httpx.AsyncClient,
                                                                             app: FastAPI) -> None:
    article = await published_article(client, app)
    assert article["status"] == "published"
    assert article["published_version_no"] == 1
    assert article["latest"]["state"] == "approved"
    assert article["latest"]["author"] != article["latest"]["reviewed_by"]
    assert article["category_name"] == "预防接种"


async def test_the_author_may_not_approve_their_own_version(client: httpx.AsyncClient, app: FastAPI) -> None:
    author = await editor(app, 1)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("own-review"), headers=author)).json()["id"]
    await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    refused = await client.post(f"{BASE}/articles/{article_id}/approve", json={"version_no": 1}, headers=author)
    assert refused.status_code == 403
    assert refused.json()["code"] == "own_version"


async def test_approving_a_draft_is_refused_naming_its_state(client: httpx.AsyncClient, app: FastAPI) -> None:
    author, reviewer = await editor(app, 1), await editor(app, 2)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("draft-approve"),
                                    headers=author)).json()["id"]
    refused = await client.post(f"{BASE}/articles/{article_id}/approve", json={"version_no": 1}, headers=reviewer)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "illegal_transition"
    assert problem["value"] == "draft"
    assert "draft" in problem["detail"]


async def test_publishing_a_version_in_review_is_refused_naming_its_state(client: httpx.AsyncClient,
                                                                         app: FastAPI) -> None:
    author, reviewer = await editor(app, 1), await editor(app, 2)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("publish-early"),
                                    headers=author)).json()["id"]
    await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    refused = await client.post(f"{BASE}/articles/{article_id}/publish", json={"version_no": 1}, headers=reviewer)
    assert refused.status_code == 409
    assert refused.json()["value"] == "in_review"
    unchanged = (await client.get(f"{BASE}/articles/{article_id}", headers=author)).json()
    assert unchanged["status"] == "draft"


async def test_unpublishing_a_never_published_article_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    author, reviewer = await editor(app, 1), await editor(app, 2)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("never-out"), headers=author)).json()["id"]
    refused = await client.post(f"{BASE}/articles/{article_id}/unpublish", headers=reviewer)
    assert refused.status_code == 409
    assert refused.json()["value"] == "draft"


async def test_a_rejected_version_goes_back_with_a_note_and_may_be_resubmitted(client: httpx.AsyncClient,
                                                                              app: FastAPI) -> None:
    author, reviewer = await editor(app, 1), await editor(app, 2)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("sent-back"), headers=author)).json()["id"]
    await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    no_note = await client.post(f"{BASE}/articles/{article_id}/reject", json={"version_no": 1}, headers=reviewer)
    assert no_note.status_code == 422
    assert no_note.json()["field"] == "note"
    rejected = await client.post(f"{BASE}/articles/{article_id}/reject",
                                 json={"version_no": 1, "note": "写明接种门诊的开放时间"}, headers=reviewer)
    assert rejected.json()["latest"]["state"] == "rejected"
    resubmitted = await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    assert resubmitted.json()["latest"]["state"] == "in_review"


async def test_a_repeated_transition_answers_as_the_first(client: httpx.AsyncClient, app: FastAPI) -> None:
    author, reviewer = await editor(app, 1), await editor(app, 2)
    article_id = (await client.post(f"{BASE}/articles", json=article_body("retried"), headers=author)).json()["id"]
    first = await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    again = await client.post(f"{BASE}/articles/{article_id}/submit", json={"version_no": 1}, headers=author)
    assert again.status_code == 200
    assert again.json()["latest"]["submitted_at"] == first.json()["latest"]["submitted_at"]
    await client.post(f"{BASE}/articles/{article_id}/approve", json={"version_no": 1}, headers=reviewer)
    await client.post(f"{BASE}/articles/{article_id}/publish", json={"version_no": 1}, headers=reviewer)
    republished = await client.post(f"{BASE}/articles/{article_id}/publish", json={"version_no": 1}, headers=reviewer)
    assert republished.status_code == 200
    assert republished.json()["status"] == "published"


async def test_creating_with_the_same_key_twice_is_one_article(client: httpx.AsyncClient, app: FastAPI) -> None:
    author = await editor(app, 1)
    first = await client.post(f"{BASE}/articles", json=article_body("twice"), headers=author)
    second = await client.post(f"{BASE}/articles", json=article_body("twice"), headers=author)
    assert second.json()["id"] == first.json()["id"]
    other = await client.post(f"{BASE}/articles", json=article_body("twice", title="另一篇"), headers=author)
    assert other.status_code == 409
    assert other.json()["code"] == "article_key_taken"
    listed = (await client.get(f"{BASE}/articles", headers=author)).json()
    assert listed["total"] == 1


async def test_a_new_version_keeps_the_published_one_served_until_it_is_published(client: httpx.AsyncClient,
                                                                                 app: FastAPI) -> None:
    article = await published_article(client, app)
    author, reviewer = await editor(app, 1), await editor(app, 2)
    revised = await client.post(f"{BASE}/articles/{article['id']}/versions",
                                json={"title": "狂犬疫苗接种门诊", "body": "全市犬伤处置门诊二十四小时开放。",
                                      "questions": []}, headers=author)
    assert revised.status_code == 201
    assert revised.json()["latest_version_no"] == 2
    assert revised.json()["published_version_no"] == 1
    await client.post(f"{BASE}/articles/{article['id']}/submit", json={"version_no": 2}, headers=author)
    in_review = await client.post(f"{BASE}/articles/{article['id']}/versions",
                                  json={"title": "又一版", "body": "内容", "questions": []}, headers=author)
    assert in_review.status_code == 409
    assert in_review.json()["value"] == "in_review"
    await client.post(f"{BASE}/articles/{article['id']}/approve", json={"version_no": 2}, headers=reviewer)
    published = await client.post(f"{BASE}/articles/{article['id']}/publish", json={"version_no": 2},
                                  headers=reviewer)
    assert published.json()["published_version_no"] == 2
    assert [v["version_no"] for v in published.json()["versions"]] == [1, 2]


async def test_an_unknown_category_is_refused_naming_the_field(client: httpx.AsyncClient, app: FastAPI) -> None:
    author = await editor(app, 1)
    refused = await client.post(f"{BASE}/articles", json=article_body("bad-category", category="astrology"),
                                headers=author)
    assert refused.status_code == 422
    problem = refused.json()
    assert (problem["field"], problem["value"]) == ("category", "astrology")
    assert "vaccination" in problem["rule"]
    assert (await client.get(f"{BASE}/articles", headers=author)).json()["total"] == 0
    listing = await client.get(f"{BASE}/articles", params={"category": "astrology"}, headers=author)
    assert listing.status_code == 422


async def test_validity_dates_out_of_order_are_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    author = await editor(app, 1)
    refused = await client.post(f"{BASE}/articles", json=article_body(
        "reversed", valid_from="2022-07-01", valid_until="2022-06-01"), headers=author)
    assert refused.status_code == 422
    assert refused.json()["field"] == "valid_until"


async def test_an_agent_may_search_but_not_write(client: httpx.AsyncClient, app: FastAPI) -> None:
    from cityhealth.security.principals import Role
    from tests.factories.security import headers_for, staff

    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    refused = await client.post(f"{BASE}/articles", json=article_body("agent-writes"), headers=agent)
    assert refused.status_code == 403
    assert (await client.get(f"{BASE}/search", params={"q": "狂犬疫苗"}, headers=agent)).status_code == 200


async def test_the_categories_are_listed_with_their_names(client: httpx.AsyncClient, app: FastAPI) -> None:
    listed = (await client.get(f"{BASE}/categories", headers=await editor(app, 1))).json()
    assert listed["insurance"] == "医疗保险"
    assert "astrology" not in listed
