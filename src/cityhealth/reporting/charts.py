"""Bar charts for the HTML (inline SVG) and DOCX (PNG) editions: one layout, drawn twice.

`_draw` places every bar, label, tick and legend entry in pixels; `_svg` writes that drawing as SVG text
and `_png` paints it with Pillow. SVG text is real text, drawn by the reader's browser with the page's
fonts, so the HTML charts always carry the names. The PNG needs a Chinese-capable font on the machine
that renders it; without one, no Chinese goes into the image: bars are labelled with the row's rank in
its table and the DOCX prints a legend (rank → name, colour → series) as text beside the chart.
See docs/decisions/bulletin-charts.md.
"""

from __future__ import annotations

import io
import math
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from markupsafe import escape

from cityhealth.reporting.tables import Chart

# Font files able to draw Chinese, tried in order (Linux packages, then macOS and Windows system fonts).
CJK_FONT_FILES = (
    "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf", "NotoSansSC-Regular.ttf",
    "NotoSerifCJK-Regular.ttc", "SourceHanSansSC-Regular.otf", "SourceHanSans-Regular.ttc", "wqy-zenhei.ttc",
    "wqy-microhei.ttc", "DroidSansFallbackFull.ttf", "uming.ttc", "ukai.ttc", "PingFang.ttc",
    "Hiragino Sans GB.ttc", "STHeiti Light.ttc", "msyh.ttc", "simhei.ttf", "simsun.ttc",
)
LATIN_FONT_FILES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf", "Helvetica.ttc")
SERIES_COLOURS = ("#1f5fa8", "#e07b24", "#3a9a4a", "#b8403a", "#7d5ba6")
WIDTH_PX = 720
FONT_PX = 12
VALUE_FONT_PX = 10
BAR_PX, ROW_PX = 14, 20
PRINT_WIDTH_CM = 16.0  # how wide the DOCX and PDF editions print a chart
PNG_SCALE = 2.75  # 1,980 px across 16 cm of page: 314 dpi on paper (print wants 300)
PNG_DPI = round(WIDTH_PX * PNG_SCALE / (PRINT_WIDTH_CM / 2.54))
# The axis is broken when its largest bars dwarf the rest: one of the first three is this many times the next.
BREAK_RATIO = 3.0
BREAK_GAP_PX = 6  # the white cut across a broken bar, between its two slanted strokes

Anchor = Literal["start", "middle", "end"]


@dataclass(frozen=True)
class RenderedChart:
    image: bytes  # SVG text (UTF-8) or PNG
    ranks_only: bool  # categories are labelled 1, 2, 3 … and need the legend printed beside the image
    legend: tuple[tuple[int, str], ...]  # (rank, name), for the text legend
    series: tuple[tuple[str, str], ...]  # (series name, colour)


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str


@dataclass(frozen=True)
class _Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # the baseline
    text: str
    anchor: Anchor = "start"
    size: int = FONT_PX
    fill: str = "#222"


@dataclass(frozen=True)
class _Drawing:
    width: int
    height: int
    title: str
    shapes: tuple[_Rect | _Line | _Text, ...]


