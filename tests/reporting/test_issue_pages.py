"""The public pages serve published issues as published; drafts are seen by editors only."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.reporting import render_pdf, sources
from cityhealth.reporting.model import BulletinData
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff

ISSUES = "/api/bulletin/issues"
DRAFT = {"region_code": "320100", "month": "2022-06", "published_on": "2022-07-28", "number": 7,
         "total_number": 125, "news_markdown": "## 草稿要闻\n\n尚未出版的正文。\n"}


@pytest.fixture(autouse=True)
def figures(nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch) -> dict[str, BulletinData]:
    held = {"data": nanjing}

    async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
        return held["data"].model_copy(update={"month": month})

    monkeypatch.setattr(sources, "gather", gather)
    monkeypatch.setattr(render_pdf, "office_program", lambda: None)
    return held


async def _draft(app: FastAPI, client: httpx.AsyncClient) -> tuple[dict[str, str], int]:
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR))
    response = await client.put(ISSUES, headers=headers, json=DRAFT)
    assert response.status_code == 200, response.text
    return headers, int(response.json()["id"])


async def test_a_draft_is_previewed_by_the_editor_and_not_shown_to_the_public(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers, issue_id = await _draft(app, client)
    preview = await client.get(f"{ISSUES}/{issue_id}/editions/html", headers=headers)
    assert preview.status_code == 200
    assert "草稿要闻" in preview.text
    assert (await client.get(f"{ISSUES}/{issue_id}/editions/html")).status_code == 401
    public = await client.get("/bulletin/2022-06")
    assert public.status_code == 404
    assert "草稿要闻" not in public.text
    assert "2022 年 6 月预约挂号服务统计" not in public.text  # nor the month's figures
    assert (await client.get("/bulletin/2022-06.md")).status_code == 404
    assert "已出版" not in (await client.get("/bulletin/")).text


async def test_the_public_page_serves_the_issue_as_published_whatever_the_data_since(
    app: FastAPI, client: httpx.AsyncClient, figures: dict[str, BulletinData]
) -> None:
    headers, issue_id = await _draft(app, client)
    published = (await client.post(f"{ISSUES}/{issue_id}/publish", headers=headers)).json()
    figures["data"] = figures["data"].model_copy(update={"booking": None})
    page = await client.get("/bulletin/2022-06")
    assert "草稿要闻" in page.text
    assert "2022 年 6 月预约挂号服务统计" in page.text
    markdown = await client.get("/bulletin/2022-06.md")
    md = next(edition for edition in published["editions"] if edition["format"] == "md")
    assert hashlib.sha256(markdown.content).hexdigest() == md["sha256"]
    index = (await client.get("/bulletin/")).text
    assert '<a href="/bulletin/2022-06">2022年第7期（总第125期）</a>' in index
