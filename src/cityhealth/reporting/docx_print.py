"""The print conventions of the DOCX edition, in WordprocessingML: fonts and sizes, the red rule under the
masthead, page numbers, tables that survive a page break, and a package carrying nothing of python-docx's
template (its Japanese theme fonts, its 2013 dates, its "python-docx" author and thumbnail).

See docs/decisions/bulletin-print.md for the sizes chosen and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from xml.sax.saxutils import escape

from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor, Twips

# Chinese type sizes (字号) in points.
SIZE_CHUHAO = 42.0  # 初号
SIZE_XIAOCHU = 36.0  # 小初
SIZE_ERHAO = 22.0  # 二号
SIZE_SANHAO = 16.0  # 三号
SIZE_SIHAO = 14.0  # 四号
SIZE_XIAOSI = 12.0  # 小四
SIZE_WUHAO = 10.5  # 五号
SIZE_XIAOWU = 9.0  # 小五

LATIN_FONT = "Times New Roman"
RED = RGBColor(0xE6, 0x00, 0x12)  # the masthead's 红头 and its rule
BLACK = RGBColor(0, 0, 0)


@dataclass(frozen=True)
class Font:
    """A Chinese font as Word looks it up: its Chinese name, the name it also goes by, and its kind.

    `alt_name` and `family` are written to the font table, so that a Word without the font substitutes one of
    the same kind; the PDF edition maps both names to the Debian font in `debian_family`.
    """

    name: str
    alt_name: str
    family: str  # the font table's w:family: "modern" (黑体, monospaced CJK) or "roman" (serif)
    debian_family: str


HEITI = Font("黑体", "SimHei", "modern", "Noto Sans CJK SC")  # headings
FANGSONG = Font("仿宋", "FangSong", "modern", "Noto Serif CJK SC")  # body text
XIAOBIAOSONG = Font("方正小标宋简体", "FZXiaoBiaoSong-B05S", "roman", "Noto Serif CJK SC")  # the masthead
SONGTI = Font("宋体", "SimSun", "roman", "Noto Serif CJK SC")  # fallback for anything unstyled
FONTS = (HEITI, FANGSONG, XIAOBIAOSONG, SONGTI)


def set_run_fonts(r_pr: Any, east_asian: Font) -> None:
    """Latin text in Times New Roman, Chinese in `east_asian`; no theme font left to override either."""
    fonts = r_pr.get_or_add_rFonts()
    for attribute in list(fonts.attrib):
        if attribute.endswith("Theme"):
            del fonts.attrib[attribute]
    fonts.set(qn("w:ascii"), LATIN_FONT)
    fonts.set(qn("w:hAnsi"), LATIN_FONT)
    fonts.set(qn("w:cs"), LATIN_FONT)
    fonts.set(qn("w:eastAsia"), east_asian.name)
    fonts.set(qn("w:hint"), "eastAsia")


def style(document: Any, name: str, font: Font, size_pt: float, *, bold: bool = False) -> None:
    """A paragraph style in `font` at `size_pt`, black (the template's headings are blue), no theme fonts."""
    target = document.styles[name]
    set_run_fonts(target.element.get_or_add_rPr(), font)
    target.font.size = Pt(size_pt)
    target.font.bold = bold
    target.font.italic = False
    target.font.color.rgb = BLACK


def document_defaults(document: Any) -> None:
    """The document defaults name fonts outright: the template's point at its theme's Japanese fonts."""
    styles = document.styles.element
    defaults = styles.find(qn("w:docDefaults"))
    r_pr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    set_run_fonts(r_pr, SONGTI)
    language = r_pr.find(qn("w:lang"))
    if language is None:
        language = OxmlElement("w:lang")
        r_pr.append(language)
    language.set(qn("w:val"), "en-US")
    language.set(qn("w:eastAsia"), "zh-CN")


def font_table_xml() -> bytes:
    """word/fontTable.xml naming only the fonts used, each Chinese one with its alternative name."""
    entries = [f'<w:font w:name="{LATIN_FONT}"><w:charset w:val="00"/><w:family w:val="roman"/>'
               '<w:pitch w:val="variable"/></w:font>']
    entries += [f'<w:font w:name="{escape(font.name)}"><w:altName w:val="{escape(font.alt_name)}"/>'
                f'<w:charset w:val="86"/><w:family w:val="{font.family}"/><w:pitch w:val="variable"/></w:font>'
                for font in FONTS]
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<w:fonts xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            + "".join(entries) + "</w:fonts>").encode("utf-8")


def app_xml(company: str) -> bytes:
    """docProps/app.xml without the template's application and page counts (Word recounts on opening)."""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            f"<Application>cityhealth</Application><Company>{escape(company)}</Company>"
            "</Properties>").encode()


