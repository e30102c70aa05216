"""`cityhealth bulletin`: write one month's bulletin as HTML, DOCX, PDF, Markdown or scenario-format JSON."""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cityhealth.config import Settings, load_settings
from cityhealth.errors import DomainError
from cityhealth.reporting import month_loads
from cityhealth.reporting.model import BulletinData, month_parts
from cityhealth.reporting.news import read_news
from cityhealth.reporting.schemas import PublicationProfileIn
from cityhealth.reporting.service import Edition, build_bulletin, render, warnings
from cityhealth.reporting.tables import Issue


def _say(text: str, colour: str) -> None:
    """One line on stderr (typer's own output: rich would cost the command's start-up ~30 ms)."""
    typer.secho(text, fg=colour, err=True)


def _month(value: str) -> str:
    try:
        month_parts(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


def _published(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"a date is written YYYY-MM-DD, not {value!r}") from exc


async def _from_database(settings: Settings, month: str,
                         region: str | None) -> tuple[BulletinData, PublicationProfileIn | None]:
    """The month's figures and the publication profile of its region, read in one transaction."""
    from cityhealth.db.cli import checked_database  # here: a bulletin from a scenario file needs no database
    from cityhealth.reporting.profiles import profile_for_issue

    async with checked_database(settings) as database, database.transaction() as session:
        if not database.is_sqlite:
            # Both sources read one snapshot, so booking and collection figures belong to the same instant. Set
            # before the first statement: once the transaction has its connection, the level would be ignored.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        # A month still being loaded (the demo's simulation) has partial figures: no bulletin is written of it.
        month_loads.refuse_partial(await month_loads.get(session, month))
        data = await build_bulletin(session, month, region_code=region)
        return data, await profile_for_issue(session, data.region.code)


def _from_scenario(path: Path, month: str) -> BulletinData:
    data = BulletinData.from_json(path.read_bytes())
    if data.month != month:
        raise typer.BadParameter(f"{path} holds {data.month}, not {month}", param_hint="--scenario")
    return data


def _write(path: Path, content: bytes) -> None:
    """Replace `path` atomically: a reader never sees half a bulletin."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def bulletin(
    month: Annotated[str, typer.Option("--month", callback=_month, help="the month reported on, YYYY-MM")],
    fmt: Annotated[Edition, typer.Option("--format", help="edition to write")] = Edition.HTML,
    output: Annotated[Path | None, typer.Option(
        "--output", help="file to write (default var/bulletins/bulletin-YYYY-MM.<ext>)")] = None,
    news: Annotated[Path | None, typer.Option(
        "--news", exists=True, dir_okay=False, readable=True,
        help="Markdown file with the articles, a '## 简讯' list and an optional '## 页脚'")] = None,
    issue: Annotated[int | None, typer.Option("--issue", min=1, help="issue number within the year (第N期)")] = None,
    total_issue: Annotated[int | None, typer.Option(
        "--total-issue", min=1, help="running issue number (总第M期)")] = None,
    published: Annotated[str | None, typer.Option(
        "--published", help="publication date printed under the masthead, YYYY-MM-DD")] = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="region area code (default: the area the reported districts belong to)")] = None,
    scenario: Annotated[Path | None, typer.Option(
        "--scenario", exists=True, dir_okay=False, readable=True,
        help="render this scenario-format file instead of the database (previews, expected figures)")] = None,
) -> None:
    """Compute and write the monthly bulletin; warnings about figures that do not add up go to stderr."""
    numbering = Issue(issue, total_issue, _published(published))
    settings = load_settings()
    try:
        data, profile = ((_from_scenario(scenario, month), None) if scenario
                         else asyncio.run(_from_database(settings, month, region)))
    except DomainError as exc:
        _say(f"error: {exc.message}", typer.colors.RED)
        raise typer.Exit(1) from exc
    except ValidationError as exc:
        _say(f"error: the figures are not in the scenario format:\n{exc}", typer.colors.RED)
        raise typer.Exit(1) from exc
    try:
        news_md = read_news(news) if news else None
    except DomainError as exc:
        _say(f"error: {exc.message}", typer.colors.RED)
        raise typer.Exit(1) from exc
    try:
        content = render(data, fmt, news_md, issue=numbering, profile=profile)
    except DomainError as exc:  # the PDF edition on a machine without LibreOffice
        _say(f"error: {exc.message}", typer.colors.RED)
        raise typer.Exit(1) from exc
    for warning in warnings(data):
        _say(f"warning: {warning}", typer.colors.YELLOW)
    path = output or settings.var_dir / "bulletins" / f"bulletin-{month}.{fmt.value}"
    _write(path, content)
    _say(f"wrote {path}", typer.colors.GREEN)
