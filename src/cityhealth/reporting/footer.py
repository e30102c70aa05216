"""The footer block of an issue: the publisher's lines and two QR codes, from the publication profile.

The QR codes are drawn by segno from the configured URLs alone: nothing is fetched, so a URL that cannot be
reached still prints its code (the reader's phone opens it, not the platform).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from cityhealth.reporting.news import News
from cityhealth.reporting.schemas import PublicationProfileIn

QR_DPI = 300
QR_MODULE_PX = 12  # 12 px a module at 300 dpi: ~1 mm, scanned easily from paper


@dataclass(frozen=True)
class QrCode:
    caption: str
    url: str
    png: bytes  # for the DOCX and PDF editions
    svg: str  # for the HTML edition, text a browser draws at any size


@dataclass(frozen=True)
class FooterBlock:
    lines: tuple[str, ...]
    codes: tuple[QrCode, ...] = ()


def qr_code(caption: str, url: str) -> QrCode:
    """The URL as a QR code (error correction M), as PNG at 300 dpi and as SVG; the URL is not opened."""
    import segno  # here: only the editions with a footer need it

    code = segno.make_qr(url, error="m")
    png = io.BytesIO()
    code.save(png, kind="png", scale=QR_MODULE_PX, border=2, dpi=QR_DPI)
    svg = io.BytesIO()
    code.save(svg, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title=caption)
    return QrCode(caption=caption, url=url, png=png.getvalue(), svg=svg.getvalue().decode("utf-8"))


def profile_lines(profile: PublicationProfileIn) -> tuple[str, ...]:
    gap = "　　"  # two ideographic spaces between the fields of a line
    return (
        f"编印：{profile.publisher}{gap}地址：{profile.address}{gap}邮编：{profile.postcode}",
        f"电话：{profile.phone}{gap}传真：{profile.fax}",
        f"电子邮箱：{profile.email}{gap}网址：{profile.website}",
        f"责任编辑：{profile.responsible_editor}{gap}本期共印 {profile.print_run} 份",
    )


def footer_block(profile: PublicationProfileIn | None, news: News, publisher: str) -> FooterBlock:
    """The profile's lines and codes; without a profile, the news file's 页脚 lines, or just the publisher."""
    if profile is None:
        return FooterBlock(lines=news.footer or (publisher,))
    return FooterBlock(lines=profile_lines(profile),
                       codes=tuple(qr_code(code.caption, code.url) for code in profile.qr_codes))