def clean_package(document: Any, *, title: str, author: str, issued: date, subject: str) -> None:
    """Document properties of this issue only; the template's thumbnail, custom XML and fonts are dropped."""
    moment = datetime.combine(issued, time(0, 0), tzinfo=UTC)
    core = document.core_properties
    core.title, core.subject, core.author, core.last_modified_by = title, subject, author, author
    core.comments, core.keywords, core.category, core.content_status, core.identifier = "", "", "", "", ""
    core.created, core.modified, core.last_printed = moment, moment, moment
    core.revision = 1
    package = document.part.package
    for r_id, rel in list(package.rels.items()):
        if rel.reltype.endswith("/thumbnail"):
            del package.rels[r_id]
    main = document.part
    for r_id, rel in list(main.rels.items()):
        if rel.reltype.endswith("/customXml") or rel.reltype.endswith("/stylesWithEffects"):
            del main.rels[r_id]
        elif rel.reltype.endswith("/fontTable"):
            rel.target_part._blob = font_table_xml()
        elif rel.reltype.endswith("/theme"):
            rel.target_part._blob = _theme_without_japanese(rel.target_part.blob)
    for rel in package.rels.values():
        if rel.reltype.endswith("/extended-properties"):
            rel.target_part._blob = app_xml(author)


def _theme_without_japanese(theme: bytes) -> bytes:
    """The theme's font scheme with Chinese fonts for the Han script instead of the template's Japanese ones."""
    text = theme.decode("utf-8")
    for japanese, chinese in (("ＭＳ ゴシック", HEITI), ("ＭＳ 明朝", SONGTI)):
        text = text.replace(f'script="Jpan" typeface="{japanese}"', f'script="Jpan" typeface="{chinese.name}"')
    text = text.replace('<a:ea typeface=""/>', f'<a:ea typeface="{SONGTI.name}"/>')
    return text.encode("utf-8")


def rule_below(paragraph: Any, colour: RGBColor = RED, width_eighths: int = 18) -> None:
    """A horizontal rule under `paragraph` (its bottom border), `width_eighths` eighths of a point thick."""
    p_pr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("val", "single"), ("sz", str(width_eighths)), ("space", "4"), ("color", str(colour))):
        bottom.set(qn(f"w:{key}"), value)
    borders.append(bottom)
    p_pr.append(borders)


def page_number_footer(section: Any, font: Font, size_pt: float) -> None:
    """"— 3 —" centred in the footer of every page: a PAGE field, which the word processor fills in."""
    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = 1  # centre
    paragraph.text = ""

    def run(text: str | None = None) -> Any:
        r = paragraph.add_run(text)
        set_run_fonts(r._r.get_or_add_rPr(), font)
        r.font.size = Pt(size_pt)
        return r

    run("— ")
    for kind, instruction in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        r = run()
        if kind is not None:
            character = OxmlElement("w:fldChar")
            character.set(qn("w:fldCharType"), kind)
            r._r.append(character)
        elif instruction == " PAGE ":
            code = OxmlElement("w:instrText")
            code.set(qn("xml:space"), "preserve")
            code.text = instruction
            r._r.append(code)
        else:
            r.text = instruction
    run(" —")


def _on(parent: Any, tag: str) -> None:
    element = OxmlElement(tag)
    parent.append(element)


def repeat_as_header(row: Any) -> None:
    """Word and LibreOffice print this row again at the top of every page the table continues on."""
    _on(row._tr.get_or_add_trPr(), "w:tblHeader")


def cannot_split(row: Any) -> None:
    """The row moves to the next page whole rather than breaking across the page."""
    _on(row._tr.get_or_add_trPr(), "w:cantSplit")


def fixed_widths(table: Any, widths_twips: list[int]) -> None:
    """Column widths as given, honoured by Word (fixed layout, grid and every cell's own width)."""
    tbl = table._tbl
    tbl_pr = tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tbl_pr.append(layout)
    width = tbl_pr.find(qn("w:tblW"))
    if width is None:
        width = OxmlElement("w:tblW")
        tbl_pr.append(width)
    width.set(qn("w:w"), str(sum(widths_twips)))
    width.set(qn("w:type"), "dxa")
    for grid_column, value in zip(tbl.tblGrid.gridCol_lst, widths_twips, strict=True):
        grid_column.w = Twips(value)
    for tr in tbl.tr_lst:
        column = 0
        for tc in tr.tc_lst:
            span = tc.grid_span
            tc.width = Twips(sum(widths_twips[column:column + span]))
            column += span


def text_width_pt(text: str, size_pt: float) -> float:
    """Generous advance of `text`: a CJK character is one em, a digit or Latin letter 0.6 em (bold digits of the
    fonts a reader may substitute for Times New Roman are that wide), so that no figure wraps in its cell."""
    return sum(size_pt if ord(char) > 0x2E80 else size_pt * 0.6 for char in text)
