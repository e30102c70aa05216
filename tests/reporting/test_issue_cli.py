"""`cityhealth bulletin-issue publish`: the month's issue drafted and published from the command line, once."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from cityhealth.cli import app
from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.reporting import month_loads, render_pdf, repository, sources
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.models import BulletinIssue
from cityhealth.security.models import AuditEvent

runner = CliRunner()
NEWS = "## 六月要闻\n\n平台运行平稳。\n\n## 简讯\n\n- 一条简讯。\n"


@pytest.fixture(autouse=True)
def environment(nanjing: BulletinData, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
        return nanjing.model_copy(update={"month": month})

    monkeypatch.setattr(sources, "gather", gather)
    monkeypatch.setattr(render_pdf, "office_program", lambda: None)  # the PDF edition has tests of its own
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
def news(tmp_path: Path) -> Path:
    path = tmp_path / "news.md"
    path.write_text(NEWS, encoding="utf-8")
    return path


def _publish(*options: str) -> Result:
    return runner.invoke(app, ["bulletin-issue", "publish", "--month", "2022-06", "--region", "320100", *options])


def _stored(database_url: str) -> tuple[list[BulletinIssue], list[list[str]], list[AuditEvent]]:
    async def read() -> tuple[list[BulletinIssue], list[list[str]], list[AuditEvent]]:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                issues = list(await session.scalars(select(BulletinIssue).order_by(BulletinIssue.id)))
                formats = [[e.format for e in await repository.editions_of(session, i.id)] for i in issues]
                events = list(await session.scalars(
                    select(AuditEvent).where(AuditEvent.resource_type == "bulletin_issue").order_by(AuditEvent.id)))
                return issues, formats, events
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_publish_drafts_and_publishes_the_month_once_audited_as_the_operator(database_url: str, news: Path) -> None:
    first = _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125", "--news", str(news))
    assert first.exit_code == 0, first.output
    assert "published 2022-06 as 2022年第7期（总第125期）" in first.stderr
    again = _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125", "--news", str(news))
    assert again.exit_code == 0, again.output
    assert "2022-06 is already published as 2022年第7期（总第125期）" in again.stderr
    assert "nothing changed" in again.stderr
    issues, formats, events = _stored(database_url)
    assert [(i.status, i.number, i.total_number, i.news_markdown) for i in issues] == [("published", 7, 125, NEWS)]
    assert issues[0].published_by == getpass.getuser()
    assert formats == [["docx", "html", "json", "md"]]
    assert [(e.actor, e.actor_kind, e.detail) for e in events] == [
        (getpass.getuser(), "operator", "draft"),
        (getpass.getuser(), "operator", "published 2022年第7期 revision 0")]


def test_the_numbers_may_be_left_out_where_they_are_as_published(database_url: str, news: Path) -> None:
    assert _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125",
                    "--news", str(news)).exit_code == 0
    again = _publish("--published", "2022-07-28", "--news", str(news))
    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.stderr
    assert len(_stored(database_url)[0]) == 1


@pytest.mark.parametrize(("change", "value"), [("--published", "2022-07-29"), ("--total-issue", "126")])
def test_publishing_the_month_again_otherwise_is_refused_as_a_correction(
    database_url: str, news: Path, change: str, value: str
) -> None:
    given: dict[str, Any] = {"--published": "2022-07-28", "--issue": "7", "--total-issue": "125"}
    assert _publish(*(part for item in given.items() for part in item), "--news", str(news)).exit_code == 0
    given[change] = value
    refused = _publish(*(part for item in given.items() for part in item), "--news", str(news))
    assert refused.exit_code == 1
    assert "2022-06 is published as 2022年第7期 with another date, text or numbers" in refused.stderr
    assert "correction" in refused.stderr
    assert len(_stored(database_url)[0]) == 1


def test_other_text_for_a_published_month_is_refused(database_url: str, news: Path, tmp_path: Path) -> None:
    assert _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125",
                    "--news", str(news)).exit_code == 0
    other = tmp_path / "other.md"
    other.write_text("## 另一篇\n\n改过的正文。\n", encoding="utf-8")
    refused = _publish("--published", "2022-07-28", "--news", str(other))
    assert refused.exit_code == 1
    assert "a change is a correction of it" in refused.stderr
    assert [i.news_markdown for i in _stored(database_url)[0]] == [NEWS]


def test_a_regions_first_issue_needs_its_numbers(database_url: str) -> None:
    refused = _publish("--published", "2022-07-28")
    assert refused.exit_code == 1
    assert "the region's first issue needs its numbers" in refused.stderr
    assert _stored(database_url)[0] == []


@pytest.mark.parametrize(("option", "value", "said"), [
    ("--published", "28/07/2022", "published_on = '28/07/2022'"),
    ("--region", "Nanjing", "region_code = 'Nanjing'"),
    ("--issue", "0", "number = 0"),
])
def test_a_bad_option_is_refused_naming_its_field_and_value(option: str, value: str, said: str) -> None:
    options = {"--published": "2022-07-28", "--issue": "7", "--total-issue": "125", option: value}
    result = _publish(*(part for item in options.items() for part in item))  # a repeated --region: the last
    assert result.exit_code == 1
    assert f"error: {said}" in result.stderr


def test_a_news_file_that_is_not_text_is_refused(database_url: str, tmp_path: Path) -> None:
    news = tmp_path / "news.md"
    news.write_bytes("## 要闻\n\n正文".encode("gb18030"))
    refused = _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125", "--news", str(news))
    assert refused.exit_code == 1
    assert "is not UTF-8 text" in refused.stderr
    assert _stored(database_url)[0] == []


def test_a_month_still_being_loaded_is_not_published(database_url: str, clock: SimulatedClock) -> None:
    async def loading() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                await month_loads.start(session, clock, "2022-06", "simulation of the test month", 30)
        finally:
            await database.dispose()

    asyncio.run(loading())
    refused = _publish("--published", "2022-07-28", "--issue", "7", "--total-issue", "125")
    assert refused.exit_code == 1
    assert "2022-06 is still being loaded by simulation of the test month (0 % done)" in refused.stderr
    assert _stored(database_url)[0] == []
