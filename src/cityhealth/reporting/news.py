"""The editorial part of the bulletin (articles, 简讯, footer) from the editor's Markdown file.

The format, deliberately small:

    ## 六月全市预约挂号逾 51 万人次          an article, printed before the statistics
    Paragraphs separated by blank lines.

    ## 简讯                                  the news-in-brief, printed after the statistics
    - 6月，区域影像平台开展远程影像会诊 …    one item per "- " (or "* ") line; indented lines continue it

    ## 页脚                                  footer lines, one per line, printed when the region has no
                                             publication profile (reporting/profiles.py) to print instead

A `- ` list before any heading is 简讯 too. Only text is kept: no inline HTML or Markdown markup is
interpreted, and every edition escapes what it prints, so the file cannot inject markup into the bulletin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cityhealth.errors import ValidationFailed

BRIEFS_TITLE = "简讯"
FOOTER_TITLE = "页脚"
_HEADING = re.compile(r"#{1,6}\s+(.*?)\s*#*\s*")
_ITEM = re.compile(r"[-*+]\s+(.*)")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Article:
    title: str | None
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class News:
    articles: tuple[Article, ...] = ()
    briefs: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()


@dataclass
class _Section:
    title: str | None
    blocks: list[tuple[str, str]] = field(default_factory=list)  # ("paragraph" | "item", text), in file order
    lines: list[str] = field(default_factory=list)  # the raw non-blank lines, for the footer

    def texts(self, kind: str) -> list[str]:
        return [text for block_kind, text in self.blocks if block_kind == kind]


def _join(left: str, right: str) -> str:
    """Join a wrapped line: Chinese text takes no space at a line break, other text one."""
    if _CJK.match(left[-1:]) or _CJK.match(right[:1]):
        return left + right
    return f"{left} {right}"


def _parse_sections(text: str) -> list[_Section]:
    sections = [_Section(title=None)]
    paragraph: list[str] = []
    in_item = False

    def flush() -> None:
        nonlocal paragraph
        if paragraph:
            joined = paragraph[0]
            for line in paragraph[1:]:
                joined = _join(joined, line)
            sections[-1].blocks.append(("paragraph", joined))
        paragraph = []

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        heading = _HEADING.fullmatch(line)
        item = _ITEM.fullmatch(line)
        if heading:
            flush()
            in_item = False
            sections.append(_Section(title=heading.group(1)))
        elif not line:
            flush()
            in_item = False
        elif item:
            flush()
            sections[-1].blocks.append(("item", item.group(1).strip()))
            sections[-1].lines.append(line)
            in_item = True
        elif in_item and raw[:1].isspace():
            kind, previous = sections[-1].blocks[-1]
            sections[-1].blocks[-1] = (kind, _join(previous, line))
        else:
            in_item = False
            paragraph.append(line)
            sections[-1].lines.append(line)
    flush()
    return sections


def _is(title: str | None, wanted: str) -> bool:
    return title is not None and re.sub(r"\s+", "", title) == wanted


def parse_news(text: str) -> News:
    """The articles, 简讯 items and footer lines of a news Markdown file."""
    articles: list[Article] = []
    briefs: list[str] = []
    footer: list[str] = []
    for section in _parse_sections(text):
        if _is(section.title, FOOTER_TITLE):
            footer += [_ITEM.sub(r"\1", line) for line in section.lines]
        elif _is(section.title, BRIEFS_TITLE) or (section.title is None and not section.texts("paragraph")):
            briefs += [text for _, text in section.blocks]
        else:
            # An article keeps its list items as paragraphs, in place.
            articles.append(Article(section.title, tuple(text for _, text in section.blocks)))
    return News(articles=tuple(articles), briefs=tuple(briefs), footer=tuple(footer))


def read_news(path: Path) -> str:
    """The editor's Markdown file as text; a file that is not UTF-8 text is refused, saying why."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 Markdown",
                               field="news", value=str(path), rule="bulletin.news.utf8") from exc
    if "\x00" in text:
        raise ValidationFailed(f"{path} holds a NUL character; it is not a Markdown text file", field="news",
                               value=str(path), rule="bulletin.news.text")
    return text
