"""Read the tables back out of an edition, so tests assert on rows as a reader sees them."""

from __future__ import annotations

from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._section: str | None = None
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section" and attributes.get("class") == "table":
            self._section = attributes.get("id")
        elif tag == "table" and self._section is not None and attributes.get("class") != "legend":
            self._table = self.tables.setdefault(self._section, [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(page: str) -> dict[str, list[list[str]]]:
    """Each statistics table of the HTML edition by its section id, every row (headers included) as cell texts."""
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """Each Markdown table under its `### ` title, the header and body rows as cell texts."""
    tables: dict[str, list[list[str]]] = {}
    title: str | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line.removeprefix("### ")
        elif line.startswith("|") and title is not None and not line.startswith("|-") and "---" not in line:
            tables.setdefault(title, []).append([cell.strip() for cell in line.strip("|").split(" | ")])
    return tables
