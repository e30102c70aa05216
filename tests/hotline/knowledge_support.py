"""Shared steps of the knowledge-base tests: editors, the IVR client, an article written and published."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.security.principals import Role, Scope
from tests.factories.security import headers_for, machine, staff

BASE = "/api/hotline/kb"


async def editor(app: FastAPI, user_id: int) -> dict[str, str]:
    return await headers_for(app, staff(Role.HOTLINE_KB_EDITOR, user_id=user_id))


async def ivr(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.HOTLINE_SELF_SERVICE, client_id="ivr-12320"))


def article_body(key: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "category": "vaccination", "title": "狂犬疫苗在哪里接种",
                            "body": "被犬咬伤后先冲洗伤口，再到犬伤处置门诊接种狂犬疫苗。",
                            "questions": ["被狗咬了去哪打针", "狂犬疫苗接种地点"]}
    body.update(changes)
    return body


async def published_article(client: httpx.AsyncClient, app: FastAPI, key: str = "rabies-where",
                            **changes: Any) -> dict[str, Any]:
    """An article written by editor 1, approved by editor 2 and published."""
    author, reviewer = await editor(app, 1), await editor(app, 2)
    created = await client.post(f"{BASE}/articles", json=article_body(key, **changes), headers=author)
    assert created.status_code == 201, created.text
    article_id = created.json()["id"]
    for path, headers in (("submit", author), ("approve", reviewer), ("publish", reviewer)):
        response = await client.post(f"{BASE}/articles/{article_id}/{path}", json={"version_no": 1}, headers=headers)
        assert response.status_code == 200, response.text
    article: dict[str, Any] = response.json()
    return article
