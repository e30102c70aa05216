"""The DOCX edition as a print shop receives it, read from the package's XML."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from xml.etree import ElementTree as ET

import pytest

from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.service import Edition, render
from cityhealth.reporting.tables import Issue

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
BOOKING_TITLE = "2022 年 6 月预约挂号服务统计"
TEXT_WIDTH_TWIPS = round(17 / 2.54 * 1440)


@pytest.fixture(scope="module")
def package() -> dict[str, bytes]:
    from tests.reporting.conftest import scenario_path

    data = BulletinData.from_json(scenario_path().read_text(encoding="utf-8"))
    content = render(data, Edition.DOCX, "## 一篇文章\n\n正文。\n", issue=Issue(7, 125, date(2022, 7, 28)))
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _xml(package: dict[str, bytes], name: str) -> ET.Element:
    return ET.fromstring(package[name])  # noqa: S314 - the platform's own output, not untrusted input


def _text(element: ET.Element) -> str:
    return "".join(node.text or "" for node in element.iter(f"{W}t"))


def _body(package: dict[str, bytes]) -> list[ET.Element]:
    body = _xml(package, "word/document.xml").find(f"{W}body")
    assert body is not None
    return list(body)


def _style(package: dict[str, bytes], style_id: str) -> ET.Element:
    styles = _xml(package, "word/styles.xml")
    return next(s for s in styles.iter(f"{W}style") if s.get(f"{W}styleId") == style_id)


def _booking_table(package: dict[str, bytes]) -> ET.Element:
    body = _body(package)
    index = next(i for i, element in enumerate(body) if _text(element) == BOOKING_TITLE)
    return next(element for element in body[index:] if element.tag == f"{W}tbl")


def test_masthead_is_red_and_the_line_under_it_carries_a_red_rule(package: dict[str, bytes]) -> None:
    paragraphs = [e for e in _body(package) if e.tag == f"{W}p"]
    masthead = paragraphs[0]
    assert _text(masthead) == "南京卫生信息化简报"
    colours = {c.get(f"{W}val") for c in masthead.iter(f"{W}color")}
    assert colours == {"E60012"}
    ruled = next(p for p in paragraphs if p.find(f"{W}pPr/{W}pBdr") is not None)
    assert _text(ruled) == "南京市卫生信息中心 编印2022年7月28日"  # a w:tab between them
    bottom = ruled.find(f"{W}pPr/{W}pBdr/{W}bottom")
    assert bottom is not None
    assert (bottom.get(f"{W}val"), bottom.get(f"{W}color")) == ("single", "E60012")


@pytest.mark.parametrize(("style_id", "east_asian", "half_points"), [
    ("Normal", "仿宋", "32"),  # 三号
    ("Heading1", "黑体", "32"),  # 三号
    ("Heading2", "黑体", "28"),  # 四号
])
def test_styles_name_their_chinese_font_and_size_with_no_theme_font(
    package: dict[str, bytes], style_id: str, east_asian: str, half_points: str
) -> None:
    style = _style(package, style_id)
    fonts = style.find(f"{W}rPr/{W}rFonts")
    assert fonts is not None
    assert fonts.get(f"{W}eastAsia") == east_asian
    assert fonts.get(f"{W}ascii") == "Times New Roman"
    assert not [name for name in fonts.attrib if name.endswith("Theme")]
    size = style.find(f"{W}rPr/{W}sz")
    assert size is not None
    assert size.get(f"{W}val") == half_points
    colour = style.find(f"{W}rPr/{W}color")
    assert colour is None or colour.get(f"{W}val") == "000000"


def test_font_table_names_the_fallbacks_and_no_japanese_font_is_left(package: dict[str, bytes]) -> None:
    table = _xml(package, "word/fontTable.xml")
    alt = {f.get(f"{W}name"): f.find(f"{W}altName").get(f"{W}val")  # type: ignore[union-attr]
           for f in table.iter(f"{W}font") if f.find(f"{W}altName") is not None}
    assert alt["黑体"] == "SimHei"
    assert alt["仿宋"] == "FangSong"
    for name, content in package.items():
        if name.endswith(".xml"):
            assert "ＭＳ" not in content.decode("utf-8"), name


def test_every_page_footer_carries_a_page_number_field(package: dict[str, bytes]) -> None:
    footers = [name for name in package if name.startswith("word/footer")]
    assert len(footers) == 1
    footer = _xml(package, footers[0])
    assert [node.text for node in footer.iter(f"{W}instrText")] == [" PAGE "]
    kinds = [node.get(f"{W}fldCharType") for node in footer.iter(f"{W}fldChar")]
    assert kinds == ["begin", "separate", "end"]


def test_table_header_rows_repeat_and_no_row_splits(package: dict[str, bytes]) -> None:
    rows = _booking_table(package).findall(f"{W}tr")
    assert [row.find(f"{W}trPr/{W}tblHeader") is not None for row in rows[:2]] == [True, False]
    assert all(row.find(f"{W}trPr/{W}cantSplit") is not None for row in rows)
    assert len(rows) == 40  # the header, 38 hospitals and 合计


def test_every_table_title_is_kept_with_its_table(package: dict[str, bytes]) -> None:
    body = _body(package)
    tables = [i for i, element in enumerate(body) if element.tag == f"{W}tbl"]
    for index in tables:
        before = body[index - 1]
        if _text(before).startswith(("南京", "2022")):
            assert before.find(f"{W}pPr/{W}keepNext") is not None, _text(before)


def test_columns_are_fitted_to_their_content_within_the_page(package: dict[str, bytes]) -> None:
    table = _booking_table(package)
    grid = [int(column.get(f"{W}w") or 0) for column in table.iter(f"{W}gridCol")]
    number, unit = grid[0], grid[1]
    assert number * 4 < unit  # 序号 is a narrow column, 单位 a wide one
    assert sum(grid) <= TEXT_WIDTH_TWIPS
    layout = table.find(f"{W}tblPr/{W}tblLayout")
    assert layout is not None
    assert layout.get(f"{W}type") == "fixed"


def test_figures_are_right_aligned_and_names_are_not(package: dict[str, bytes]) -> None:
    first_hospital = _booking_table(package).findall(f"{W}tr")[1]
    alignments = [cell.find(f"{W}p/{W}pPr/{W}jc") for cell in first_hospital.findall(f"{W}tc")]
    values = [None if jc is None else jc.get(f"{W}val") for jc in alignments]
    assert values == ["right", None, "right", "right", "right", "right", "right"]


def test_document_properties_are_this_issue_s_and_nothing_of_the_template_s(package: dict[str, bytes]) -> None:
    core = package["docProps/core.xml"].decode("utf-8")
    assert "<dc:title>南京卫生信息化简报 2022年第7期（总第125期）</dc:title>" in core
    assert "<dc:creator>南京市卫生信息中心</dc:creator>" in core
    assert "2022-07-28T00:00:00Z</dcterms:created>" in core
    assert "2022-07-28T00:00:00Z</dcterms:modified>" in core
    assert "2013" not in core
    every_part = b"".join(package.values()).decode("utf-8", errors="replace").lower()
    assert "python-docx" not in every_part
    assert "docProps/thumbnail.jpeg" not in package
    assert "Microsoft Macintosh Word" not in package["docProps/app.xml"].decode("utf-8")
