"""Editors' synonyms and dictionary words through the API: versioned with their history, audited, retried safely,
and taken up by the index on its next search."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff
from tests.hotline.knowledge_support import BASE, editor, published_article

LEXICON = f"{BASE}/lexicon"


async def _agent(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))


async def _top(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> str | None:
    hits = (await client.get(f"{BASE}/search", params={"q": q}, headers=headers)).json()
    return hits[0]["key"] if hits else None


async def test_a_synonym_group_set_by_an_editor_finds_the_article_on_the_next_search(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await published_article(client, app)
    await published_article(
        client,
        app,
        key="canteen",
        category="hospital",
        title="医院食堂开放时间",
        body="多数医院食堂早上六点半至晚上七点供应餐食。",
        questions=[],
    )
    agent, author = await _agent(app), await editor(app, 1)
    assert await _top(client, agent, "汪星人咬人") != "rabies-where"
    put = await client.put(f"{LEXICON}/synonyms/狂犬疫苗", json={"variants": ["汪星人咬人", "疯狗针"]}, headers=author)
    assert put.status_code == 200, put.text
    assert put.json() | {"changed_at": None} == {
        "kind": "synonyms",
        "term": "狂犬疫苗",
        "version_no": 1,
        "variants": ["汪星人咬人", "疯狗针"],
        "active": True,
        "changed_by": put.json()["changed_by"],
        "changed_at": None,
    }
    assert await _top(client, agent, "汪星人咬人") == "rabies-where"
    removed = await client.delete(f"{LEXICON}/synonyms/狂犬疫苗", headers=author)
    assert removed.json()["active"] is False
    assert removed.json()["version_no"] == 2
    assert await _top(client, agent, "汪星人咬人") != "rabies-where"


async def test_a_dictionary_word_keeps_a_name_whole_in_the_index(client: httpx.AsyncClient, app: FastAPI) -> None:
    await published_article(client, app)
    await client.get(f"{BASE}/search", params={"q": "狂犬疫苗"}, headers=await _agent(app))
    index = app.state.hotline_knowledge_index
    async with app.state.database.transaction() as session:
        assert "紫金山脚医务室" not in (await index.current(session)).analyzer.terms("紫金山脚医务室几点开门")
    put = await client.put(f"{LEXICON}/words/紫金山脚医务室", headers=await editor(app, 1))
    assert put.status_code == 200, put.text
    async with app.state.database.transaction() as session:
        assert "紫金山脚医务室" in (await index.current(session)).analyzer.terms("紫金山脚医务室几点开门")
    listed = (await client.get(LEXICON, headers=await editor(app, 2))).json()
    assert [w["term"] for w in listed["words"]] == ["紫金山脚医务室"]
    assert listed["synonyms"] == []


async def test_every_change_is_a_version_with_its_history_and_audit_and_a_retry_adds_none(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    author = await editor(app, 1)
    for variants in (["打针本"], ["打针本"], ["打针本", "小绿本"]):
        response = await client.put(f"{LEXICON}/synonyms/接种证", json={"variants": variants}, headers=author)
        assert response.status_code == 200, response.text
    await client.delete(f"{LEXICON}/synonyms/接种证", headers=author)
    await client.delete(f"{LEXICON}/synonyms/接种证", headers=author)  # a retried removal
    history = (await client.get(f"{LEXICON}/synonyms/接种证/history", headers=author)).json()
    assert [(v["version_no"], v["variants"], v["active"]) for v in history] == [
        (1, ["打针本"], True),
        (2, ["打针本", "小绿本"], True),
        (3, ["打针本", "小绿本"], False),
    ]
    async with app.state.database.transaction() as session:
        audited = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_type == "hotline_kb_lexicon").order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.action, e.resource_id, e.detail) for e in audited] == [
        ("create", "synonyms:接种证", "version=1"),
        ("update", "synonyms:接种证", "version=2"),
        ("delete", "synonyms:接种证", "version=3"),
    ]


async def test_a_word_in_another_group_is_a_conflict_naming_it(client: httpx.AsyncClient, app: FastAPI) -> None:
    author = await editor(app, 1)
    await client.put(f"{LEXICON}/synonyms/接种证", json={"variants": ["小绿本"]}, headers=author)
    clash = await client.put(f"{LEXICON}/synonyms/母子健康手册", json={"variants": ["小绿本"]}, headers=author)
    assert clash.status_code == 409
    assert clash.json()["code"] == "synonym_taken"
    assert clash.json()["value"] == "小绿本"


async def test_bad_lexicon_input_is_refused_naming_field_value_and_rule(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    author = await editor(app, 1)
    one_char = await client.put(f"{LEXICON}/words/药", headers=author)
    assert one_char.status_code == 422
    assert one_char.json()["field"] == "word"
    spaced = await client.put(f"{LEXICON}/synonyms/接种证", json={"variants": ["小 绿本"]}, headers=author)
    assert spaced.status_code == 422
    assert spaced.json()["field"] == "variants"
    assert "2 to 40" in spaced.json()["rule"]
    itself = await client.put(f"{LEXICON}/synonyms/接种证", json={"variants": ["接种证"]}, headers=author)
    assert itself.status_code == 422
    assert itself.json()["code"] == "synonym_is_term"
    punctuated = await client.put(f"{LEXICON}/words/门诊，急诊", headers=author)
    assert punctuated.status_code == 422
    assert punctuated.json()["value"] == "门诊，急诊"
    missing = await client.delete(f"{LEXICON}/words/从未有过", headers=author)
    assert missing.status_code == 404
    assert missing.json()["code"] == "lexicon_entry_not_found"


async def test_only_editors_change_the_lexicon(client: httpx.AsyncClient, app: FastAPI) -> None:
    refused = await client.put(f"{LEXICON}/words/紫金山脚医务室", headers=await _agent(app))
    assert refused.status_code == 403
    assert (await client.get(LEXICON, headers=await editor(app, 1))).json()["words"] == []
