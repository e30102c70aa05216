"""The DOCX edition (python-docx), laid out for print: 红头 masthead and rule, 黑体/仿宋, page numbers, tables
that break cleanly across pages, charts as 300 dpi PNG, the publication profile in the footer block.

The print conventions themselves (fonts, sizes, field codes, table properties) are in `docx_print`.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt, RGBColor
from docx.table import _Cell

from cityhealth.reporting import charts
from cityhealth.reporting.docx_print import (
    FANGSONG,
    HEITI,
    RED,
    SIZE_ERHAO,
    SIZE_SANHAO,
    SIZE_SIHAO,
    SIZE_WUHAO,
    SIZE_XIAOCHU,
    SIZE_XIAOWU,
    XIAOBIAOSONG,
    Font,
    cannot_split,
    clean_package,
    document_defaults,
    fixed_widths,
    page_number_footer,
    repeat_as_header,
    rule_below,
    set_run_fonts,
    style,
    text_width_pt,
)
from cityhealth.reporting.footer import FooterBlock
from cityhealth.reporting.news import News
from cityhealth.reporting.tables import FrontMatter, Layout, Passage, Table, header_groups, print_order

PAGE_WIDTH_CM, PAGE_HEIGHT_CM = 21.0, 29.7  # A4
MARGIN_TOP_CM, MARGIN_BOTTOM_CM, MARGIN_SIDE_CM = 2.5, 2.5, 2.0
TEXT_WIDTH_PT = (PAGE_WIDTH_CM - 2 * MARGIN_SIDE_CM) / 2.54 * 72
CELL_PADDING_PT = 2 * 5.4 + 2  # Word's default left and right cell margins, and a little slack
QR_WIDTH_CM = 2.6


def _run(paragraph: Any, text: str, *, font: Font = FANGSONG, size: float | None = None, bold: bool = False,
         colour: RGBColor | None = None) -> Any:
    run = paragraph.add_run(text)
    set_run_fonts(run._r.get_or_add_rPr(), font)
    run.bold = bold
    if size is not None:
        run.font.size = Pt(size)
    if colour is not None:
        run.font.color.rgb = colour
    return run


def _paragraph(document: Any, text: str, *, font: Font = FANGSONG, size: float | None = None, bold: bool = False,
               centred: bool = False, colour: RGBColor | None = None, style: str | None = None,
               keep_with_next: bool = False, indent: bool = False) -> Any:
    paragraph = document.add_paragraph(style=style)
    _run(paragraph, text, font=font, size=size, bold=bold, colour=colour)
    if centred:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if keep_with_next:
        paragraph.paragraph_format.keep_with_next = True
    if indent:
        paragraph.paragraph_format.first_line_indent = Pt(2 * SIZE_SANHAO)  # two characters, as Chinese prose
    return paragraph


def _cell_text(cell: Any, text: str, *, bold: bool = False, right: bool = False, centred: bool = False,
               keep_with_next: bool = False) -> None:
    paragraph = cell.paragraphs[0]
    _run(paragraph, text, size=SIZE_XIAOWU, bold=bold)
    paragraph.paragraph_format.space_after = Pt(0)
    if keep_with_next:
        paragraph.paragraph_format.keep_with_next = True
    if right:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    elif centred:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _row_cells(grid: Any, index: int) -> list[Any]:
    # python-docx's row.cells re-walks the whole table on every call (quadratic over a 40-row table);
    # an unmerged row's own <w:tc> elements are its cells.
    return [_Cell(tc, grid) for tc in grid.rows[index]._tr.tc_lst]


def column_widths_pt(table: Table, available_pt: float = TEXT_WIDTH_PT) -> list[float]:
    """Each column as wide as its longest cell; a long heading may wrap to two lines. Too wide a table is
    narrowed in proportion, so the page's text width is never exceeded."""
    body = [*table.rows, *([table.total] if table.total is not None else [])]
    widths: list[float] = []
    for index, column in enumerate(table.columns):
        heading = column.sub if column.sub is not None else column.group
        heading_pt = text_width_pt(heading, SIZE_XIAOWU)
        if heading_pt > 4 * SIZE_XIAOWU:
            heading_pt = max(4 * SIZE_XIAOWU, heading_pt / 2)
        content_pt = max((text_width_pt(row[index], SIZE_XIAOWU) for row in body), default=0.0)
        widths.append(max(heading_pt, content_pt) + CELL_PADDING_PT)
    total = sum(widths)
    if total > available_pt:
        widths = [width * available_pt / total for width in widths]
    return widths


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
        _cell_text(top, group.text, bold=True, centred=True, keep_with_next=True)
        if group.has_subcolumns:
            for offset in range(group.span):
                _cell_text(second[column + offset], table.columns[column + offset].sub or "", bold=True,
                           centred=True, keep_with_next=True)
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
    for index, row in enumerate(grid.rows):
        if index < header_rows:
            repeat_as_header(row)
        cannot_split(row)
    fixed_widths(grid, [round(width * 20) for width in column_widths_pt(table)])


