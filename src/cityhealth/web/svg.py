"""Bar charts as inline SVG, drawn on the server without any library: the pages need no script and no CDN.

Text in the SVG is real text (selectable, searchable, read by screen readers); the browser draws it with
the page's fonts. A value of None is a rate that is not measured: it is drawn as "/" with no bar, never
as a zero-length bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

PALETTE = ("#1f5fa8", "#e07b24", "#3a9a4a", "#b8403a", "#7d5ba6")
WIDTH = 720
FONT_PX = 12
_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str


def series(named: Sequence[tuple[str, Sequence[float | None]]]) -> list[Series]:
    """Series coloured from the palette in order."""
    return [Series(name, values, PALETTE[i % len(PALETTE)]) for i, (name, values) in enumerate(named)]


def text_width(text: str, font_px: float = FONT_PX) -> float:
    """Rough advance of `text`: a CJK character is one em, anything else a little over half of one."""
    return sum(font_px if ord(char) > 0x2E80 else font_px * 0.6 for char in text)


def nice_ticks(maximum: float, *, count_wanted: int = 5) -> list[float]:
    """0 and round steps (1, 2 or 5 × 10^n) up to at least `maximum`."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count_wanted
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    top = math.ceil(maximum / step) * step
    return [step * i for i in range(round(top / step) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _attrs(**values: object) -> str:
    return " ".join(f'{name.rstrip("_").replace("_", "-")}="{escape(str(value))}"' for name, value in values.items())


def _frame(width: float, height: float, title: str, body: list[str]) -> Markup:
    title_id = f"chart-title-{next(_ids)}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" {_attrs(width=round(width), height=round(height))}'
            f' viewBox="0 0 {round(width)} {round(height)}" role="img" aria-labelledby="{title_id}"'
            f' font-size="{FONT_PX}" font-family="sans-serif">'
            f'<title id="{title_id}">{escape(title)}</title>')
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text and attribute above is escaped


def _legend(items: Sequence[Series], x: float, y: float) -> list[str]:
    parts: list[str] = []
    for item in items:
        parts.append(f'<rect {_attrs(x=x, y=y - 10, width=12, height=12, fill=item.colour)}/>')
        parts.append(f'<text {_attrs(x=x + 16, y=y)}>{escape(item.name)}</text>')
        x += 16 + text_width(item.name) + 18
    return parts


def horizontal_bars(categories: Sequence[str], bars: Sequence[Series], *, title: str,
                    maximum: float | None = None, value_text: Callable[[float], str] = _number) -> Markup:
    """One band per category, one bar per series inside it (grouped), largest scale `maximum` or the data's."""
    bar_px, gap_px, legend_px, axis_px = 12, 8, 24 if len(bars) > 1 else 4, 22
    label_px = min(max((text_width(name) for name in categories), default=0) + 10, 260)
    band_px = bar_px * len(bars) + gap_px
    plot_left, plot_right = label_px, WIDTH - 64
    measured = [value for item in bars for value in item.values if value is not None]
    ticks = nice_ticks(maximum if maximum is not None else max(measured, default=0))
    scale = (plot_right - plot_left) / ticks[-1]
    top = legend_px + 6
    height = top + band_px * max(len(categories), 1) + axis_px
    body = _legend(bars, plot_left, 14) if len(bars) > 1 else []
    for tick in ticks:
        x = plot_left + tick * scale
        body.append(f'<line {_attrs(x1=x, x2=x, y1=top, y2=height - axis_px, stroke="#ddd")}/>')
        body.append(f'<text {_attrs(x=x, y=height - 6, text_anchor="middle", fill="#555")}>'
                    f'{escape(value_text(tick))}</text>')
    for row, name in enumerate(categories):
        band_top = top + row * band_px + gap_px / 2
        body.append(f'<text {_attrs(x=plot_left - 6, y=band_top + bar_px * len(bars) / 2 + 4, text_anchor="end")}>'
                    f'{escape(name)}</text>')
        for index, item in enumerate(bars):
            value = item.values[row]
            y = band_top + index * bar_px
            if value is None:
                body.append(f'<text {_attrs(x=plot_left + 4, y=y + bar_px - 2, fill="#777")}>/</text>')
                continue
            length = max(value * scale, 0)
            rect = _attrs(x=plot_left, y=y + 1, width=round(length, 1), height=bar_px - 2, fill=item.colour)
            tip = escape(f"{name} {item.name}: {value_text(value)}")
            body.append(f"<rect {rect}><title>{tip}</title></rect>")
            body.append(f'<text {_attrs(x=plot_left + length + 4, y=y + bar_px - 2, font_size=10)}>'
                        f'{escape(value_text(value))}</text>')
    body.append(f'<line {_attrs(x1=plot_left, x2=plot_left, y1=top, y2=height - axis_px, stroke="#555")}/>')
    return _frame(WIDTH, height, title, body)


def stacked_columns(categories: Sequence[str], stacks: Sequence[Series], *, title: str) -> Markup:
    """One column per category (days), the series stacked bottom-up; every value is a count."""
    height, legend_px, axis_px, left_px = 260, 24, 22, 56
    plot_top, plot_bottom, plot_right = legend_px + 8, height - axis_px, WIDTH - 10
    totals = [sum(item.values[i] or 0 for item in stacks) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    scale = (plot_bottom - plot_top) / ticks[-1]
    slot = (plot_right - left_px) / max(len(categories), 1)
    body = _legend(stacks, left_px, 14)
    for tick in ticks:
        y = plot_bottom - tick * scale
        body.append(f'<line {_attrs(x1=left_px, x2=plot_right, y1=y, y2=y, stroke="#ddd")}/>')
        body.append(f'<text {_attrs(x=left_px - 6, y=y + 4, text_anchor="end", fill="#555")}>'
                    f'{escape(_number(tick))}</text>')
    label_every = 1 if slot >= 18 else 2
    for column, name in enumerate(categories):
        x = left_px + column * slot + slot * 0.15
        base = float(plot_bottom)
        for item in stacks:
            value = item.values[column] or 0
            if value <= 0:
                continue
            length = value * scale
            base -= length
            rect = _attrs(x=round(x, 1), y=round(base, 1), width=round(slot * 0.7, 1), height=round(length, 1),
                          fill=item.colour)
            tip = escape(f"{name} {item.name}: {_number(value)}")
            body.append(f"<rect {rect}><title>{tip}</title></rect>")
        if column % label_every == 0:
            label = _attrs(x=round(x + slot * 0.35, 1), y=height - 6, text_anchor="middle", fill="#555", font_size=10)
            body.append(f"<text {label}>{escape(name)}</text>")
    body.append(f'<line {_attrs(x1=left_px, x2=plot_right, y1=plot_bottom, y2=plot_bottom, stroke="#555")}/>')
    return _frame(WIDTH, height, title, body)
