"""An ECG tracing drawn as SVG on ECG paper, at the standard scale: 25 mm/s and 10 mm/mV.

The SVG's user unit is the millimetre (the width and height are given in mm), so printed at 100 % it is
true to scale. A tracing with the twelve standard leads is laid out as a 12-lead report: three rows of four
columns (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6), each column a quarter of the first ten seconds, then
lead II's rhythm strip over all ten; any other set of leads gets a row per lead. Each row begins with the
1 mV calibration pulse. A trace keeps each 0.2 mm column's lowest and highest sample, so no spike is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from cityhealth.telemed.ecg_tracing import STANDARD_LEADS

MM_PER_S = 25.0
MM_PER_MV = 10.0
PAPER_S = 10.0  # the first ten seconds are drawn
ROW_MM = 30.0
LEFT_MM = 12.0  # the calibration pulse's margin
TOP_MM = 10.0  # the header line
RIGHT_MM = 5.0
_BUCKET_MM = 0.2
_LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
_RHYTHM = "II"


def render_svg(leads: Sequence[str], sampling_rate_hz: float, samples: Sequence[Sequence[int]]) -> str:
    """The SVG document of a tracing (samples in microvolts, one sequence per lead)."""
    by_name = dict(zip(leads, samples, strict=True))
    count = min(len(lead) for lead in samples)
    shown_s = min(PAPER_S, count / sampling_rate_hz)
    width = LEFT_MM + PAPER_S * MM_PER_S + RIGHT_MM
    segments: list[tuple[str, Sequence[int], int, int, float, int]] = []  # name, samples, from, to, x, row
    if set(STANDARD_LEADS) <= set(leads):
        quarter = shown_s / 4
        for row, names in enumerate(_LAYOUT):
            for column, name in enumerate(names):
                start, end = (
                    round(column * quarter * sampling_rate_hz),
                    round((column + 1) * quarter * sampling_rate_hz),
                )
                segments.append((name, by_name[name], start, end, LEFT_MM + column * quarter * MM_PER_S, row))
        segments.append((_RHYTHM, by_name[_RHYTHM], 0, round(shown_s * sampling_rate_hz), LEFT_MM, len(_LAYOUT)))
        rows = len(_LAYOUT) + 1
    else:
        end = round(shown_s * sampling_rate_hz)
        segments = [(name, by_name[name], 0, end, LEFT_MM, row) for row, name in enumerate(leads)]
        rows = len(leads)
    height = TOP_MM + rows * ROW_MM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}mm" height="{_n(height)}mm" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" role="img" aria-label="ECG tracing">',
        _grid_defs(),
        f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="url(#ecg-grid)"/>',
        f'<text x="{_n(LEFT_MM)}" y="6" font-size="3.5" font-family="sans-serif" fill="#333">'
        f"{_n(MM_PER_S)} mm/s · {_n(MM_PER_MV)} mm/mV · {_n(sampling_rate_hz)} Hz · "
        f"{_n(count / sampling_rate_hz)} s</text>",
    ]
    for row in range(rows):
        parts.append(_calibration(_baseline(row)))
    for name, values, start, end, x, row in segments:
        parts.append(_trace(name, values[start:end], sampling_rate_hz, x, _baseline(row)))
    parts.append("</svg>")
    return "\n".join(parts)


def _baseline(row: int) -> float:
    return TOP_MM + row * ROW_MM + ROW_MM / 2


def _grid_defs() -> str:
    return (
        "<defs>"
        '<pattern id="ecg-minor" width="1" height="1" patternUnits="userSpaceOnUse">'
        '<path d="M 1 0 L 0 0 0 1" fill="none" stroke="#f4c2c2" stroke-width="0.05"/></pattern>'
        '<pattern id="ecg-grid" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<rect width="5" height="5" fill="#fff8f8"/><rect width="5" height="5" fill="url(#ecg-minor)"/>'
        '<path d="M 5 0 L 0 0 0 5" fill="none" stroke="#e08080" stroke-width="0.15"/></pattern>'
        "</defs>"
    )


def _calibration(baseline: float) -> str:
    """The 1 mV, 0.2 s pulse: 10 mm high and 5 mm wide at this scale."""
    x0, top = 2.0, baseline - MM_PER_MV
    return (
        f'<polyline class="calibration" fill="none" stroke="#000" stroke-width="0.25" points="'
        f"{_n(x0)},{_n(baseline)} {_n(x0 + 1)},{_n(baseline)} {_n(x0 + 1)},{_n(top)} {_n(x0 + 6)},{_n(top)} "
        f'{_n(x0 + 6)},{_n(baseline)} {_n(x0 + 7)},{_n(baseline)}"/>'
    )


def _trace(name: str, values: Sequence[int], rate: float, x0: float, baseline: float) -> str:
    mm_per_sample = MM_PER_S / rate
    per_bucket = max(1, int(_BUCKET_MM / mm_per_sample))
    limit = ROW_MM / 2 + 5  # a wild sample is drawn at the edge of its row and the next, not over the page
    points: list[str] = []
    for first in range(0, len(values), per_bucket):
        bucket = values[first : first + per_bucket]
        low, high = bucket.index(min(bucket)), bucket.index(max(bucket))
        for offset in sorted({low, high}):
            y = max(-limit, min(limit, bucket[offset] / 1000 * MM_PER_MV))
            points.append(f"{_n(x0 + (first + offset) * mm_per_sample)},{_n(baseline - y)}")
    label = escape(name)
    return (
        f'<text x="{_n(x0 + 1)}" y="{_n(baseline - ROW_MM / 2 + 4)}" font-size="3" font-family="sans-serif">'
        f'{label}</text>\n<polyline class="lead" data-lead="{label}" fill="none" stroke="#000" '
        f'stroke-width="0.2" stroke-linejoin="round" points="{" ".join(points)}"/>'
    )


def _n(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