def _picture(document: Any, image: bytes, width_cm: float) -> Any:
    document.add_picture(io.BytesIO(image), width=Cm(width_cm))
    paragraph = document.paragraphs[-1]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.keep_with_next = True  # the chart stays with its caption
    return paragraph


def _chart(document: Any, table: Table) -> None:
    if table.chart is None:
        return
    rendered = charts.render(table.chart, "png")
    _picture(document, rendered.image, charts.PRINT_WIDTH_CM)
    caption = table.chart.title + (f"（单位：{table.chart.unit}）" if rendered.ranks_only else "")
    _paragraph(document, caption, size=SIZE_XIAOWU, centred=True)
    if not rendered.ranks_only:
        return
    if len(rendered.series) > 1:
        key = document.add_paragraph()
        key.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for name, colour in rendered.series:
            _run(key, "■ ", colour=RGBColor.from_string(colour.removeprefix("#").upper()))
            _run(key, f"{name}    ", size=SIZE_XIAOWU)
    legend = document.add_table(rows=len(rendered.legend), cols=2)
    legend.alignment = WD_TABLE_ALIGNMENT.CENTER
    for row, (rank, name) in zip(legend.rows, rendered.legend, strict=True):
        _cell_text(row.cells[0], str(rank), right=True)
        _cell_text(row.cells[1], name)


def _masthead(document: Any, front: FrontMatter) -> None:
    _paragraph(document, front.masthead, font=XIAOBIAOSONG, size=SIZE_XIAOCHU, bold=True, centred=True,
               colour=RED)
    if front.issue_line:
        _paragraph(document, front.issue_line, size=SIZE_SANHAO, centred=True)
    # 编印单位 on the left, the date on the right, on the line the red rule underlines (a tab to the margin).
    line = document.add_paragraph()
    line.paragraph_format.tab_stops.add_tab_stop(Pt(TEXT_WIDTH_PT), alignment=2)  # right
    _run(line, front.publisher_line, size=SIZE_SANHAO)
    if front.date_line:
        _run(line, "\t" + front.date_line, size=SIZE_SANHAO)
    rule_below(line)


def _footer_block(document: Any, footer: FooterBlock) -> None:
    """The publisher's block at the end: its lines above a rule, the QR codes beside each other."""
    lines = [_paragraph(document, text, size=SIZE_WUHAO) for text in footer.lines]
    if lines:
        lines[0].paragraph_format.keep_with_next = True
        rule_below(lines[-1], RGBColor(0, 0, 0), 6)
    if not footer.codes:
        return
    grid = document.add_table(rows=2, cols=len(footer.codes))
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    for index, code in enumerate(footer.codes):
        picture = grid.rows[0].cells[index].paragraphs[0]
        picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
        picture.add_run().add_picture(io.BytesIO(code.png), width=Cm(QR_WIDTH_CM))
        _cell_text(grid.rows[1].cells[index], code.caption, centred=True)
    for row in grid.rows:
        cannot_split(row)


def render_docx(front: FrontMatter, printed: Layout, news: News, footer: FooterBlock, *, issued: date) -> bytes:
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(PAGE_WIDTH_CM), Cm(PAGE_HEIGHT_CM)
    section.top_margin, section.bottom_margin = Cm(MARGIN_TOP_CM), Cm(MARGIN_BOTTOM_CM)
    section.left_margin = section.right_margin = Cm(MARGIN_SIDE_CM)
    document_defaults(document)
    style(document, "Normal", FANGSONG, SIZE_SANHAO)
    style(document, "Title", HEITI, SIZE_ERHAO)
    style(document, "Heading 1", HEITI, SIZE_SANHAO)
    style(document, "Heading 2", HEITI, SIZE_SIHAO)
    style(document, "List Bullet", FANGSONG, SIZE_SANHAO)
    page_number_footer(section, FANGSONG, SIZE_SIHAO)
    clean_package(document, title=" ".join(filter(None, (front.masthead, front.issue_line))),
                  author=printed.publisher, issued=issued, subject=front.masthead)

    _masthead(document, front)
    for article in news.articles:
        if article.title:
            document.add_heading(article.title, level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
        for text in article.paragraphs:
            _paragraph(document, text, indent=True)
    if printed.tables or printed.passages:
        document.add_heading("统计数据", level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for table in print_order(printed):
        # Titles are kept with what follows them: a heading never ends a page without its table.
        _paragraph(document, table.title, font=HEITI, size=SIZE_SIHAO, centred=True, keep_with_next=True)
        if isinstance(table, Passage):
            for text in table.paragraphs:
                _paragraph(document, text, indent=True)
            continue
        if table.subtitle:
            _paragraph(document, table.subtitle, size=SIZE_XIAOWU, centred=True, keep_with_next=True)
        _table(document, table)
        if table.note:
            _paragraph(document, table.note, size=SIZE_WUHAO, centred=True)
        _chart(document, table)
    if news.briefs:
        document.add_heading("简 讯", level=1)
        for item in news.briefs:
            _paragraph(document, item, style="List Bullet")
    document.add_paragraph()
    _footer_block(document, footer)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
