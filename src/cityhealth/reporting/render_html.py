"""The HTML edition: one self-contained page (inline CSS, charts as inline SVG), laid out as the seed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cityhealth.reporting import charts
from cityhealth.reporting.footer import FooterBlock
from cityhealth.reporting.news import News
from cityhealth.reporting.tables import Column, FrontMatter, Layout, Passage, Table, header_groups, print_order


@dataclass(frozen=True)
class HeaderCell:
    text: str
    colspan: int
    rowspan: int


@dataclass(frozen=True)
class Block:
    table: Table
    header_top: tuple[HeaderCell, ...]
    header_sub: tuple[str, ...]
    numeric: tuple[bool, ...]
    svg: Markup | None


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cityhealth.reporting", "templates"),
        autoescape=select_autoescape(["html"]),  # every editorial and data string is escaped
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _headers(columns: tuple[Column, ...]) -> tuple[tuple[HeaderCell, ...], tuple[str, ...]]:
    groups = header_groups(columns)
    two_rows = any(group.has_subcolumns for group in groups)
    top = tuple(
        HeaderCell(group.text, group.span, 1 if group.has_subcolumns or not two_rows else 2) for group in groups
    )
    return top, tuple(column.sub for column in columns if column.sub is not None)


def _inline_svg(table: Table) -> Markup | None:
    if table.chart is None:
        return None
    # charts.py escapes every text it writes into the SVG; nothing else in it comes from the data.
    return Markup(charts.render(table.chart, "svg").image.decode("utf-8"))  # noqa: S704


def _block(table: Table) -> Block:
    top, sub = _headers(table.columns)
    return Block(
        table=table,
        header_top=top,
        header_sub=sub,
        numeric=tuple(column.numeric for column in table.columns),
        svg=_inline_svg(table),
    )


def _codes(footer: FooterBlock) -> list[tuple[str, Markup]]:
    # segno writes the SVG from the URL's bits alone; the caption in its <title> is XML-escaped by segno.
    return [(code.caption, Markup(code.svg)) for code in footer.codes]  # noqa: S704


def render_html(front: FrontMatter, printed: Layout, news: News, footer: FooterBlock) -> bytes:
    template = _environment().get_template("bulletin.html")
    page = template.render(
        front=front,
        news=news,
        items=[item if isinstance(item, Passage) else _block(item) for item in print_order(printed)],
        footer=footer.lines,
        codes=_codes(footer),
    )
    return page.encode("utf-8")
