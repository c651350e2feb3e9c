"""The piano roll of a pattern: what it plays over the next cycles, as an SVG.

Like Strudel's `pianoroll`: time runs to the right (cycles, with a line at
each cycle), each row is one pitch or one sound, and each hap is a block from
its onset to the end of its whole span. Rows are "folded": only the pitches
and sounds that occur get a row, pitches low to high from the bottom, named
sounds (`bd`, `sd:3`) above them in order of appearance.

Which row a value goes to (Strudel's rule): a number is a MIDI note; a
mapping's `note` (a number or a name such as `eb3`), else `n` when it has no
`s`, else `freq` (Hz, converted to MIDI); a note name is its MIDI note; any
other value (a mapping's `s` and `n`, a word, a list) is a named row. A
mapping's `color` colours its block; otherwise named sounds get a colour each.

Input is plain hap data, `(begin, end, value)` in cycles, so anything can be
drawn: a pattern object with `query(begin, end)` (haps with a whole span:
continuous signals have none and are skipped), an iterable of such haps, or
of triples. `module_haps` turns a source module of the patch (a `seq`, a
`pattern`...) into haps, through its type's `pattern(p, start, end)`.

The drawing uses `currentColor` for text and lines, so wrap it in `Picture`
(as `pianoroll` does) to follow the notebook's theme. It carries what a live
view needs to draw a playhead: `data-vt-cycles="BEGIN END"` and
`data-vt-plot="LEFT RIGHT"` on the `<svg>`, and a hidden `[data-vt-playhead]`
line to move (see the GUI panel).

Pure: no Jupyter, no engine state; only module types' pure `pattern`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any, NamedTuple

from vtkernel.pictures.svg import FONT, PALETTE, Picture, esc

NOTE_FILL = "#3b82f6"
MAX_HAPS = 4096  # more than this in one picture is unreadable; the rest are counted, not drawn
MAX_ROWS = 128
MAX_TITLED = 256  # blocks get a tooltip (<title>) when there are at most this many
NOTE_RE = re.compile(r"^([a-gA-G])([#bs]*)(-?\d+)?$")
CHROMA = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class Hap(NamedTuple):
    """One event as drawn: its span in cycles and its value."""

    begin: float
    end: float
    value: Any


def note_to_midi(name: str) -> float | None:
    """`c4` -> 60, `eb3` -> 51, `f#5` -> 78 (Strudel's names; octave 3 when omitted); None if not a note."""
    m = NOTE_RE.match(name)
    if m is None:
        return None
    letter, accidentals, octave = m.groups()
    shift = sum(1 if a in "#s" else -1 for a in accidentals)
    return float((int(octave) if octave is not None else 3) * 12 + 12 + CHROMA[letter.lower()] + shift)


def midi_name(midi: float) -> str:
    if not float(midi).is_integer():
        return f"{midi:g}"
    m = int(midi)
    return f"{NAMES[m % 12]}{m // 12 - 1}"


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, Fraction)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _label(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ":".join(_label(x) for x in v)
    n = _number(v)
    return f"{n:g}" if n is not None else str(v)


def row_of(value: Any) -> tuple[float | None, str]:
    """(MIDI pitch, "") for a pitched value, or (None, label) for a named row."""
    n = _number(value)
    if n is not None:
        return n, ""
    if isinstance(value, str):
        midi = note_to_midi(value)
        return (midi, "") if midi is not None else (None, value)
    if isinstance(value, Mapping):
        note = value.get("note")
        if note is None and "s" not in value:
            note = value.get("n")
        if note is not None:
            pitch, _ = row_of(note)
            if pitch is not None:
                return pitch, ""
        freq = _number(value.get("freq"))
        if freq is not None and freq > 0:
            return round(69 + 12 * math.log2(freq / 440.0), 2), ""
        if "s" in value:
            s = _label(value["s"])
            return None, f"{s}:{_label(value['n'])}" if "n" in value else s
        return None, ", ".join(f"{k}={_label(v)}" for k, v in sorted(value.items()))
    return None, _label(value)


def haps_of(source: Any, begin: float, end: float) -> list[Hap]:
    """The haps of `source` that start or sound in [begin, end) cycles, as `Hap`s.

    `source` is a pattern object (`query(begin, end)` giving haps with `whole`,
    `part`, `value`), or an iterable of haps or of `(begin, end, value)`.
    """
    if hasattr(source, "query"):
        items: Iterable[Any] = source.query(Fraction(begin), Fraction(end))
    else:
        items = source
    out: list[Hap] = []
    for item in items:
        if hasattr(item, "whole"):
            whole = item.whole
            if whole is None:  # a continuous signal: no onset, nothing to draw
                continue
            if hasattr(item, "has_onset") and not item.has_onset():
                continue  # the fragment of a hap whose onset is outside this query
            out.append(Hap(float(whole.begin), float(whole.end), item.value))
        else:
            b, e, value = item
            out.append(Hap(float(b), float(e), value))
    return [h for h in out if h.end > begin and h.begin < end]


def module_haps(cls: Any, params: Mapping[str, Any], meter: int, begin: float, end: float) -> tuple[list[Hap], float]:
    """What a source module of type `cls` plays in [begin, end) cycles: (haps, beats per cycle).

    Uses the type's pure `pattern(p, start, end)` (beats), so it shows what the
    scheduler will play (before modulation by connections). A value without a
    duration lasts one step of the type (`steps_per_beat`).
    """
    bpc = float(cls.beats_per_cycle(params, meter))
    if not bpc > 0:
        raise ValueError(f"a cycle of {bpc} beats")
    step = 1.0 / max(1, int(cls.steps_per_beat(params)))
    inst = cls()
    out: list[Hap] = []
    for onset in inst.pattern(params, begin * bpc, end * bpc):
        beat, value = float(onset[0]), onset[1]
        duration = float(onset[2]) if len(onset) > 2 and onset[2] else step
        out.append(Hap(beat / bpc, (beat + duration) / bpc, value))
        if len(out) > MAX_HAPS:
            break
    return out, bpc


def pianoroll_svg(
    haps: Iterable[Hap | tuple[float, float, Any]],
    begin: float = 0.0,
    end: float = 4.0,
    *,
    width: int = 640,
    height: int | None = None,
    now: float | None = None,
    label: str = "pianoroll",
) -> str:
    """The SVG text of a piano roll of `haps` (cycles) between `begin` and `end` cycles."""
    if not end > begin:
        raise ValueError(f"the window must be at least one instant long, got {begin}..{end}")
    events = [Hap(*h) for h in haps]
    dropped = max(0, len(events) - MAX_HAPS)
    events = events[:MAX_HAPS]
    rows_of = [row_of(h.value) for h in events]  # once per hap: the value's row
    pitches = sorted({p for p, _ in rows_of if p is not None})
    names = list(dict.fromkeys(name for p, name in rows_of if p is None))
    # Top to bottom: named rows in order of appearance, then pitches high to low.
    rows: list[tuple[float | None, str]] = [(None, n) for n in names] + [(p, "") for p in reversed(pitches)]
    rows = rows[:MAX_ROWS]
    index = {r: i for i, r in enumerate(rows)}
    n_rows = max(1, len(rows))
    left = 8 + min(10, max([len(_row_text(r)) for r in rows] or [0])) * 7
    right, top, bottom = 8, 8, 22
    if height is None:
        row_h = 16.0 if n_rows <= 8 else max(5.0, 160.0 / n_rows)
        height = int(top + bottom + row_h * n_rows)
    else:
        row_h = (height - top - bottom) / n_rows
    plot_w = width - left - right
    span = end - begin

    def sx(cycle: float) -> float:
        return left + (min(max(cycle, begin), end) - begin) / span * plot_w

    colors: dict[str, str] = {}

    def color_of(value: Any, row_name: str) -> str:
        if isinstance(value, Mapping):
            c = value.get("color")
            if isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}", c):
                return c
            key = _label(value["s"]) if "s" in value else ""
        else:
            key = row_name
        if not key:
            return NOTE_FILL
        return colors.setdefault(key, PALETTE[len(colors) % len(PALETTE)])

    plot_h = row_h * n_rows
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'{FONT} font-size="10" role="img" aria-label="{esc(label)}" data-vt-pianoroll="" '
        f'data-vt-cycles="{begin:g} {end:g}" data-vt-plot="{left} {left + plot_w}">',
        f"<title>{esc(label)}: cycles {begin:g} to {end:g}, {len(events)} events</title>",
    ]
    for i, r in enumerate(rows):
        y = top + i * row_h
        if i % 2 == 0:
            parts.append(
                f'<rect x="{left}" y="{y:.1f}" width="{plot_w}" height="{row_h:.1f}" fill="currentColor" fill-opacity="0.05"/>'
            )
        if row_h >= 7:
            parts.append(
                f'<text x="{left - 4}" y="{y + row_h / 2 + 3.5:.1f}" text-anchor="end" fill="currentColor" '
                f'opacity="0.75">{esc(_row_text(r)[:10])}</text>'
            )
    c0, c1 = math.ceil(begin), math.floor(end)
    step = max(1, math.ceil((c1 - c0 + 1) / 16))
    for c in range(c0, c1 + 1, step):
        x = sx(c)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h:.1f}" stroke="currentColor" stroke-opacity="0.35"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" fill="currentColor" opacity="0.7">{c}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h:.1f}" fill="none" stroke="currentColor" stroke-opacity="0.4"/>'
    )
    # A tooltip per block while they are few; beyond that they would be most of the bytes.
    titled = len(events) <= MAX_TITLED
    block_h = f"{max(1.0, row_h - 2):.1f}"
    rx = f"{min(3.0, row_h / 4):.1f}"
    for h, (pitch, name) in zip(events, rows_of, strict=True):
        key = (pitch, "") if pitch is not None else (None, name)
        if key not in index:
            continue
        x0, x1 = sx(h.begin), sx(h.end)
        y = top + index[key] * row_h
        fill = esc(color_of(h.value, name))
        head = (
            f'<rect x="{x0 + 0.5:.1f}" y="{y + 1:.1f}" width="{max(1.5, x1 - x0 - 1):.1f}" height="{block_h}" '
            f'rx="{rx}" fill="{fill}" fill-opacity="0.85" stroke="currentColor" stroke-opacity="0.25" data-vt-hap=""'
        )
        if titled:
            text = _label(h.value) if not isinstance(h.value, Mapping) else _mapping_text(h.value)
            parts.append(f"{head}><title>{esc(text)} @ {h.begin:g}–{h.end:g}</title></rect>")
        else:
            parts.append(f"{head}/>")
    if not events:
        parts.append(
            f'<text x="{left + 8}" y="{top + plot_h / 2 + 4:.1f}" fill="currentColor" opacity="0.6">silence</text>'
        )
    if dropped:
        parts.append(
            f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" fill="currentColor" opacity="0.7">'
            f"+{dropped} events not drawn</text>"
        )
    shown = now is not None and begin <= now <= end
    x = sx(now) if now is not None and shown else left
    parts.append(
        f'<line data-vt-playhead="" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h + 4:.1f}" '
        f'stroke="#ef4444" stroke-width="2" visibility="{"visible" if shown else "hidden"}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _row_text(row: tuple[float | None, str]) -> str:
    pitch, name = row
    return midi_name(pitch) if pitch is not None else name


def _mapping_text(value: Mapping[str, Any]) -> str:
    return " ".join(f"{k}:{_label(v)}" for k, v in value.items())


def pianoroll(
    pattern: Any,
    cycles: int | float | tuple[float, float] = 4,
    *,
    width: int = 640,
    height: int | None = None,
    now: float | None = None,
) -> Picture:
    """A piano roll of `pattern` over `cycles` cycles from 0 (or over a `(begin, end)` window).

    `pattern` is a pattern object, a mini-notation string (when the pattern
    language is installed), or haps / `(begin, end, value)` triples in cycles.
    Display the result in a notebook, or take its `.svg`.
    """
    begin, end = (0.0, float(cycles)) if not isinstance(cycles, tuple) else (float(cycles[0]), float(cycles[1]))
    if isinstance(pattern, str):
        from vtkernel.engine.patterns.mini import mini

        pattern = mini(pattern)
    haps = haps_of(pattern, begin, end)
    name = "pianoroll"
    return Picture(pianoroll_svg(haps, begin, end, width=width, height=height, now=now, label=name), name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Fraction):
        return float(value)
    return value


def haps_reply(
    doc: Any,
    version: int,
    registry: Any,
    module: str,
    begin: float,
    end: float,
    *,
    svg: bool = False,
    width: int = 640,
    msg_id: Any = None,
) -> dict[str, Any]:
    """The protocol's `haps` message for `module` of document `doc` (docs/protocol.md, `get_haps`).

    Raises `VTError`: `unknown_module`, or `invalid_command` for a module that
    plays no events (a signal, a sink), or `invalid_value` for a pattern that
    cannot be queried.
    """
    from vtkernel.protocol import VTError

    mod = doc.modules.get(module)
    if mod is None:
        raise VTError("unknown_module", f"no module named {module!r}")
    if mod.type not in registry:
        raise VTError("unknown_type", f"{module}: unknown module type {mod.type!r}")
    cls = registry.get(mod.type)
    if cls.role() != "pattern":
        raise VTError("invalid_command", f"{module} ({mod.type}) plays no events, so it has no haps: pick a source module")
    params = dict(mod.params.items())
    try:
        haps, bpc = module_haps(cls, params, doc.clock.meter, begin, end)
    except ValueError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VTError("invalid_value", f"{module}: {line}") from None
    truncated = len(haps) > MAX_HAPS
    haps = haps[:MAX_HAPS]
    msg: dict[str, Any] = {
        "type": "haps",
        "id": msg_id,
        "module": module,
        "version": version,
        "cycles": [begin, end],
        "cycle_beats": bpc,
        "haps": [[h.begin, h.end, _jsonable(h.value)] for h in haps],
        "truncated": truncated,
    }
    if svg:
        msg["svg"] = pianoroll_svg(haps, begin, end, width=width, label=f"{module} pianoroll")
    return msg
