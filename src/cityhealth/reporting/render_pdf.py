"""The PDF edition: the DOCX edition printed to PDF by LibreOffice headless, so both share one layout.

LibreOffice embeds (subsets of) the fonts it lays the text out with. The DOCX names Word's Chinese fonts
(黑体, 仿宋, 方正小标宋简体) which a Debian machine does not have; a fontconfig file of our own, used for this
conversion only, maps each of them to the Noto CJK font of its kind and Times New Roman to Liberation Serif
(same metrics), so the PDF's fonts are chosen, not left to whatever fontconfig finds first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from cityhealth.errors import DomainError
from cityhealth.reporting.docx_print import FONTS, LATIN_FONT

CONVERT_TIMEOUT_S = 120
OFFICE_PROGRAMS = ("soffice", "libreoffice")
# Charts and QR codes go in as drawn (lossless, not resampled): the default re-encodes them as JPEG and
# resamples them to 300 dpi, which blurs the bars' edges and the codes' modules. (JSON options: LibreOffice 7.4+.)
PDF_FILTER = ('pdf:writer_pdf_Export:{"ReduceImageResolution":{"type":"boolean","value":"false"},'
              '"UseLosslessCompression":{"type":"boolean","value":"true"}}')


class PdfUnavailable(DomainError):
    """The machine cannot print the PDF edition (no LibreOffice, or it failed); the other editions still work."""

    status = 503
    code = "edition_unavailable"
    title = "Edition unavailable"


def office_program() -> str | None:
    """The LibreOffice executable on PATH, or None."""
    return next((path for name in OFFICE_PROGRAMS if (path := shutil.which(name))), None)


def fontconfig_file() -> str:
    """fonts.conf: the system's configuration plus an alias per Word font name to its Debian stand-in."""
    aliases = [(LATIN_FONT, "Liberation Serif")]
    for font in FONTS:
        aliases += [(font.name, font.debian_family), (font.alt_name, font.debian_family)]
    rules = "".join(
        f'<match target="pattern"><test name="family"><string>{escape(name)}</string></test>'
        f'<edit name="family" mode="assign" binding="strong"><string>{escape(family)}</string></edit></match>'
        for name, family in aliases)
    return ('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
            '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>' + rules + "</fontconfig>\n")


def docx_to_pdf(docx: bytes) -> bytes:
    """Print `docx` to PDF with LibreOffice headless, in a private profile and directory (runs may overlap)."""
    program = office_program()
    if program is None:
        raise PdfUnavailable(
            "the PDF edition needs LibreOffice: apt-get install libreoffice-writer-nogui fonts-noto-cjk "
            "fonts-liberation2 (scripts/office-deps)", field="format", value="pdf", rule="edition.pdf.office")
    with tempfile.TemporaryDirectory(prefix="cityhealth-pdf-") as work:
        directory = Path(work)
        source = directory / "bulletin.docx"
        source.write_bytes(docx)
        (directory / "fonts.conf").write_text(fontconfig_file(), encoding="utf-8")
        environment = {**os.environ, "FONTCONFIG_FILE": str(directory / "fonts.conf"), "HOME": str(directory)}
        completed = subprocess.run(  # noqa: S603 - fixed program and arguments, no shell
            [program, f"-env:UserInstallation=file://{directory / 'profile'}", "--headless", "--norestore",
             "--convert-to", PDF_FILTER, "--outdir", str(directory), str(source)],
            capture_output=True, timeout=CONVERT_TIMEOUT_S, env=environment, check=False)
        target = directory / "bulletin.pdf"
        if completed.returncode != 0 or not target.exists():
            detail = completed.stderr.decode("utf-8", errors="replace").strip()[-500:]
            raise PdfUnavailable(f"LibreOffice could not print the bulletin to PDF: {detail or 'no output'}",
                                 field="format", value="pdf", rule="edition.pdf.convert")
        return target.read_bytes()
