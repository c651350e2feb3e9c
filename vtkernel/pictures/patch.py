"""The patch as a picture: `patch_svg(doc, registry)`, an SVG string. Pure.

Modules are boxes (name, type, each input port with its param value on the
left, outputs on the right), connections are curves: solid for events, dashed
for control signals (modulation). Text and outlines are drawn in
`currentColor`, with translucent fills, so the drawing follows the notebook's
light or dark theme (wrap it in `Picture`); the few accent colours read on
both. No dependencies (matplotlib is not needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from vtkernel.engine.document import Document, Snapshot
from vtkernel.engine.schema import Registry
from vtkernel.pictures.svg import FONT, esc, short

ROLE_COLORS = {
    "pattern": "#3b82f6",  # blue
    "signal": "#f59e0b",  # amber
    "process": "#a855f7",  # purple
    "sink": "#10b981",  # green
    "passive": "#9ca3af",  # grey
}

BOX_W = 190
HEADER_H = 34
ROW_H = 17
COL_GAP = 90
ROW_GAP = 22
MARGIN = 16


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
            f"<title>{esc(c['src'])} → {esc(c['dst'])}</title></path>"
        )
    for name in sorted(modules):
        x, y = pos[name]
        ins, outs, role = ports[name]
        m = modules[name]
        params = m.get("params", {})
        h = box_h(name)
        color = ROLE_COLORS.get(role, ROLE_COLORS["passive"])
        parts.append(f"<g><title>{esc(name)} ({esc(m.get('type', '?'))}, {role})</title>")
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{h}" rx="7" fill="currentColor" fill-opacity="0.05" '
            f'stroke="currentColor" stroke-opacity="0.45"/>'
        )
        parts.append(f'<rect x="{x}" y="{y}" width="5" height="{h}" rx="2" fill="{color}"/>')
        parts.append(
            f'<text x="{x + 13}" y="{y + 16}" font-size="13" font-weight="600" fill="currentColor">{esc(name)}</text>'
            f'<text x="{x + 13}" y="{y + 29}" fill="currentColor" opacity="0.6">{esc(m.get("type", "?"))}</text>'
        )
        for i, port in enumerate(ins):
            py = y + HEADER_H + i * ROW_H + ROW_H / 2
            is_param = port in params
            label = f"{esc(port)}" + (
                f' <tspan opacity="0.6">{esc(short(params[port]))}</tspan>' if is_param else ""
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
                f'<text x="{x + BOX_W - 10}" y="{py + 4}" text-anchor="end" fill="currentColor">{esc(port)}</text>'
            )
        parts.append("</g>")
    parts.extend(edge_parts)  # on top of the boxes, so crossings stay visible
    parts.append("</svg>")
    return "".join(parts)
