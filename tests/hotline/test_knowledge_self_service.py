"""Search and self-service as agents and the IVR meet them: ranked answers valid today, a confidence with a
threshold below which there is no answer, and every unanswered question counted once in its group."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.hotline.knowledge_answers import ANSWER_THRESHOLD
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff
from tests.hotline.knowledge_support import BASE, editor, ivr, published_article


async def _ask(client: httpx.AsyncClient, headers: dict[str, str], utterance: str, text: str) -> httpx.Response:
    return await client.post(f"{BASE}/self-service", json={"utterance_id": utterance, "text": text}, headers=headers)


async def test_self_service_answers_a_question_with_its_article(client: httpx.AsyncClient, app: FastAPI) -> None:
    article = await published_article(client, app)
    await published_article(client, app, key="flu", title="流感疫苗什么时候打", body="每年九月到十一月接种流感疫苗。",
                            questions=["流感疫苗接种时间"])
    answer = await _ask(client, await ivr(app), "u-1", "请问被狗咬了要去哪里打针")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["answered"] is True
    assert body["article_id"] == article["id"]
    assert body["confidence"] >= ANSWER_THRESHOLD
    assert "犬伤处置门诊" in body["answer"]


async def test_an_off_topic_question_gets_no_answer_and_lands_in_the_unanswered_list(client: httpx.AsyncClient,
                                                                                   app: FastAPI) -> None:
    await published_article(client, app)
    headers = await ivr(app)
    first = (await _ask(client, headers, "u-1", "明天去北京的火车票怎么买")).json()
    assert first["answered"] is False
    assert first["confidence"] < ANSWER_THRESHOLD
    assert first["article_id"] is None
    # Filler words and punctuation aside, the same words: the same group.
    await _ask(client, headers, "u-2", "请问，明天去北京的火车票怎么买呀？")
    await _ask(client, headers, "u-3", "医院食堂几点开饭")
    listed = (await client.get(f"{BASE}/unanswered", headers=await editor(app, 1))).json()
    assert [item["asked_count"] for item in listed["items"]] == [2, 1]
    assert listed["items"][0]["sample_text"] == "明天去北京的火车票怎么买"


async def test_a_retried_utterance_is_answered_again_and_counted_once(client: httpx.AsyncClient,
                                                                     app: FastAPI) -> None:
    headers = await ivr(app)
    first = (await _ask(client, headers, "u-9", "火车票怎么买")).json()
    again = (await _ask(client, headers, "u-9", "火车票怎么买")).json()
    assert again == first
    listed = (await client.get(f"{BASE}/unanswered", headers=await editor(app, 1))).json()
    assert [item["asked_count"] for item in listed["items"]] == [1]


async def test_personal_numbers_in_an_unanswered_question_are_masked(client: httpx.AsyncClient,
                                                                     app: FastAPI) -> None:
    await _ask(client, await ivr(app), "u-5", "我的手机13812345678收不到验证码")
    listed = (await client.get(f"{BASE}/unanswered", headers=await editor(app, 1))).json()
    assert "13812345678" not in listed["items"][0]["sample_text"]
    assert "138****5678" in listed["items"][0]["sample_text"]


async def test_an_empty_question_is_refused_naming_the_field(client: httpx.AsyncClient, app: FastAPI) -> None:
    refused = await _ask(client, await ivr(app), "u-1", "   ")
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["code"]) == ("text", "empty_question")
    listed = (await client.get(f"{BASE}/unanswered", headers=await editor(app, 1))).json()
    assert listed["total"] == 0


async def test_an_overlong_question_is_refused_naming_the_rule(client: httpx.AsyncClient, app: FastAPI) -> None:
    refused = await _ask(client, await ivr(app), "u-1", "挂号" * 101)
    assert refused.status_code == 422
    problem = refused.json()
    assert (problem["field"], problem["code"]) == ("text", "question_too_long")
    assert "200" in problem["rule"]


async def test_only_the_ivr_client_may_ask_self_service(client: httpx.AsyncClient, app: FastAPI) -> None:
    refused = await _ask(client, await editor(app, 1), "u-1", "狂犬疫苗")
    assert refused.status_code == 403


async def test_search_ranks_the_matching_article_first_and_filters_by_category(client: httpx.AsyncClient,
                                                                                app: FastAPI) -> None:
    rabies = await published_article(client, app)
    flu = await published_article(client, app, key="flu", title="流感疫苗什么时候打",
                                  body="每年九月到十一月接种流感疫苗。", questions=["流感疫苗接种时间"])
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    hits = (await client.get(f"{BASE}/search", params={"q": "流感疫苗几月份打"}, headers=agent)).json()
    assert hits[0]["article_id"] == flu["id"]
    assert hits[0]["score"] > (hits[1]["score"] if len(hits) > 1 else 0)
    only = (await client.get(f"{BASE}/search", params={"q": "疫苗", "category": "booking"}, headers=agent)).json()
    assert only == []
    assert rabies["id"] in [h["article_id"] for h in (await client.get(
        f"{BASE}/search", params={"q": "疫苗"}, headers=agent)).json()]


async def test_a_synonym_finds_the_article_in_other_words(client: httpx.AsyncClient, app: FastAPI) -> None:
    article = await published_article(client, app)
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    hits = (await client.get(f"{BASE}/search", params={"q": "狂犬病疫苗"}, headers=agent)).json()
    assert hits[0]["article_id"] == article["id"]


async def test_an_article_outside_its_validity_dates_is_not_served(client: httpx.AsyncClient, app: FastAPI) -> None:
    # The test clock reads 2022-06-15.
    await published_article(client, app, valid_from="2022-07-01")
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    assert (await client.get(f"{BASE}/search", params={"q": "狂犬疫苗"}, headers=agent)).json() == []


async def test_an_unpublished_article_is_no_longer_found(client: httpx.AsyncClient, app: FastAPI) -> None:
    article = await published_article(client, app)
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    assert (await client.get(f"{BASE}/search", params={"q": "狂犬疫苗"}, headers=agent)).json() != []
    await client.post(f"{BASE}/articles/{article['id']}/unpublish", headers=await editor(app, 2))
    assert (await client.get(f"{BASE}/search", params={"q": "狂犬疫苗"}, headers=agent)).json() == []


async def test_an_editor_turns_an_unanswered_question_into_an_article(client: httpx.AsyncClient,
                                                                      app: FastAPI) -> None:
    headers, author = await ivr(app), await editor(app, 1)
    await _ask(client, headers, "u-1", "医院食堂几点开饭")
    question = (await client.get(f"{BASE}/unanswered", headers=author)).json()["items"][0]
    body = {"key": "canteen", "category": "hospital", "title": "医院食堂开放时间",
            "body": "多数医院食堂早上六点半至晚上七点供应餐食。", "questions": []}
    made = await client.post(f"{BASE}/unanswered/{question['id']}/article", json=body, headers=author)
    assert made.status_code == 201, made.text
    assert "医院食堂几点开饭" in made.json()["latest"]["questions"]
    again = await client.post(f"{BASE}/unanswered/{question['id']}/article", json=body, headers=author)
    assert again.json()["id"] == made.json()["id"]
    resolved = (await client.get(f"{BASE}/unanswered", params={"status": "resolved"}, headers=author)).json()
    assert resolved["items"][0]["article_id"] == made.json()["id"]
    assert (await client.get(f"{BASE}/unanswered", headers=author)).json()["total"] == 0


async def test_an_article_published_after_a_search_is_found_by_the_next(client: httpx.AsyncClient,
                                                                        app: FastAPI) -> None:
    # The clock does not move between the two publications: the index notices the change all the same.
    await published_article(client, app)
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    assert (await client.get(f"{BASE}/search", params={"q": "流感疫苗"}, headers=agent)).json()[0]["key"] != "flu"
    await published_article(client, app, key="flu", title="流感疫苗什么时候打", body="每年九月到十一月接种流感疫苗。",
                            questions=[])
    assert (await client.get(f"{BASE}/search", params={"q": "流感疫苗"}, headers=agent)).json()[0]["key"] == "flu"


async def test_a_registry_hospital_short_name_finds_articles_naming_it_in_full(client: httpx.AsyncClient,
                                                                              app: FastAPI) -> None:
    from datetime import date

    from cityhealth.registry.models import Organization

    now = app.state.clock.now()
    async with app.state.database.transaction() as session:
        session.add(Organization(code="KB-TEST-1", name="南京市青溪口腔专科医院", short_name="青溪口腔",
                                 kind="hospital", active_from=date(2000, 1, 1), created_at=now, updated_at=now))
    await published_article(client, app, key="qingxi-hours", category="hours", title="南京市青溪口腔专科医院门诊时间",
                            body="南京市青溪口腔专科医院周一至周日上午八点至下午五点开诊。", questions=[])
    await published_article(client, app, key="other-hours", category="hours", title="南京市第一医院门诊时间",
                            body="南京市第一医院周一至周五上午八点开诊。", questions=[])
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    hits = (await client.get(f"{BASE}/search", params={"q": "青溪口腔几点开门"}, headers=agent)).json()
    assert hits[0]["key"] == "qingxi-hours"
    # The registry's names reached the dictionary: the short name is folded into the full name, kept whole.
    async with app.state.database.transaction() as session:
        index = await app.state.hotline_knowledge_index.current(session)
    assert "南京市青溪口腔专科医院" in index.analyzer.terms("青溪口腔几点开门")


async def test_an_empty_search_and_an_unknown_list_status_are_refused(client: httpx.AsyncClient,
                                                                      app: FastAPI) -> None:
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    empty = await client.get(f"{BASE}/search", params={"q": " "}, headers=agent)
    assert (empty.status_code, empty.json()["field"]) == (422, "q")
    unknown = await client.get(f"{BASE}/unanswered", params={"status": "closed"}, headers=await editor(app, 1))
    assert (unknown.status_code, unknown.json()["field"], unknown.json()["value"]) == (422, "status", "closed")
