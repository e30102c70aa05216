"""Without LibreOffice the PDF edition is refused with what to install; the other editions are unaffected."""

from __future__ import annotations

import pytest

from cityhealth.reporting import render_pdf
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.render_pdf import PdfUnavailable
from cityhealth.reporting.service import Edition, render


def test_the_pdf_edition_without_libreoffice_says_what_to_install(
    nanjing: BulletinData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_pdf.shutil, "which", lambda name: None)
    with pytest.raises(PdfUnavailable) as raised:
        render(nanjing, Edition.PDF)
    assert raised.value.status == 503
    assert raised.value.rule == "edition.pdf.office"
    assert "libreoffice-writer-nogui" in raised.value.message
    assert render(nanjing, Edition.DOCX).startswith(b"PK")


def test_the_fontconfig_file_maps_every_word_font_to_its_debian_stand_in() -> None:
    text = render_pdf.fontconfig_file()
    for name, family in (("黑体", "Noto Sans CJK SC"), ("SimHei", "Noto Sans CJK SC"), ("仿宋", "Noto Serif CJK SC"),
                         ("FangSong", "Noto Serif CJK SC"), ("Times New Roman", "Liberation Serif")):
        assert (f"<test name=\"family\"><string>{name}</string></test><edit name=\"family\" mode=\"assign\" "
                f"binding=\"strong\"><string>{family}</string></edit>") in text
