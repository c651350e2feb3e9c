"""What recorders kept, as a picture: `timeline_svg(events)`, an SVG string. Pure.

Recorded events `(time, beat, value)` over beats, bar lines every `meter`
beats, one colour per recorder; numbers are plotted by value, anything else
on the middle line. Drawn in `currentColor` like the other pictures (wrap it
in `Picture` to follow the notebook's theme).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from vtkernel.pictures.svg import FONT, PALETTE, esc, short

if TYPE_CHECKING:
    from vtkernel.engine.timing.outputs import (
        Recorded,  # (wall-clock time, beat, value), as `Runtime.recorded` gives them
    )



def timeline_svg(
    events: Iterable[Recorded] | Mapping[str, Iterable[Recorded]],
    *,
    width: int = 640,
    height: int = 200,
    meter: int = 4,
) -> str:
    """An SVG plot of recorded events `(time, beat, value)` over beats (a mapping gives one colour per name)."""
    series = dict(events) if isinstance(events, Mapping) else {"": events}
    data = {name: [(float(b), v) for _, b, v in evs] for name, evs in series.items()}
    points = [p for evs in data.values() for p in evs]
    left, right, top, bottom = 44, 12, 12, 28
    legend = any(data) and len(data) > 1
    if legend:
        top += 16
    plot_w, plot_h = width - left - right, height - top - bottom
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'{FONT} font-size="11" role="img" aria-label="vtkernel timeline">'
    )
    if not points:
        return (
            head + f'<text x="{left}" y="{top + 16}" fill="currentColor" opacity="0.6">no events recorded</text></svg>'
        )
    numbers = [
        float(v) for _, v in points if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    b0 = math.floor(min(b for b, _ in points))
    b1 = max(math.ceil(max(b for b, _ in points) + 1e-9), b0 + 1)
    if max(b for b, _ in points) == b1:
        b1 += 1
    lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def sx(beat: float) -> float:
        return left + (beat - b0) / (b1 - b0) * plot_w

    def sy(value: Any) -> float:
        v = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (lo + hi) / 2
        return top + (hi - v) / (hi - lo) * plot_h

    parts = [head]
    step = max(1, math.ceil((b1 - b0) / 32))  # at most ~32 beat lines
    for line_beat in range(b0, b1 + 1, step):
        bar = line_beat % meter == 0
        parts.append(
            f'<line x1="{sx(line_beat):.1f}" y1="{top}" x2="{sx(line_beat):.1f}" y2="{top + plot_h}" stroke="currentColor" '
            f'stroke-opacity="{0.35 if bar else 0.12}"/>'
        )
        if bar or step > 1:
            parts.append(
                f'<text x="{sx(line_beat):.1f}" y="{height - 10}" text-anchor="middle" fill="currentColor" opacity="0.7">{line_beat}</text>'
            )
    for value in (lo + pad, hi - pad):
        parts.append(
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" fill="currentColor" opacity="0.7">{short(round(value, 3), 8)}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" stroke-opacity="0.4"/>'
    )
    parts.append(
        f'<text x="{left - 6}" y="{height - 10}" text-anchor="end" fill="currentColor" opacity="0.5">beat</text>'
    )
    for i, (name, evs) in enumerate(data.items()):
        color = PALETTE[i % len(PALETTE)]
        if legend:
            lx = left + i * 110
            parts.append(
                f'<circle cx="{lx + 5}" cy="{top - 11}" r="4" fill="{color}"/>'
                f'<text x="{lx + 13}" y="{top - 7}" fill="currentColor">{esc(name)}</text>'
            )
        for beat, value in evs:
            px, py = sx(beat), sy(value)
            parts.append(
                f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{py:.1f}" stroke="{color}" stroke-opacity="0.35"/>'
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"><title>{esc(name + " " if name else "")}'
                f"beat {beat:g}: {esc(value)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
