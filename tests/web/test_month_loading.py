"""While a month is being loaded (the demo simulates it behind a running server): a progress banner on every
page, the month's bulletin page saying so, its downloads refused and its issue not published; once complete, the
month is published as any other."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.security import headers_for, staff
from tests.web.conftest import MONTH, Seeded
from tests.web.pages_support import draft_issue, publish_issue

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.reporting import month_loads
from cityhealth.security.principals import Role

pytestmark = pytest.mark.usefixtures("no_office")

_BANNER = re.compile(r'<p class="loading" role="status" data-month="([^"]+)" data-percent="(\d+)">')


async def _loading(database: Database, clock: SimulatedClock, done: int, total: int = 30) -> None:
    async with database.transaction() as session:
        await month_loads.start(session, clock, MONTH, "simulation of the test month", total)
        if done:
            await month_loads.advance(session, clock, MONTH, done)


async def test_every_page_shows_the_months_progress_while_it_loads(
        client: httpx.AsyncClient, database: Database, clock: SimulatedClock) -> None:
    await _loading(database, clock, 11)
    for path in ("/", "/bulletin/", f"/dashboard/quality?month={MONTH}", "/login", f"/bulletin/{MONTH}"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert _BANNER.findall(response.text) == [(MONTH, "36")], path  # 11 of 30 days, rounded down
        assert "simulating the month: 36 %" in response.text, path


async def test_the_months_bulletin_page_says_it_is_in_progress_and_reloads(
        client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await _loading(database, clock, 3)
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="10">' in response.text
    assert "该月数据仍在载入（10 %，simulation of the test month）" in response.text
    assert "南京鼓楼医院" not in response.text  # no figure of the month is shown


async def test_the_months_downloads_are_refused_until_it_is_complete(
        client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await _loading(database, clock, 29)
    for extension in ("json", "md", "docx"):
        response = await client.get(f"/bulletin/{MONTH}.{extension}")
        assert response.status_code == 409, extension
        problem = response.json()
        assert problem["code"] == "month_in_progress"
        assert problem["field"] == "month"
        assert "96 % done" in problem["detail"]


async def test_other_months_bulletins_are_served_during_the_load(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await _loading(database, clock, 5)
    await publish_issue(app, client, "2022-05", published_on="2022-06-28")
    response = await client.get("/bulletin/2022-05.json")
    assert response.status_code == 200
    assert response.json()["month"] == "2022-05"


async def test_the_month_is_not_published_while_it_loads(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await _loading(database, clock, 29)
    draft = await draft_issue(app, client)
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR))
    response = await client.post(f"/api/bulletin/issues/{draft['id']}/publish", headers=headers)
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("month_in_progress", "month")
    assert (await client.get(f"/bulletin/{MONTH}")).status_code == 200  # still the loading page
    assert "已出版" not in (await client.get("/bulletin/")).text


async def test_once_complete_the_banner_goes_and_the_month_can_be_published(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await _loading(database, clock, 30)
    async with database.transaction() as session:
        await month_loads.complete(session, clock, MONTH)
    unpublished = await client.get(f"/bulletin/{MONTH}")
    assert unpublished.status_code == 404  # whole now, but not yet published
    assert not _BANNER.search(unpublished.text)
    assert "南京鼓楼医院" not in unpublished.text
    await publish_issue(app, client)
    page = await client.get(f"/bulletin/{MONTH}")
    assert page.status_code == 200
    assert not _BANNER.search(page.text)
    assert "南京鼓楼医院" in page.text
    download = await client.get(f"/bulletin/{MONTH}.json")
    assert download.status_code == 200
    assert download.json()["month"] == MONTH


async def test_a_load_that_stopped_says_why_and_keeps_the_bulletin_back(
        client: httpx.AsyncClient, database: Database, clock: SimulatedClock) -> None:
    await _loading(database, clock, 6)
    async with database.transaction() as session:
        await month_loads.fail(session, clock, MONTH, "interrupted")
    landing = await client.get("/")
    assert "的数据载入在 20 % 时中止（interrupted），该月数据不完整" in landing.text
    page = await client.get(f"/bulletin/{MONTH}")
    assert "该月数据载入在 20 % 时中止：interrupted" in page.text
    assert 'http-equiv="refresh"' not in page.text  # nothing will change by itself
    download = await client.get(f"/bulletin/{MONTH}.md")
    assert download.status_code == 409
    assert "stopped at 20 %: interrupted" in download.json()["detail"]
