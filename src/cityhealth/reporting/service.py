"""The bulletin's use cases: build a month's BulletinData from the platform, render it as an edition."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from cityhealth.reporting.checks import TableWarning, check
from cityhealth.reporting.footer import footer_block
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.news import parse_news
from cityhealth.reporting.schemas import PublicationProfileIn
from cityhealth.reporting.tables import Issue, front_matter, layout, ordered

if TYPE_CHECKING:  # a bulletin rendered from a scenario file needs no database library
    from sqlalchemy.ext.asyncio import AsyncSession


class Edition(StrEnum):
    HTML = "html"
    DOCX = "docx"
    MD = "md"
    JSON = "json"
    PDF = "pdf"  # the DOCX edition printed by LibreOffice


async def build_bulletin(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
    """A month's statistics from the domains' maintained aggregates, rows in printed order; a month holding
    nothing to print is refused (sources.NoFigures), not written as an empty bulletin."""
    # Imported here: the domains' services are not needed to render a bulletin from a scenario file.
    from cityhealth.reporting import sources

    return ordered(await sources.gather_printable(session, month, region_code=region_code))


def issue_date(data: BulletinData, issue: Issue) -> date:
    """The date an issue carries: its publication date, or the first day of the month after its statistics."""
    if issue.published is not None:
        return issue.published
    if data.month_number == 12:
        return date(data.year_number + 1, 1, 1)
    return date(data.year_number, data.month_number + 1, 1)


def render(data: BulletinData, fmt: Edition, news_md: str | None = None, *, issue: Issue | None = None,
           profile: PublicationProfileIn | None = None) -> bytes:
    """One edition of the bulletin. The cost depends on the number of rows, never on the month's volume."""
    data = ordered(data)
    if fmt is Edition.JSON:
        # Editorial content and warnings stay out: the JSON edition is exactly the scenario format.
        return data.to_json().encode("utf-8")
    printed = layout(data)
    news = parse_news(news_md or "")
    issue = issue or Issue()
    front = front_matter(data, issue)
    footer = footer_block(profile, news, printed.publisher)
    if fmt is Edition.MD:
        from cityhealth.reporting.render_md import render_md

        return render_md(front, printed, news, footer)
    # Imported here: jinja2 and python-docx cost start-up time the other editions do not need.
    if fmt is Edition.HTML:
        from cityhealth.reporting.render_html import render_html

        return render_html(front, printed, news, footer)
    from cityhealth.reporting.render_docx import render_docx

    docx = render_docx(front, printed, news, footer, issued=issue_date(data, issue))
    if fmt is Edition.PDF:
        from cityhealth.reporting.render_pdf import docx_to_pdf

        return docx_to_pdf(docx)
    return docx


def warnings(data: BulletinData) -> list[TableWarning]:
    """What does not add up in the month's tables (printed by the CLI; never part of an edition)."""
    return check(ordered(data))
