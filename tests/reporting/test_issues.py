"""The issue workflow over the API: numbering, publishing once, frozen editions, corrections as revisions."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.reporting import render_pdf, sources
from cityhealth.reporting.model import BulletinData
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff

ISSUES = "/api/bulletin/issues"
FIRST = {"region_code": "320100", "month": "2022-06", "published_on": "2022-07-28", "number": 7,
         "total_number": 125, "news_markdown": "## 本月要闻\n\n平台运行平稳。\n"}


@pytest.fixture(autouse=True)
def figures(nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch) -> dict[str, BulletinData]:
    """Every month holds the Nanjing figures (as the sources would give them); a test may change them."""
    held = {"data": nanjing}

    async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
        return held["data"].model_copy(update={"month": month})

    monkeypatch.setattr(sources, "gather", gather)
    monkeypatch.setattr(render_pdf, "office_program", lambda: None)  # the PDF edition has tests of its own
    return held


async def _editor(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.BULLETIN_EDITOR))


async def _published(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    draft = await client.put(ISSUES, headers=headers, json=body)
    assert draft.status_code == 200, draft.text
    published = await client.post(f"{ISSUES}/{draft.json()['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    document: dict[str, Any] = published.json()
    return document


async def test_a_published_issue_archives_each_edition_with_its_hash(app: FastAPI, client: httpx.AsyncClient) -> None:
    issue = await _published(client, await _editor(app), FIRST)
    assert (issue["status"], issue["number"], issue["total_number"], issue["revision"]) == ("published", 7, 125, 0)
    assert sorted(edition["format"] for edition in issue["editions"]) == ["docx", "html", "json", "md"]
    async with app.state.database.transaction() as session:
        from cityhealth.reporting import repository

        for stored in await repository.editions_of(session, issue["id"]):
            assert stored.sha256 == hashlib.sha256(stored.content).hexdigest()
            assert stored.size == len(stored.content)


async def test_the_next_issue_continues_the_numbers_and_a_new_year_restarts_n(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await _editor(app)
    await _published(client, headers, FIRST)
    july = {"region_code": "320100", "month": "2022-07", "published_on": "2022-08-26"}
    second = await _published(client, headers, july)
    assert (second["year"], second["number"], second["total_number"]) == (2022, 8, 126)
    december = {"region_code": "320100", "month": "2022-12", "published_on": "2023-01-20"}
    third = (await client.put(ISSUES, headers=headers, json=december)).json()
    assert (third["year"], third["number"], third["total_number"]) == (2023, 1, 127)


async def test_publishing_twice_gives_one_issue(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    issue = await _published(client, headers, FIRST)
    again = await client.post(f"{ISSUES}/{issue['id']}/publish", headers=headers)
    assert again.json() == issue
    listed = (await client.get(ISSUES, headers=headers)).json()
    assert [entry["id"] for entry in listed] == [issue["id"]]


async def test_an_issue_number_that_would_go_backwards_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    await _published(client, headers, FIRST)
    backwards = {**FIRST, "month": "2022-07", "published_on": "2022-08-26", "number": 6, "total_number": 124}
    response = await client.put(ISSUES, headers=headers, json=backwards)
    assert response.status_code == 409
    assert (response.json()["field"], response.json()["rule"]) == ("number", "bulletin.issue.number_sequence")
    earlier_year = {"region_code": "320100", "month": "2022-07", "published_on": "2021-08-26"}
    response = await client.put(ISSUES, headers=headers, json=earlier_year)
    assert response.status_code == 409
    assert response.json()["field"] == "published_on"


async def test_the_first_issue_of_a_region_must_be_numbered(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = {key: value for key, value in FIRST.items() if key not in ("number", "total_number")}
    response = await client.put(ISSUES, headers=await _editor(app), json=body)
    assert response.status_code == 422
    assert response.json()["rule"] == "bulletin.issue.first_numbers"


async def test_later_data_changes_do_not_alter_a_published_issue(
    app: FastAPI, client: httpx.AsyncClient, figures: dict[str, BulletinData]
) -> None:
    issue = await _published(client, await _editor(app), FIRST)
    assert figures["data"].booking is not None
    figures["data"] = figures["data"].model_copy(update={"booking": None})  # the month's figures change
    async with app.state.database.transaction() as session:
        from cityhealth.reporting import issues
        from cityhealth.reporting.service import Edition

        found = await issues.published_edition(session, "320100", "2022-06", Edition.MD)
    assert found is not None
    read, content = found
    assert read.id == issue["id"]
    assert "2022 年 6 月预约挂号服务统计" in content.decode("utf-8")
    md = next(edition for edition in issue["editions"] if edition["format"] == "md")
    assert hashlib.sha256(content).hexdigest() == md["sha256"]


async def test_a_correction_is_a_new_numbered_revision_that_says_what_changed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await _editor(app)
    issue = await _published(client, headers, FIRST)
    drafted = await client.post(f"{ISSUES}/{issue['id']}/corrections", headers=headers,
                                json={"note": "更正第2页南京鼓楼医院电话预约量。"})
    assert drafted.status_code == 200, drafted.text
    correction = (await client.post(f"{ISSUES}/{drafted.json()['id']}/publish", headers=headers)).json()
    assert (correction["revision"], correction["number"], correction["total_number"]) == (1, 7, 125)
    async with app.state.database.transaction() as session:
        from cityhealth.reporting import issues
        from cityhealth.reporting.service import Edition

        found = await issues.published_edition(session, "320100", "2022-06", Edition.MD)
    assert found is not None
    assert found[0].id == correction["id"]
    assert "## 更正说明（第1次修订）\n\n更正第2页南京鼓楼医院电话预约量。" in found[1].decode("utf-8")
    listed = (await client.get(ISSUES, headers=headers)).json()
    assert [entry["id"] for entry in listed] == [correction["id"]]


async def test_a_published_month_cannot_be_drafted_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    await _published(client, headers, FIRST)
    response = await client.put(ISSUES, headers=headers, json={**FIRST, "number": None, "total_number": None})
    assert response.status_code == 409
    assert response.json()["rule"] == "bulletin.issue.published"


async def test_only_the_bulletin_editor_drafts_and_publishes(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.HOTLINE_AGENT))
    assert (await client.put(ISSUES, headers=headers, json=FIRST)).status_code == 403
    assert (await client.post(f"{ISSUES}/1/publish", headers=headers)).status_code == 403


async def test_a_draft_s_html_news_is_escaped_in_every_edition(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = {**FIRST, "news_markdown": "## 要闻\n\n正文<script>alert(1)</script>\n"}
    issue = await _published(client, await _editor(app), body)
    async with app.state.database.transaction() as session:
        from cityhealth.reporting import repository

        html = await repository.edition(session, issue["id"], "html")
    assert html is not None
    assert b"<script>alert(1)</script>" not in html.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in html.content
