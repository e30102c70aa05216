"""Bar charts for the HTML (inline SVG) and DOCX (PNG) editions, drawn with matplotlib.

Chinese labels need a CJK-capable font on the machine that renders (the SVG stores glyphs as paths, so
readers need none). Without one, no Chinese text goes into the image: bars are labelled with the
row's rank in its table and the edition prints a legend (rank → name, colour → series) as text beside
the chart. See docs/decisions/bulletin-charts.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

from cityhealth.reporting.tables import Chart

# Families tried in order; the first one installed that really has the glyphs is used.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Noto Serif CJK SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN",
    "SimHei", "SimSun", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti",
)
SERIES_COLOURS = ("#1f5fa8", "#e07b24", "#3a9a4a", "#b8403a", "#7d5ba6")
_PROBE = "南京医院预约"
_WIDTH_IN = 7.2


@dataclass(frozen=True)
class RenderedChart:
    image: bytes  # SVG text (UTF-8) or PNG
    ranks_only: bool  # categories are labelled 1, 2, 3 … and need the legend printed beside the image
    legend: tuple[tuple[int, str], ...]  # (rank, name), for the text legend
    series: tuple[tuple[str, str], ...]  # (series name, colour)


def _height_in(bars: int) -> float:
    return 0.6 + 0.28 * max(bars, 1)


def _label_width_in(labels: list[str]) -> float:
    # 9 pt type: a Chinese character is about 0.125 in wide (a little spare), a digit about half that.
    longest = max((sum(0.135 if ord(char) > 0x2E80 else 0.07 for char in label) for label in labels), default=0.1)
    return longest + 0.2


@cache
def cjk_font() -> str | None:
    """The family name of an installed font able to draw Chinese, or None."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    by_name: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        by_name.setdefault(entry.name, entry.fname)
    for family in CJK_FAMILIES:
        path = by_name.get(family)
        if path is None:
            continue
        try:
            font = FT2Font(path)
        except (OSError, RuntimeError):  # unreadable font file: try the next family
            continue
        if all(font.get_char_index(ord(char)) for char in _PROBE):
            return family
    return None


def render(chart: Chart, image_format: str) -> RenderedChart:
    """Draw `chart` as "svg" or "png"."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede any pyplot import anywhere in the process
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    family = cjk_font()
    ranks_only = family is None
    labels = [str(rank) for rank in range(1, len(chart.categories) + 1)] if ranks_only else list(chart.categories)
    series = tuple(
        (name, SERIES_COLOURS[i % len(SERIES_COLOURS)]) for i, (name, _) in enumerate(chart.series)
    )
    with matplotlib.rc_context({
        "svg.fonttype": "path",  # glyphs as outlines: the page needs no font
        "svg.hashsalt": chart.key,  # stable element ids, so equal data gives equal output
        "font.size": 9,
        "font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"],
    }):
        figure = Figure(figsize=(_WIDTH_IN, _height_in(len(labels))))
        # Fixed margins, not a layout engine: constrained layout draws every figure twice.
        height = figure.get_figheight()
        figure.subplots_adjust(
            left=_label_width_in(labels) / _WIDTH_IN, right=0.97, top=1 - 0.15 / height, bottom=0.45 / height
        )
        axes = figure.subplots()
        positions = range(len(labels))
        left = [0] * len(labels)
        for (name, values), (_, colour) in zip(chart.series, series, strict=True):
            axes.barh(positions, values, left=left, color=colour, label=name, height=0.7)
            left = [base + value for base, value in zip(left, values, strict=True)]
        for position, total in zip(positions, left, strict=True):
            axes.text(total, position, f" {total:,}", va="center", fontsize=7)
        axes.set_yticks(list(positions), labels)
        axes.invert_yaxis()  # rank 1 at the top, as in the table
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        axes.margins(x=0.12)
        axes.spines[["top", "right"]].set_visible(False)
        if len(chart.series) > 1 and not ranks_only:
            axes.legend(loc="lower right", frameon=False)
        buffer = io.BytesIO()
        metadata = {"Date": None} if image_format == "svg" else {"Software": None}
        # 120 dpi: a 7.2 in chart printed 16 cm wide in the DOCX is ~137 dpi on paper; more only costs time.
        figure.savefig(buffer, format=image_format, dpi=120, metadata=metadata)
    return RenderedChart(
        image=buffer.getvalue(),
        ranks_only=ranks_only,
        legend=tuple(enumerate(chart.categories, start=1)),
        series=series,
    )
