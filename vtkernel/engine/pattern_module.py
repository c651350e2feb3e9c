"""The `pattern` module type: plays a Tidal/Strudel pattern on the clock (SPEC §3, §9).

Params:

- `pattern`: mini-notation, or a pattern built in Python, stored in the
  document as its JSON form (`vtkernel.engine.patterns.tree`);
- `cycle`: beats per cycle. `0` (the default) means the clock's meter, so a
  cycle is one bar and follows `set_meter`.

Time: the cycle position of beat `b` is `b / beats_per_cycle`, always from
beat 0 of the transport, so a replaced pattern keeps its phase. Changing
`cycle` (or the meter, when `cycle` is 0) rescales the position; with the
meter, the bar grid of `@bar` moves the same way, so cycles and bars stay
together. The scheduler renders windows of
float beats; each window edge is turned into an exact `Fraction` of cycles
by one conversion (`beat_to_cycles`, rounding to 2**-32 beat), so two
windows that share an edge share it exactly, the windows tile the time line,
and every onset is rendered exactly once whatever the windows are.

Each hap with an onset in the window becomes one event: its value, its
whole's length in beats as the event's duration.

Cost: the built `Pattern` is cached per param value (the renderer keeps the
param object until an edit), and the pattern is queried once per block of
1/4 cycle (`BLOCK_CYCLES`), whatever the windows: a render window or the
scheduler's look for the next onset reads the blocks it covers. The next
block is queried ahead, at a point of the current block that differs from
module to module, so that patterns playing in step spread their queries over
several ticks. Onsets are the same as one query over the whole window,
because a pattern is a pure function of time.
"""

from __future__ import annotations

import bisect
import importlib
import json
import math
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from vtkernel.engine.moduletype import ModuleType, Onset, Params, ParamSpec

BEAT_RESOLUTION = 1 << 32  # window edges are rounded to 2**-32 beat before becoming Fractions
BLOCK_CYCLES = Fraction(1, 4)  # the pattern is queried once per block of this many cycles
MAX_BLOCKS = 64  # blocks kept per module (the horizon only moves forward, except on a restart)
MAX_BUILT = 256  # built patterns kept, by their JSON text
Block = tuple[list[Fraction], list[tuple[Fraction, Any, Fraction]]]
_BUILT: OrderedDict[str, Any] = OrderedDict()  # the scheduler thread's; patterns are immutable


def tree_module() -> Any:
    """`vtkernel.engine.patterns.tree`, imported on first use (it is not needed to start a kernel)."""
    return importlib.import_module("vtkernel.engine.patterns.tree")


def beat_to_cycles(beat: float, beats_per_cycle: Fraction) -> Fraction:
    """The exact cycle position of a window edge: monotonic, and the same Fraction for the same float."""
    return Fraction(round(beat * BEAT_RESOLUTION), BEAT_RESOLUTION) / beats_per_cycle


class PatternModule(ModuleType):
    type_name = "pattern"
    doc = (
        "Plays a pattern (Strudel/Tidal mini-notation, or one built in Python): one event per hap onset, "
        "with the hap's value and duration; one cycle lasts `cycle` beats."
    )
    params = {
        "pattern": ParamSpec(
            "pattern", "~", "mini-notation (\"bd*2 [~ sd]\") or a pattern built in Python, kept as its JSON form"
        ),
        "cycle": ParamSpec("float", 0.0, "beats per cycle; 0: the clock's meter (one bar)", min=0.0, max=1024.0),
    }
    outputs = ("out",)

    def __init__(self) -> None:
        self._source: Any = None
        self._built: Any = None
        self._blocks: dict[int, Block] = {}
        self._blocks_for: tuple[Any, Fraction] | None = None
        self._stagger = Fraction(1, 4)

    @classmethod
    def beats_per_cycle(cls, p: Params, meter: int) -> float:
        cycle = p.get("cycle")
        if isinstance(cycle, (int, float)) and not isinstance(cycle, bool) and cycle > 0:
            return float(cycle)
        return float(meter)

    def built(self, source: Any) -> Any:
        """The Pattern of a param value, built once per value (and shared by modules playing the same one)."""
        if self._built is None or source is not self._source:
            data = list(source) if isinstance(source, tuple) else source
            self._built = build(data)
            self._source = source
        return self._built

    def pattern(self, p: Params, start: float, end: float) -> Iterator[Onset]:
        # A decimal cycle length is meant as written: 1.7 beats is 17/10, not the float's binary value.
        bpc = Fraction(self.beats_per_cycle(p, self.meter)).limit_denominator(1_000_000)
        c0, c1 = beat_to_cycles(start, bpc), beat_to_cycles(end, bpc)
        if c1 <= c0:
            return
        source = p["pattern"]
        if self._blocks_for is None or self._blocks_for[0] is not source or self._blocks_for[1] != bpc:
            self._blocks = {}
            self._blocks_for = (source, bpc)
            self._stagger = Fraction(1, 4) + Fraction(zlib.crc32(self.name.encode()) % 512, 1024)
        pat = self.built(source)
        k0 = math.floor(c0 / BLOCK_CYCLES)
        # Query the next block ahead of time, at a point of the current one that differs from module to
        # module, so that many patterns in step do not all query at the same tick.
        if c0 - k0 * BLOCK_CYCLES >= self._stagger * BLOCK_CYCLES:
            self._block(pat, k0 + 1)
        last = math.nextafter(end, -math.inf)
        for k in range(k0, math.ceil(c1 / BLOCK_CYCLES)):
            begins, onsets = self._block(pat, k)
            for i in range(bisect.bisect_left(begins, c0), bisect.bisect_left(begins, c1)):
                begin, value, length = onsets[i]
                # The float of an exact onset may round onto a window edge: keep it inside its own window.
                beat = min(max(float(begin * bpc), start), last)
                yield beat, dict(value) if isinstance(value, dict) else value, float(length * bpc)

    def _block(self, pat: Any, k: int) -> Block:
        """The onsets `(cycle, value, whole length)` of block `k` of the pattern (queried once), and their cycles."""
        block = self._blocks.get(k)
        if block is None:
            lo, hi = k * BLOCK_CYCLES, (k + 1) * BLOCK_CYCLES
            onsets = sorted(
                (
                    (h.whole.begin, h.value, h.whole.end - h.whole.begin)
                    for h in pat.query(lo, hi)
                    if h.whole is not None and h.whole.begin == h.part.begin and lo <= h.whole.begin < hi
                ),
                key=lambda onset: onset[0],
            )
            block = ([onset[0] for onset in onsets], onsets)
            self._blocks[k] = block
            if len(self._blocks) > MAX_BLOCKS:
                del self._blocks[min(self._blocks)]
        return block


def build(data: Any) -> Any:
    """`from_json(data)`, cached by the data's canonical text: modules playing the same pattern share one."""
    key = json.dumps(data, sort_keys=True, separators=(",", ":"))
    pattern = _BUILT.get(key)
    if pattern is None:
        pattern = tree_module().from_json(data)
        _BUILT[key] = pattern
        while len(_BUILT) > MAX_BUILT:
            del _BUILT[next(iter(_BUILT))]
    else:
        _BUILT.move_to_end(key)
    return pattern
