"""The DOCX edition (python-docx): the seed's sections and tables, merged header cells, charts as PNG."""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.table import _Cell

from cityhealth.reporting import charts
from cityhealth.reporting.news import News
from cityhealth.reporting.tables import FrontMatter, Layout, Passage, Table, header_groups, print_order

# Word picks the East Asian font separately from the Latin one; without it Chinese falls back arbitrarily.
EAST_ASIAN_FONT = "宋体"
HEADING_FONT = "黑体"
_RED = RGBColor(0xB8, 0x40, 0x3A)


def _set_fonts(style: Any, latin: str, east_asian: str) -> None:
    style.font.name = latin
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), east_asian)


def _paragraph(document: Any, text: str, *, size: float | None = None, bold: bool = False,
               centred: bool = False, colour: RGBColor | None = None, style: str | None = None) -> Any:
    paragraph = document.add_paragraph(style=style)
    run = paragraph.add_run(text)
    run.bold = bold
    if size is not None:
        run.font.size = Pt(size)
    if colour is not None:
        run.font.color.rgb = colour
    if centred:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    return paragraph


def _cell_text(cell: Any, text: str, *, bold: bool = False, right: bool = False, centred: bool = False) -> None:
    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    if bold:
        run.bold = True
    run.font.size = Pt(8)
    if right:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    elif centred:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _row_cells(grid: Any, index: int) -> list[Any]:
    # python-docx's row.cells re-walks the whole table on every call (quadratic over a 40-row table);
    # an unmerged row's own <w:tc> elements are its cells.
    return [_Cell(tc, grid) for tc in grid.rows[index]._tr.tc_lst]


def _table(document: Any, table: Table) -> None:
    groups = header_groups(table.columns)
    header_rows = 2 if any(group.has_subcolumns for group in groups) else 1
    body = [*table.rows, *([table.total] if table.total is not None else [])]
    extra = 1 if table.closing is not None else 0
    grid = document.add_table(rows=header_rows + len(body) + extra, cols=len(table.columns))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    first = _row_cells(grid, 0)
    second = _row_cells(grid, 1) if header_rows == 2 else []
    column = 0
    for group in groups:
        top = first[column]
        if group.span > 1:
            top = top.merge(first[column + group.span - 1])
        elif second and not group.has_subcolumns:
            top = top.merge(second[column])
        _cell_text(top, group.text, bold=True, centred=True)
        if group.has_subcolumns:
            for offset in range(group.span):
                _cell_text(second[column + offset], table.columns[column + offset].sub or "", bold=True, centred=True)
        column += group.span
    for index, row in enumerate(body):
        is_total = table.total is not None and index == len(body) - 1
        cells = _row_cells(grid, header_rows + index)
        for cell, text, spec in zip(cells, row, table.columns, strict=True):
            _cell_text(cell, text, bold=is_total, right=spec.numeric and text != "合计", centred=text == "合计")
    if table.closing is not None:
        last = _row_cells(grid, len(grid.rows) - 1)
        merged = last[0].merge(last[-1])
        _cell_text(merged, table.closing, bold=True)


def _chart(document: Any, table: Table) -> None:
    if table.chart is None:
        return
    rendered = charts.render(table.chart, "png")
    document.add_picture(io.BytesIO(rendered.image), width=Cm(16))
    document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _paragraph(document, table.chart.title, size=9, centred=True)
    if not rendered.ranks_only:
        return
    if len(rendered.series) > 1:
        key = document.add_paragraph()
        key.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for name, colour in rendered.series:
            swatch = key.add_run("■ ")
            swatch.font.color.rgb = RGBColor.from_string(colour.removeprefix("#").upper())
            key.add_run(f"{name}    ").font.size = Pt(8)
    legend = document.add_table(rows=len(rendered.legend), cols=2)
    legend.alignment = WD_TABLE_ALIGNMENT.CENTER
    for row, (rank, name) in zip(legend.rows, rendered.legend, strict=True):
        _cell_text(row.cells[0], str(rank), right=True)
        _cell_text(row.cells[1], name)


def render_docx(front: FrontMatter, printed: Layout, news: News) -> bytes:
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    for margin in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, margin, Cm(1.8))
    _set_fonts(document.styles["Normal"], "Times New Roman", EAST_ASIAN_FONT)
    for name in ("Title", "Heading 1", "Heading 2", "Heading 3"):
        _set_fonts(document.styles[name], "Times New Roman", HEADING_FONT)
    document.core_properties.title = " ".join(filter(None, (front.masthead, front.issue_line)))
    document.core_properties.author = printed.publisher

    _paragraph(document, front.masthead, size=26, bold=True, centred=True, colour=_RED)
    for line in (front.issue_line, front.publisher_line, front.date_line):
        if line:
            _paragraph(document, line, centred=True)
    for article in news.articles:
        if article.title:
            document.add_heading(article.title, level=1)
        for text in article.paragraphs:
            paragraph = _paragraph(document, text)
            paragraph.paragraph_format.first_line_indent = Pt(21)
    if printed.tables or printed.passages:
        document.add_heading("统计数据", level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for table in print_order(printed):
        if isinstance(table, Passage):
            _paragraph(document, table.title, size=12, bold=True, centred=True)
            for text in table.paragraphs:
                _paragraph(document, text).paragraph_format.first_line_indent = Pt(21)
            continue
        _paragraph(document, table.title, size=12, bold=True, centred=True)
        if table.subtitle:
            _paragraph(document, table.subtitle, size=9, centred=True)
        _table(document, table)
        if table.note:
            _paragraph(document, table.note, centred=True)
        _chart(document, table)
    if news.briefs:
        document.add_heading("简 讯", level=1)
        for item in news.briefs:
            _paragraph(document, item, style="List Bullet")
    document.add_paragraph()
    for line in news.footer or (printed.publisher,):
        _paragraph(document, line, size=9)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
