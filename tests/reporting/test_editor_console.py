"""The bulletin editor's console: a draft written in Markdown, previewed, published; only for editors."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.reporting import render_pdf, sources
from cityhealth.reporting.model import BulletinData
from cityhealth.security.principals import Role
from tests.factories.sign_in import CSRF_INPUT, log_in, staff_account
from tests.web.pages_support import as_visitor


@pytest.fixture(autouse=True)
def figures(nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch) -> None:
    async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
        return nanjing.model_copy(update={"month": month})

    monkeypatch.setattr(sources, "gather", gather)
    monkeypatch.setattr(render_pdf, "office_program", lambda: None)


def _csrf(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found is not None
    return found.group(1)


async def test_an_editor_drafts_previews_and_publishes_an_issue(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock
) -> None:
    editor = await staff_account(app, database, clock, Role.BULLETIN_EDITOR, "editor1")
    assert (await log_in(client, editor, clock)).status_code == 303
    console = await client.get("/editor/bulletin")
    assert console.status_code == 200
    saved = await client.post("/editor/bulletin/issues", data={
        "csrf_token": _csrf(console.text), "region_code": "320100", "month": "2022-06",
        "published_on": "2022-07-28", "number": "7", "total_number": "125",
        "news_markdown": "## 平台运行\n\n本月平稳。<b>粗</b>\n\n## 简讯\n\n- 一条简讯。\n"})
    assert saved.status_code == 303
    issue_url = saved.headers["location"].split("?")[0]
    issue_page = await client.get(issue_url)
    assert "草稿" in issue_page.text
    preview = await client.get(f"{issue_url}/preview.html")
    assert "本月平稳。&lt;b&gt;粗&lt;/b&gt;" in preview.text
    assert "<li>一条简讯。</li>" in preview.text
    public = await as_visitor(app, "/bulletin/2022-06")
    assert public.status_code == 404
    assert "本月平稳" not in public.text  # not public while a draft
    preview = await client.get("/bulletin/2022-06")  # the editor sees the draft on the public page, marked so
    assert "本月平稳" in preview.text
    assert 'class="preview-banner"' in preview.text
    assert preview.headers["cache-control"] == "no-store"
    published = await client.post(f"{issue_url}/publish", data={"csrf_token": _csrf(issue_page.text)})
    assert published.status_code == 303
    after = await client.get(issue_url)
    assert "已出版" in after.text
    assert len(re.findall(r"<code>sha256 [0-9a-f]{64}</code>", after.text)) == 4
    published_page = await as_visitor(app, "/bulletin/2022-06")
    assert published_page.status_code == 200
    assert "本月平稳" in published_page.text
    assert 'class="preview-banner"' not in published_page.text


async def test_someone_without_the_editor_role_is_refused_the_console(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock
) -> None:
    operator = await staff_account(app, database, clock, Role.DATA_QUALITY_OPERATOR, "operator1")
    assert (await log_in(client, operator, clock)).status_code == 303
    assert (await client.get("/editor/bulletin")).status_code == 403


async def test_a_form_without_its_csrf_token_saves_nothing(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock
) -> None:
    editor = await staff_account(app, database, clock, Role.BULLETIN_EDITOR, "editor2")
    await log_in(client, editor, clock)
    refused = await client.post("/editor/bulletin/issues", data={
        "csrf_token": "forged", "region_code": "320100", "month": "2022-06", "published_on": "2022-07-28",
        "number": "7", "total_number": "125"})
    assert refused.status_code == 403
    assert "没有草稿" in refused.text


async def test_an_editor_corrects_a_published_issue_with_a_note(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock
) -> None:
    editor = await staff_account(app, database, clock, Role.BULLETIN_EDITOR, "editor3")
    await log_in(client, editor, clock)
    console = await client.get("/editor/bulletin")
    saved = await client.post("/editor/bulletin/issues", data={
        "csrf_token": _csrf(console.text), "region_code": "320100", "month": "2022-06",
        "published_on": "2022-07-28", "number": "7", "total_number": "125", "news_markdown": "## 要闻\n\n原文。\n"})
    issue_url = saved.headers["location"].split("?")[0]
    await client.post(f"{issue_url}/publish", data={"csrf_token": _csrf((await client.get(issue_url)).text)})
    published_page = await client.get(issue_url)
    drafted = await client.post(f"{issue_url}/corrections", data={
        "csrf_token": _csrf(published_page.text), "note": "更正表1第3行的电话预约量。"})
    assert drafted.status_code == 303
    correction_url = drafted.headers["location"].split("?")[0]
    correction_page = await client.get(correction_url)
    assert "第1次修订" in correction_page.text
    await client.post(f"{correction_url}/publish", data={"csrf_token": _csrf(correction_page.text)})
    public = (await as_visitor(app, "/bulletin/2022-06")).text
    assert "更正说明（第1次修订）" in public
    assert "更正表1第3行的电话预约量。" in public
