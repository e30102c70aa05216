"""The PDF edition, printed by a real word processor (LibreOffice headless) and read back page by page.

One rendering serves every test of the module (LibreOffice takes seconds to start). The tests skip, saying
why, only where LibreOffice or poppler is not installed; `make test` installs them (scripts/office-deps).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from cityhealth.reporting import render_pdf
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.schemas import PublicationProfileIn
from cityhealth.reporting.service import Edition, render
from cityhealth.reporting.tables import Issue
from tests.reporting.conftest import scenario_path

PROFILE = Path(__file__).resolve().parents[2] / "src/cityhealth/simulation/scenarios/nanjing-2022-06-profile.json"
BOOKING_HEADER = ("序号", "单位", "电话预约", "诊间预约", "第三方", "小计")
MISSING = [tool for tool in ("pdftotext", "pdftoppm", "pdffonts", "pdfimages") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.skipif(render_pdf.office_program() is None,
                       reason="LibreOffice (soffice) is not installed: run scripts/office-deps as root"),
    pytest.mark.skipif(bool(MISSING), reason=f"poppler-utils ({', '.join(MISSING)}) is not installed: "
                                             "run scripts/office-deps as root"),
]


def _run(*arguments: str) -> str:
    return subprocess.run(arguments, capture_output=True, check=True, text=True).stdout  # noqa: S603


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = BulletinData.from_json(scenario_path().read_text(encoding="utf-8"))
    profile = PublicationProfileIn.model_validate(json.loads(PROFILE.read_text(encoding="utf-8")))
    content = render(data, Edition.PDF, "## 本月要闻\n\n平台运行平稳。\n", issue=Issue(7, 125, date(2022, 7, 28)),
                     profile=profile)
    path = tmp_path_factory.mktemp("pdf") / "bulletin.pdf"
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def pages(pdf: Path) -> list[str]:
    return _run("pdftotext", "-layout", str(pdf), "-").split("\f")[:-1]


def test_the_first_page_opens_with_the_masthead_and_the_issue(pages: list[str]) -> None:
    lines = [line.strip() for line in pages[0].splitlines() if line.strip()]
    assert lines[0] == "南京卫生信息化简报"
    assert lines[1].replace(" ", "") == "2022年第7期（总第125期）"


def test_every_page_carries_its_number(pages: list[str]) -> None:
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        last = [line.strip() for line in page.splitlines() if line.strip()][-1]
        assert last.replace(" ", "") == f"—{number}—"


def test_a_table_continued_on_a_later_page_repeats_its_header(pages: list[str]) -> None:
    continued = [index for index, page in enumerate(pages) if "南京同仁医院" in page and "22" in page]
    assert continued
    page = pages[continued[0]]
    assert continued[0] >= 1  # the booking table starts on the first page and goes on beyond it
    header = next(line for line in page.splitlines() if "序号" in line)
    assert all(word in header for word in BOOKING_HEADER)


def test_the_footer_block_prints_the_profile(pages: list[str]) -> None:
    text = re.sub(r"\s+", "", pages[-1])
    assert "责任编辑：周明远本期共印300份" in text
    assert "健康南京APP" in text


def test_every_font_is_embedded_and_the_chinese_ones_are_noto_cjk(pdf: Path) -> None:
    rows = _run("pdffonts", str(pdf)).splitlines()[2:]
    assert rows
    assert all(row.split()[-5] == "yes" for row in rows)  # the "emb" column
    names = " ".join(row.split()[0] for row in rows)
    assert "NotoSansCJK" in names  # 黑体's stand-in
    assert "NotoSerifCJK" in names  # 仿宋's
    assert "LiberationSerif" in names  # Times New Roman's


def test_charts_and_codes_go_in_at_300_dpi_or_more(pdf: Path) -> None:
    rows = [row.split() for row in _run("pdfimages", "-list", str(pdf)).splitlines()[2:]]
    assert len(rows) == 4 + 2  # four charts, two QR codes
    assert all(int(row[12]) >= 300 for row in rows)  # x-ppi


def test_the_first_page_shows_a_red_masthead_and_its_rule(pdf: Path, tmp_path: Path) -> None:
    from PIL import Image

    _run("pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-png", str(pdf), str(tmp_path / "page"))
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("RGB")

    def red(pixel: tuple[int, int, int]) -> bool:
        return pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80

    rows = [sum(red(image.getpixel((x, y))) for x in range(image.width)) for y in range(image.height // 3)]
    assert max(rows) > image.width * 0.6  # the rule: one red line across most of the page
    assert sum(1 for count in rows if 0 < count < image.width * 0.6) >= 5  # the masthead's red lettering