def _font_directories() -> list[Path]:
    home = Path.home()
    directories = [Path(part) / "fonts" for part in os.environ.get("XDG_DATA_DIRS", "/usr/share").split(":") if part]
    directories += [Path("/usr/local/share/fonts"), home / ".local/share/fonts", home / ".fonts"]
    if sys.platform == "darwin":
        directories += [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts"]
    if sys.platform == "win32":
        directories.append(Path(os.environ.get("WINDIR", "C:\\Windows")) / "Fonts")
    return directories


@cache
def _installed_fonts() -> dict[str, Path]:
    """Font file name → path, over the system's font directories (walked once per process)."""
    found: dict[str, Path] = {}
    for directory in _font_directories():
        for root, _, files in os.walk(directory):
            for name in files:
                found.setdefault(name, Path(root) / name)
    return found


def cjk_font() -> Path | None:
    """An installed font file able to draw Chinese, or None."""
    installed = _installed_fonts()
    return next((installed[name] for name in CJK_FONT_FILES if name in installed), None)


def _latin_font() -> Path | None:
    installed = _installed_fonts()
    return next((installed[name] for name in LATIN_FONT_FILES if name in installed), None)


def text_width(text: str, font_px: float = FONT_PX) -> float:
    """Rough advance of `text`: a CJK character is one em, anything else a little over half of one."""
    return sum(font_px if ord(char) > 0x2E80 else font_px * 0.6 for char in text)


def _ticks(maximum: int) -> list[int]:
    """0 and round steps (1, 2 or 5 × 10^n), about five of them, up to at least `maximum`."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, int(next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)))
    return [step * i for i in range(math.ceil(maximum / step) + 1)]


def axis_limit(totals: list[int]) -> int:
    """The value the axis runs to: the largest bar, or, when the first one to three bars are more than
    BREAK_RATIO times the next, that next bar (the bars beyond it are drawn broken, their value printed).

    A 240,298 beside an 879 would leave the 879 a two-pixel sliver; a log scale would make stacked channels
    unreadable, and the tables print every figure exactly anyway.
    """
    ranked = sorted(totals, reverse=True)
    for index in range(min(3, len(ranked) - 1)):
        if ranked[index + 1] > 0 and ranked[index] > BREAK_RATIO * ranked[index + 1]:
            return ranked[index + 1]
    return ranked[0] if ranked else 0


def _draw(chart: Chart, labels: list[str], series: tuple[tuple[str, str], ...], with_legend: bool,
          with_unit: bool = True) -> _Drawing:
    """Horizontal bars, one row per category in table order, the series stacked left to right."""
    label_px = min(max((text_width(label) for label in labels), default=0) + 12, 280)
    totals = [sum(values[row] for _, values in chart.series) for row in range(len(labels))]
    ticks = _ticks(axis_limit(totals))
    plot_left = label_px
    plot_right = WIDTH_PX - 12 - text_width(f"{max(totals, default=0):,}", VALUE_FONT_PX)
    broken = any(total > ticks[-1] for total in totals)
    axis_right = plot_right - (3 * BREAK_GAP_PX if broken else 0)  # room for the broken bars' cut ends
    scale = (axis_right - plot_left) / ticks[-1]
    top = 28 if with_legend else 8
    bottom = top + ROW_PX * max(len(labels), 1)
    height = bottom + 40  # the ticks' figures, then the axis' unit
    shapes: list[_Rect | _Line | _Text] = []
    if with_legend:
        x = float(plot_left)
        for name, colour in series:
            shapes += [_Rect(x, 8, 12, 12, colour), _Text(x + 16, 18, name)]
            x += 16 + text_width(name) + 18
    for tick in ticks:
        x = plot_left + tick * scale
        shapes += [_Line(x, top, x, bottom, "#dddddd"), _Text(x, bottom + 16, f"{tick:,}", "middle", fill="#555")]
    if with_unit:  # under the axis, at its end: 单位：次 (the value labels are in the same unit)
        shapes.append(_Text(axis_right, height - 4, f"单位：{chart.unit}", "end", fill="#555"))
    for row, label in enumerate(labels):
        y = top + row * ROW_PX + (ROW_PX - BAR_PX) / 2
        shapes.append(_Text(plot_left - 6, y + BAR_PX - 3, label, "end"))
        left = float(plot_left)
        for (_, values), (_, colour) in zip(chart.series, series, strict=True):
            width = min(values[row] * scale, plot_right - left)  # a broken bar ends at the plot's edge
            if width > 0:
                shapes.append(_Rect(left, y, width, BAR_PX, colour))
                left += width
        if totals[row] > ticks[-1]:
            shapes += _break_mark(axis_right + BREAK_GAP_PX, y)
        shapes.append(_Text(left + 4, y + BAR_PX - 3, f"{totals[row]:,}", size=VALUE_FONT_PX))
    shapes.append(_Line(plot_left, top, plot_left, bottom, "#555555"))
    return _Drawing(WIDTH_PX, height, chart.title, tuple(shapes))


def _break_mark(x: float, y: float) -> list[_Rect | _Line | _Text]:
    """A cut across a bar at `x`: a white gap between two slanted strokes, the mark of a broken axis."""
    slant = 3.0
    return [
        _Rect(x, y - 2, BREAK_GAP_PX, BAR_PX + 4, "#ffffff"),
        _Line(x - slant / 2, y + BAR_PX + 2, x + slant / 2, y - 2, "#555555"),
        _Line(x + BREAK_GAP_PX - slant / 2, y + BAR_PX + 2, x + BREAK_GAP_PX + slant / 2, y - 2, "#555555"),
    ]


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _svg(drawing: _Drawing, key: str) -> bytes:
    title_id = "chart-" + "".join(char if char.isalnum() else "-" for char in key)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{drawing.width}" height="{drawing.height}"'
        f' viewBox="0 0 {drawing.width} {drawing.height}" role="img" aria-labelledby="{title_id}"'
        f' font-family="sans-serif" font-size="{FONT_PX}">',
        f'<title id="{title_id}">{escape(drawing.title)}</title>',
    ]
    for shape in drawing.shapes:
        if isinstance(shape, _Rect):
            parts.append(f'<rect x="{_number(shape.x)}" y="{_number(shape.y)}" width="{_number(shape.width)}"'
                         f' height="{_number(shape.height)}" fill="{shape.fill}"/>')
        elif isinstance(shape, _Line):
            parts.append(f'<line x1="{_number(shape.x1)}" y1="{_number(shape.y1)}" x2="{_number(shape.x2)}"'
                         f' y2="{_number(shape.y2)}" stroke="{shape.stroke}"/>')
        else:
            size = "" if shape.size == FONT_PX else f' font-size="{shape.size}"'
            parts.append(f'<text x="{_number(shape.x)}" y="{_number(shape.y)}" text-anchor="{shape.anchor}"'
                         f' fill="{shape.fill}"{size}>{escape(shape.text)}</text>')
    parts.append("</svg>")
    return "".join(parts).encode("utf-8")


_PIL_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}  # left/middle/right, on the baseline


def _png(drawing: _Drawing, font_file: Path | None) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        if size not in fonts:
            pixels = round(size * PNG_SCALE)
            fonts[size] = ImageFont.truetype(str(font_file), pixels) if font_file else ImageFont.load_default(pixels)
        return fonts[size]

    image = Image.new("RGB", (round(drawing.width * PNG_SCALE), round(drawing.height * PNG_SCALE)), "white")
    canvas = ImageDraw.Draw(image)
    s = PNG_SCALE
    for shape in drawing.shapes:
        if isinstance(shape, _Rect):
            x0, y0 = shape.x * s, shape.y * s  # a sliver of a bar still gets its one pixel
            canvas.rectangle((x0, y0, max(x0, x0 + shape.width * s - 1), max(y0, y0 + shape.height * s - 1)),
                             fill=shape.fill)
        elif isinstance(shape, _Line):
            canvas.line((shape.x1 * s, shape.y1 * s, shape.x2 * s, shape.y2 * s), fill=shape.stroke, width=round(s))
        else:
            canvas.text((shape.x * s, shape.y * s), shape.text, fill=shape.fill, font=font(shape.size),
                        anchor=_PIL_ANCHORS[shape.anchor])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, dpi=(PNG_DPI, PNG_DPI))
    return buffer.getvalue()


def render(chart: Chart, image_format: Literal["svg", "png"]) -> RenderedChart:
    """Draw `chart` as "svg" (names always: the browser draws the text) or "png" (names if a CJK font is here)."""
    series = tuple((name, SERIES_COLOURS[i % len(SERIES_COLOURS)]) for i, (name, _) in enumerate(chart.series))
    font_file = cjk_font() if image_format == "png" else None
    ranks_only = image_format == "png" and font_file is None
    labels = [str(rank) for rank in range(1, len(chart.categories) + 1)] if ranks_only else list(chart.categories)
    # Without a CJK font the unit cannot be painted either: the DOCX prints it in the caption instead.
    drawing = _draw(chart, labels, series, with_legend=len(series) > 1 and not ranks_only, with_unit=not ranks_only)
    image = _svg(drawing, chart.key) if image_format == "svg" else _png(drawing, font_file or _latin_font())
    return RenderedChart(
        image=image, ranks_only=ranks_only, legend=tuple(enumerate(chart.categories, start=1)), series=series,
    )
