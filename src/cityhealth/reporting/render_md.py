"""The Markdown edition: the same sections and tables as the seed, as GitHub-flavoured Markdown.

Markdown has no merged header cells, so a column under a group heading is labelled "门急诊信息 人次".
"""

from __future__ import annotations

import re

from cityhealth.reporting.footer import FooterBlock
from cityhealth.reporting.news import News
from cityhealth.reporting.tables import FrontMatter, Layout, Passage, Table, print_order

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _text(value: str) -> str:
    """Editorial and data text, inert: Markdown and HTML syntax characters are backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", value.replace("&", "&amp;"))


def _table(table: Table) -> list[str]:
    lines = [f"### {_text(table.title)}", ""]
    if table.subtitle:
        lines += [_text(table.subtitle), ""]
    lines.append("| " + " | ".join(_text(column.label) for column in table.columns) + " |")
    lines.append("|" + "|".join("---:" if column.numeric else "---" for column in table.columns) + "|")
    rows = list(table.rows)
    if table.total is not None:
        rows.append(table.total)
    if table.closing is not None:
        rows.append((table.closing, *([""] * (len(table.columns) - 1))))
    lines += ["| " + " | ".join(_text(cell) for cell in row) + " |" for row in rows]
    lines.append("")
    if table.note:
        lines += [_text(table.note), ""]
    return lines


def _passage(passage: Passage) -> list[str]:
    lines = [f"### {_text(passage.title)}", ""]
    for paragraph in passage.paragraphs:
        lines += [_text(paragraph), ""]
    return lines


def render_md(front: FrontMatter, printed: Layout, news: News, footer: FooterBlock) -> bytes:
    lines = [f"# {_text(front.masthead)}", ""]
    for line in (front.issue_line, front.publisher_line, front.date_line):
        if line:
            lines += [_text(line), ""]
    for article in news.articles:
        if article.title:
            lines += [f"## {_text(article.title)}", ""]
        for paragraph in article.paragraphs:
            lines += [_text(paragraph), ""]
    if printed.tables or printed.passages:
        lines += ["## 统计数据", ""]
        for item in print_order(printed):
            lines += _passage(item) if isinstance(item, Passage) else _table(item)
    if news.briefs:
        lines += ["## 简 讯", ""]
        lines += [f"- {_text(item)}" for item in news.briefs]
        lines.append("")
    lines += ["---", ""]
    for line in footer.lines:
        lines += [_text(line), ""]
    for code in footer.codes:  # a text edition prints what the QR code would open
        lines += [_text(f"{code.caption}：{code.url}"), ""]
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8")
