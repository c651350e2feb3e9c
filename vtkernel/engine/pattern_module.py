"""The `pattern` module type: plays a Tidal/Strudel pattern on the clock (SPEC §3, §9).

Params:

- `pattern`: mini-notation, or a pattern built in Python, stored in the
  document as its JSON form (`vtkernel.engine.patterns.tree`);
- `cycle`: beats per cycle. `0` (the default) means the clock's meter, so a
  cycle is one bar and follows `set_meter`.

Time: the cycle position of beat `b` is `b / beats_per_cycle`, always from
beat 0 of the transport, so a replaced pattern keeps its phase (changing
`cycle` itself rescales the position). The scheduler renders windows of
float beats; each window edge is turned into an exact `Fraction` of cycles
by one conversion (`beat_to_cycles`, rounding to 2**-32 beat), so two
windows that share an edge share it exactly, the windows tile the time line,
and every onset is rendered exactly once whatever the windows are.

Each hap with an onset in the window becomes one event: its value, its
whole's length in beats as the event's duration. The built `Pattern` is
cached per param value (the renderer keeps the param object until an edit),
so a tick costs a query, not a parse.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from vtkernel.engine.moduletype import ModuleType, Onset, Params, ParamSpec

BEAT_RESOLUTION = 1 << 32  # window edges are rounded to 2**-32 beat before becoming Fractions


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

    @classmethod
    def beats_per_cycle(cls, p: Params, meter: int) -> float:
        cycle = p.get("cycle")
        if isinstance(cycle, (int, float)) and not isinstance(cycle, bool) and cycle > 0:
            return float(cycle)
        return float(meter)

    def built(self, source: Any) -> Any:
        """The Pattern of a param value, built once per value."""
        if self._built is None or source is not self._source:
            data = list(source) if isinstance(source, tuple) else source
            self._built = tree_module().from_json(data)
            self._source = source
        return self._built

    def pattern(self, p: Params, start: float, end: float) -> Iterable[Onset]:
        # A decimal cycle length is meant as written: 1.7 beats is 17/10, not the float's binary value.
        bpc = Fraction(self.beats_per_cycle(p, self.meter)).limit_denominator(1_000_000)
        c0, c1 = beat_to_cycles(start, bpc), beat_to_cycles(end, bpc)
        if c1 <= c0:
            return []
        last = math.nextafter(end, -math.inf)
        out: list[tuple[float, Any, float]] = []
        for hap in self.built(p["pattern"]).query(c0, c1):
            whole = hap.whole
            if whole is None or whole.begin != hap.part.begin or not c0 <= whole.begin < c1:
                continue  # no onset here (a continuous signal, or a fragment of an earlier hap)
            # The float of an exact onset may round onto a window edge: keep it inside its own window.
            beat = min(max(float(whole.begin * bpc), start), last)
            out.append((beat, hap.value, float((whole.end - whole.begin) * bpc)))
        out.sort(key=lambda onset: onset[0])
        return out
