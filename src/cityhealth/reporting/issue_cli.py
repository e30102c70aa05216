"""`cityhealth bulletin-issue publish`: draft and publish a month's issue from the command line (the demo does so).

The same use cases as the editor's console and API (reporting/issues.py), audited as the operator at the
terminal. `cityhealth bulletin` stays what it was: it writes an edition to a file and publishes nothing.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.reporting import issues
from cityhealth.reporting.news import read_news
from cityhealth.reporting.schemas import IssueDraftIn, IssueRead

app = typer.Typer(help="The bulletin's issues: drafted and published, as in the editor's console.",
                  no_args_is_help=True)


def _draft(region: str, month: str, published: str, news: str, number: int | None,
           total_number: int | None) -> IssueDraftIn:
    try:
        return IssueDraftIn.model_validate({
            "region_code": region, "month": month, "published_on": published, "news_markdown": news,
            "number": number, "total_number": total_number})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        typer.secho(f"error: {where} = {problem.get('input')!r}: {problem['msg']}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


@app.command("publish")
def publish(
    month: Annotated[str, typer.Option("--month", help="the month reported on, YYYY-MM")],
    region: Annotated[str, typer.Option("--region", help="the region's area code, e.g. 320100")],
    published: Annotated[str, typer.Option("--published", help="the date printed under the masthead, YYYY-MM-DD")],
    news: Annotated[Path | None, typer.Option(
        "--news", exists=True, dir_okay=False, readable=True,
        help="the editor's Markdown: the lead articles, a '## 简讯' list and an optional '## 页脚'")] = None,
    issue: Annotated[int | None, typer.Option(
        "--issue", help="第N期: only for the region's first issue; later ones continue from the last")] = None,
    total_issue: Annotated[int | None, typer.Option("--total-issue", help="总第M期, likewise")] = None,
) -> None:
    """Publish the month's issue: every edition rendered once and frozen. Run again with the same text and
    date it changes nothing; a published month is changed by a correction in the editor's console."""
    async def run(data: IssueDraftIn) -> tuple[IssueRead, bool]:
        async with checked_database(load_settings()) as database, database.transaction() as session:
            return await issues.publish_month(session, SystemClock(), None, data, operator=getpass.getuser())

    try:
        text = read_news(news) if news else ""
        result, is_new = asyncio.run(run(_draft(region, month, published, text, issue, total_issue)))
    except DomainError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    name = f"{result.year}年第{result.number}期（总第{result.total_number}期）"
    if is_new:
        formats = ", ".join(edition.format for edition in result.editions)
        typer.secho(f"published {result.month} as {name}, issue {result.id}: {formats}", fg=typer.colors.GREEN,
                    err=True)
    else:
        typer.secho(f"{result.month} is already published as {name}, issue {result.id}: nothing changed",
                    fg=typer.colors.GREEN, err=True)
