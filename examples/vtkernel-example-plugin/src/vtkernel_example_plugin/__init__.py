"""An example vtkernel module plugin: `transpose` (an event transform) and `ramp` (a control signal)."""

from __future__ import annotations

from typing import Any

from vtkernel.engine.schema import ModuleType, Params, ParamSpec


class Transpose(ModuleType):
    type_name = "transpose"
    doc = "Adds `semitones` to each event's value."
    params = {"semitones": ParamSpec("int", 0, "how far to move each note", min=-48, max=48)}
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p: Params, beat: float, value: Any) -> Any:
        return value + p["semitones"]


class Ramp(ModuleType):
    type_name = "ramp"
    doc = "A control signal rising from `low` to `high` over every `beats` beats (locked to the beat)."
    params = {
        "low": ParamSpec("float", 0.0, "value at the start of each cycle"),
        "high": ParamSpec("float", 1.0, "value reached at the end of each cycle"),
        "beats": ParamSpec("float", 4.0, "cycle length in beats", min=0.0, min_exclusive=True, max=1024.0),
    }
    outputs = ("out",)

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        phase = (beat / p["beats"]) % 1.0
        return float(p["low"] + (p["high"] - p["low"]) * phase)
