"""Pictures of the patch and of what it played, as SVG strings. Pure functions.

- `patch_svg(doc, registry)`: modules as boxes (name, type, each input port
  with its param value on the left, outputs on the right), connections as
  curves: solid for events, dashed for control signals (modulation).
- `timeline_svg(events)`: recorded events over beats, bar lines every
  `meter` beats, one colour per recorder.

Both draw text and outlines in `currentColor`, with translucent fills, so
they follow the notebook's light or dark theme; the few accent colours read
on both. No dependencies (matplotlib is not needed).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vtkernel.engine.document import Document, Snapshot
from vtkernel.engine.schema import Registry

ROLE_COLORS = {
    "pattern": "#3b82f6",  # blue
    "signal": "#f59e0b",  # amber
    "process": "#a855f7",  # purple
    "sink": "#10b981",  # green
    "passive": "#9ca3af",  # grey
}
SERIES_COLORS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#a855f7", "#06b6d4", "#84cc16", "#ec4899")
FONT = "font-family=\"ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif\""

BOX_W = 190
HEADER_H = 34
ROW_H = 17
COL_GAP = 90
ROW_GAP = 22
MARGIN = 16


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(value: Any, limit: int = 16) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = f"{value:.1f}"
    elif isinstance(value, (list, tuple)):
        text = " ".join("~" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_json(doc: Document | Snapshot | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(doc, Snapshot):
        return doc.doc.to_json()
    if isinstance(doc, Document):
        return doc.to_json()
    return doc


def _layers(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering from the sources; edges that close a cycle are ignored."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a != b:
            succ[a].append(b)
    order: list[str] = []
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()

    def visit(n: str) -> None:
        stack = [(n, iter(succ[n]))]
        state[n] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))

    for n in sorted(names):
        if n not in state:
            visit(n)
    layer = {n: 0 for n in names}
    for n in reversed(order):  # topological order of the acyclic part
        for m in succ[n]:
            if (n, m) not in back:
                layer[m] = max(layer[m], layer[n] + 1)
    return layer


def patch_svg(doc: Document | Snapshot | Mapping[str, Any], registry: Registry) -> str:
    """An SVG picture of the patch graph."""
    data = _as_json(doc)
    modules: Mapping[str, Any] = data.get("modules", {})
    connections: Sequence[Mapping[str, str]] = data.get("connections", [])
    if not modules:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40">'
            f'<text x="12" y="24" {FONT} font-size="13" fill="currentColor" opacity="0.6">empty patch</text></svg>'
        )
    ports: dict[str, tuple[list[str], list[str], str]] = {}
    for name, m in modules.items():
        mtype = m.get("type", "?")
        if mtype in registry:
            cls = registry.get(mtype)
            inputs = [p for p in cls.inputs if p not in cls.params] + list(cls.params)
            ports[name] = (inputs, list(cls.outputs), cls.role())
        else:
            ins = sorted({c["dst"].split(".", 1)[1] for c in connections if c["dst"].split(".", 1)[0] == name})
            outs = sorted({c["src"].split(".", 1)[1] for c in connections if c["src"].split(".", 1)[0] == name})
            ports[name] = (ins, outs, "passive")
    for c in connections:  # ports a connection names but the type does not (stale or unknown): still draw them
        for end in ("src", "dst"):
            mod, _, port = c[end].partition(".")
            if mod in ports:
                names = ports[mod][1] if end == "src" else ports[mod][0]
                if port not in names:
                    names.append(port)
    edges = [(c["src"].split(".", 1)[0], c["dst"].split(".", 1)[0]) for c in connections]
    edges = [(a, b) for a, b in edges if a in modules and b in modules]
    layer = _layers(list(modules), edges)

    columns: dict[int, list[str]] = {}
    for name in sorted(modules):
        columns.setdefault(layer[name], []).append(name)
    # One barycentre pass: order each column by the mean row of its sources.
    row_of: dict[str, float] = {}
    for col in sorted(columns):
        names = columns[col]
        if col > 0:
            preds = {n: [row_of[a] for a, b in edges if b == n and a in row_of] for n in names}
            names.sort(key=lambda n: (sum(preds[n]) / len(preds[n]) if preds[n] else math.inf, n))
        for i, n in enumerate(names):
            row_of[n] = i

    def box_h(name: str) -> int:
        ins, outs, _ = ports[name]
        return HEADER_H + max(len(ins), len(outs), 1) * ROW_H + 8

    pos: dict[str, tuple[float, float]] = {}
    height = 0.0
    for col, names in columns.items():
        y = float(MARGIN)
        for n in names:
            pos[n] = (MARGIN + col * (BOX_W + COL_GAP), y)
            y += box_h(n) + ROW_GAP
        height = max(height, y - ROW_GAP + MARGIN)
    width = MARGIN * 2 + (max(columns) + 1) * BOX_W + max(columns) * COL_GAP

    def port_xy(name: str, port: str, side: int) -> tuple[float, float]:
        x, y = pos[name]
        names = ports[name][side]
        i = names.index(port) if port in names else 0
        return (x + BOX_W if side == 1 else x), y + HEADER_H + i * ROW_H + ROW_H / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT} font-size="11" role="img" aria-label="vtkernel patch">',
        '<defs><marker id="vt-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="context-stroke"/></marker></defs>',
    ]
    edge_parts = []
    for c in sorted(connections, key=lambda c: (c["src"], c["dst"])):
        smod, sport = c["src"].split(".", 1)
        dmod, dport = c["dst"].split(".", 1)
        if smod not in pos or dmod not in pos:
            continue
        x1, y1 = port_xy(smod, sport, 1)
        x2, y2 = port_xy(dmod, dport, 0)
        control = ports[smod][2] == "signal"
        reach = max(40.0, abs(x2 - x1) / 2) if x2 > x1 else 60.0 + abs(y2 - y1) / 4
        color = ROLE_COLORS["signal"] if control else ROLE_COLORS["pattern"]
        dash = ' stroke-dasharray="5 4"' if control else ""
        edge_parts.append(
            f'<path d="M{x1:.1f},{y1:.1f} C{x1 + reach:.1f},{y1:.1f} {x2 - reach:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
            f'fill="none" stroke="{color}" stroke-width="1.6"{dash} marker-end="url(#vt-arrow)">'
            f"<title>{_esc(c['src'])} → {_esc(c['dst'])}</title></path>"
        )
    for name in sorted(modules):
        x, y = pos[name]
        ins, outs, role = ports[name]
        m = modules[name]
        params = m.get("params", {})
        h = box_h(name)
        color = ROLE_COLORS.get(role, ROLE_COLORS["passive"])
        parts.append(f"<g><title>{_esc(name)} ({_esc(m.get('type', '?'))}, {role})</title>")
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{h}" rx="7" fill="currentColor" fill-opacity="0.05" '
            f'stroke="currentColor" stroke-opacity="0.45"/>'
        )
        parts.append(f'<rect x="{x}" y="{y}" width="5" height="{h}" rx="2" fill="{color}"/>')
        parts.append(
            f'<text x="{x + 13}" y="{y + 16}" font-size="13" font-weight="600" fill="currentColor">{_esc(name)}</text>'
            f'<text x="{x + 13}" y="{y + 29}" fill="currentColor" opacity="0.6">{_esc(m.get("type", "?"))}</text>'
        )
        for i, port in enumerate(ins):
            py = y + HEADER_H + i * ROW_H + ROW_H / 2
            is_param = port in params
            label = f"{_esc(port)}" + (
                f' <tspan opacity="0.6">{_esc(_short(params[port]))}</tspan>' if is_param else ""
            )
            parts.append(
                f'<circle cx="{x}" cy="{py}" r="3.5" fill="{color if not is_param else "currentColor"}" '
                f'fill-opacity="{1 if not is_param else 0.5}"/>'
                f'<text x="{x + 10}" y="{py + 4}" fill="currentColor">{label}</text>'
            )
        for i, port in enumerate(outs):
            py = y + HEADER_H + i * ROW_H + ROW_H / 2
            parts.append(
                f'<circle cx="{x + BOX_W}" cy="{py}" r="3.5" fill="{color}"/>'
                f'<text x="{x + BOX_W - 10}" y="{py + 4}" text-anchor="end" fill="currentColor">{_esc(port)}</text>'
            )
        parts.append("</g>")
    parts.extend(edge_parts)  # on top of the boxes, so crossings stay visible
    parts.append("</svg>")
    return "".join(parts)


Recorded = tuple[float, float, Any]


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
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" fill="currentColor" opacity="0.7">{_short(round(value, 3), 8)}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" stroke-opacity="0.4"/>'
    )
    parts.append(
        f'<text x="{left - 6}" y="{height - 10}" text-anchor="end" fill="currentColor" opacity="0.5">beat</text>'
    )
    for i, (name, evs) in enumerate(data.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        if legend:
            lx = left + i * 110
            parts.append(
                f'<circle cx="{lx + 5}" cy="{top - 11}" r="4" fill="{color}"/>'
                f'<text x="{lx + 13}" y="{top - 7}" fill="currentColor">{_esc(name)}</text>'
            )
        for beat, value in evs:
            px, py = sx(beat), sy(value)
            parts.append(
                f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{py:.1f}" stroke="{color}" stroke-opacity="0.35"/>'
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"><title>{_esc(name + " " if name else "")}'
                f"beat {beat:g}: {_esc(value)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
