"""Patterns: pure functions of beat position.

Everything here is pure: no clock, no threads. A pattern is a tuple of
steps (numbers, or None for a rest) played `division` steps per beat, so the
step sounding at beat `b` is `steps[floor(b * division) % len(steps)]`.
Replacing a pattern therefore keeps its phase: the position comes from the
clock, never from the pattern.

Mini-notation (a compact string form of `steps`):

    "60 ~ 62 64"     numbers are steps, `~` (or `.`) is a rest
    "60*3 ~"         `*N` repeats a step N times
    "60(3,8)"        Euclidean rhythm: 3 hits spread over 8 steps, value 60
    "60(3,8,2)"      the same, rotated left by 2 steps
"""

from __future__ import annotations

import math
import re

Step = float | int | None

_TOKEN = re.compile(
    r"""^(?P<value>~|\.|-?\d+(?:\.\d+)?(?:e-?\d+)?)
         (?:\((?P<k>\d+),(?P<n>\d+)(?:,(?P<r>-?\d+))?\))?
         (?:\*(?P<rep>\d+))?$""",
    re.VERBOSE,
)
MAX_STEPS = 1024


def euclid(hits: int, steps: int, rotation: int = 0) -> tuple[bool, ...]:
    """Bjorklund's even distribution of `hits` onsets over `steps`, rotated left by `rotation`.

    The same algorithm as Toussaint's paper and Tidal/Strudel, so `(3,8)` is
    `x..x..x.` and `(5,8)` is `x.xx.xx.`: it starts on an onset and spreads
    the onsets as evenly as possible.
    """
    if steps <= 0:
        raise ValueError("a Euclidean rhythm needs at least one step")
    if not 0 <= hits <= steps:
        raise ValueError(f"a Euclidean rhythm needs 0 <= hits <= steps, got ({hits},{steps})")
    if hits == 0:
        return (False,) * steps
    front: list[list[bool]] = [[True] for _ in range(hits)]
    back: list[list[bool]] = [[False] for _ in range(steps - hits)]
    while len(back) > 1:
        m = min(len(front), len(back))
        front, back = [front[i] + back[i] for i in range(m)], (front[m:] if len(front) > m else back[m:])
    pattern = tuple(x for group in front + back for x in group)
    r = rotation % steps
    return pattern[r:] + pattern[:r]


def parse_mini(text: str) -> tuple[Step, ...]:
    """Parse a mini-notation string into steps; raise ValueError with one clear line."""
    out: list[Step] = []
    tokens = text.split()
    if not tokens:
        raise ValueError("an empty pattern; write at least one step, e.g. '60 ~ 62'")
    for tok in tokens:
        m = _TOKEN.match(tok)
        if not m:
            raise ValueError(f"cannot read {tok!r}; steps are numbers, ~ for a rest, N*R, or N(k,n[,rot])")
        raw = m["value"]
        value: Step = None if raw in ("~", ".") else _number(raw)
        if m["k"] is not None:
            if value is None:
                raise ValueError(f"{tok!r}: a Euclidean rhythm needs a value, not a rest")
            group: list[Step] = [value if hit else None for hit in euclid(int(m["k"]), int(m["n"]), int(m["r"] or 0))]
        else:
            group = [value]
        rep = int(m["rep"]) if m["rep"] is not None else 1
        if rep < 1:
            raise ValueError(f"{tok!r}: a repeat count must be at least 1")
        out.extend(group * rep)
        if len(out) > MAX_STEPS:
            raise ValueError(f"a pattern may have at most {MAX_STEPS} steps")
    return tuple(out)


def _number(raw: str) -> float | int:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw else value


def step_at(steps: tuple[Step, ...], division: int, beat: float) -> Step:
    """The step sounding at `beat` (pure; the phase comes from the beat alone)."""
    index = math.floor(beat * division + 1e-9)
    return steps[index % len(steps)]


def events_between(steps: tuple[Step, ...], division: int, start: float, end: float) -> list[tuple[float, float]]:
    """Onsets `(beat, value)` with `start <= beat < end`, on the exact step grid.

    Beats are computed as `index / division` from integer step indices, so an
    onset's beat never accumulates floating-point drift however long it runs.
    """
    if end <= start:
        return []
    first = math.ceil(start * division - 1e-9)
    last = math.ceil(end * division - 1e-9)
    n = len(steps)
    out = []
    for index in range(first, last):
        value = steps[index % n]
        if value is not None:
            out.append((index / division, value))
    return out


def lfo_value(shape: str, rate_hz: float, depth: float, seconds: float) -> float:
    """Value in [-depth, depth] of an LFO at `seconds` of transport time."""
    phase = (seconds * rate_hz) % 1.0
    if shape == "sine":
        v = math.sin(2 * math.pi * phase)
    elif shape == "square":
        v = 1.0 if phase < 0.5 else -1.0
    elif shape == "saw":
        v = 2.0 * phase - 1.0
    else:  # triangle
        v = 4.0 * phase - 1.0 if phase < 0.5 else 3.0 - 4.0 * phase
    return depth * v
