"""The base of module types: param schemas (`ParamSpec`), events (`Event`), the sink services (`Outputs`) and `ModuleType`.

`vtkernel.engine.schema` re-exports everything here and holds the built-in
types and the registry; import from there. This module exists so that the
built-in types can live in their own files (`sinks.py`, `pattern_module.py`)
without an import cycle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from vtkernel.jsonpatch import to_json
from vtkernel.protocol import VTError

ParamKind = Literal["float", "int", "bool", "enum", "string", "steps", "pattern", "list"]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its kind, range, default and a line of documentation."""

    kind: ParamKind
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # for strings, e.g. an OSC address must start with "/"

    def validate(self, module: str, name: str, value: Any) -> Any:
        """Return the value normalised (ints to floats, lists to tuples) or raise invalid_value."""
        where = f"{module}.{name}"
        kind = self.kind
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise VTError("invalid_value", f"{where} must be a number, got {_show(value)}")
            value = float(value)
            if not math.isfinite(value):
                raise VTError("invalid_value", f"{where} must be finite, got {value}")
            self._check_range(where, value)
            return value
        if kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise VTError("invalid_value", f"{where} must be an integer, got {_show(value)}")
            self._check_range(where, value)
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise VTError("invalid_value", f"{where} must be true or false, got {_show(value)}")
            return value
        if kind == "enum":
            if value not in self.choices or not isinstance(value, str):
                raise VTError("invalid_value", f"{where} must be one of {', '.join(self.choices)}; got {_show(value)}")
            return value
        if kind == "string":
            if not isinstance(value, str) or len(value) > 1024:
                raise VTError("invalid_value", f"{where} must be a string of at most 1024 characters, got {_show(value)}")
            if self.pattern is not None:
                import re

                if not re.fullmatch(self.pattern, value):
                    raise VTError("invalid_value", f"{where}: {value!r} does not match {self.pattern}")
            return value
        if kind == "steps":
            return _validate_steps(where, value)
        if kind == "pattern":
            return _validate_pattern(where, value)
        if kind == "list":
            return _validate_list(where, value)
        raise AssertionError(f"unknown param kind {kind}")  # a bug in a module type, not user input

    def _check_range(self, where: str, value: float) -> None:
        lo, hi = self.min, self.max
        if lo is not None and (value <= lo if self.min_exclusive else value < lo):
            op = ">" if self.min_exclusive else ">="
            raise VTError("invalid_value", f"{where} must be {op} {_num(lo)}, got {_num(value)}")
        if hi is not None and value > hi:
            raise VTError("invalid_value", f"{where} must be <= {_num(hi)}, got {_num(value)}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "default": to_json(self.default), "doc": self.doc}
        if self.min is not None:
            out["min"] = self.min
            out["min_exclusive"] = self.min_exclusive
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = list(self.choices)
        return out


MAX_STEPS = 1024


def _validate_steps(where: str, value: Any) -> tuple[float | None, ...]:
    if isinstance(value, str):
        from vtkernel.engine.patterns import parse_mini

        try:
            return parse_mini(value)
        except ValueError as exc:
            raise VTError("invalid_value", f"{where}: {exc}") from None
    if not isinstance(value, (list, tuple)):
        raise VTError("invalid_value", f"{where} must be a list of numbers or null, got {_show(value)}")
    if not 1 <= len(value) <= MAX_STEPS:
        raise VTError("invalid_value", f"{where} must have 1 to {MAX_STEPS} steps, got {len(value)}")
    out: list[float | None] = []
    for i, step in enumerate(value):
        if step is None:
            out.append(None)
        elif isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
            raise VTError("invalid_value", f"{where}[{i}] must be a number or null, got {_show(step)}")
        else:
            out.append(step)
    return tuple(out)


MAX_LIST_ITEMS = 256


def _validate_list(where: str, value: Any) -> tuple[Any, ...]:
    """A list of words and numbers; a string is split on whitespace (numbers in it become numbers)."""
    if isinstance(value, str):
        value = [_word(w) for w in value.split()]
    if not isinstance(value, (list, tuple)):
        raise VTError("invalid_value", f"{where} must be a list of words and numbers, got {_show(value)}")
    if len(value) > MAX_LIST_ITEMS:
        raise VTError("invalid_value", f"{where} must have at most {MAX_LIST_ITEMS} items, got {len(value)}")
    for i, item in enumerate(value):
        if isinstance(item, str):
            if len(item) > 1024:
                raise VTError("invalid_value", f"{where}[{i}] is longer than 1024 characters")
        elif isinstance(item, bool) or (isinstance(item, int) and abs(item) < 1 << 63):
            pass
        elif not isinstance(item, float) or not math.isfinite(item):
            raise VTError("invalid_value", f"{where}[{i}] must be a word, a finite number or a bool, got {_show(item)}")
    return tuple(value)


def _word(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


MAX_PATTERN_CHARS = 65_536  # the JSON form of one pattern param


def _validate_pattern(where: str, value: Any) -> Any:
    """A pattern param: its canonical JSON form (a string is mini-notation), or invalid_value with the parse error."""
    import importlib
    import json

    if isinstance(value, tuple):  # the document keeps top-level lists as tuples
        value = list(value)
    elif not isinstance(value, (str, list, dict)) and hasattr(value, "tree"):
        value = value.tree  # a Pattern built in Python: its JSON form
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise VTError("invalid_value", f"{where} must be a pattern (mini-notation or its JSON form), got {_show(value)}") from None
    if size > MAX_PATTERN_CHARS:
        raise VTError("invalid_value", f"{where}: the pattern is {size} characters of JSON, at most {MAX_PATTERN_CHARS}")
    try:
        # Imported on first use: the pattern core is not needed to start a kernel.
        return importlib.import_module("vtkernel.engine.patterns.tree").validate_json(value)
    except ValueError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(value, str) and _CALL.match(value):
            # `s("bd*2")` typed where mini-notation text goes (the command language, a string param)
            line += "; here a pattern is mini-notation text (bd*2 [~ sd]); build s(...), n(...) patterns in a cell"
        raise VTError("invalid_value", f"{where}: {line}") from None


_CALL = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(")


def _num(v: float) -> str:
    return repr(int(v)) if float(v).is_integer() else repr(v)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."




Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """One timestamped event, as a sink sees it (in the scheduler process).

    `time` is the scheduled `time.monotonic()` of the scheduler, `wall` the
    same instant as `time.time()`, and `timetag` the same instant as a 64-bit
    NTP/OSC timetag (computed with integer arithmetic, so it lies exactly on
    the beat grid). `seconds_per_beat` is the tempo at that instant.

    `value` is what the source sent: a number, a string, a list (`bd:3`) or a
    mapping of named fields (`{"s": "bd", "n": 3}`), as in Tidal and Strudel.
    Sinks that want fields read a plain value as `{"value": x}` (see
    `vtkernel.engine.sinks.event_fields`). `source` is the module the event
    came from directly (a `process` module, or the pattern itself).

    Mappings to the pattern's own time (from the source pattern module, kept
    through `process` modules):

    - `duration`: beats; the hap's whole span (a `seq` step's length); 0.0
      when the source does not say.
    - `cycle`: the onset's position in cycles of the source pattern (its
      `beats_per_cycle`, the clock's meter by default).
    - `cps`: cycles per second at that moment.
    """

    beat: float
    time: float
    wall: float
    timetag: int
    value: Any
    source: str
    seconds_per_beat: float
    duration: float = 0.0
    cycle: float = 0.0
    cps: float = 0.0


Onset = tuple[float, Any] | tuple[float, Any, float]  # (beat, value) or (beat, value, duration in beats)


class Outputs(Protocol):
    """What a sink may do with an event: the scheduler's I/O services.

    Every method returns at once; none of them may block the clock. Problems
    are reported once per `(module, key)` and never raise.
    """

    def send_osc(self, module: str, host: str, port: int, address: str, timetag: int, args: Sequence[Any]) -> None: ...

    def send_midi(self, module: str, port: str, at: float, message: Sequence[int]) -> None: ...

    def record(self, module: str, event: Event) -> None: ...

    def report(self, module: str, key: str, message: str) -> None: ...


class ModuleType:
    """Base class of module types. Subclasses declare `type_name` and `params`.

    Every param is also an input port of the same name (modulation); `inputs`
    lists extra inputs (for example `in` of an output module); `outputs` lists
    output ports.

    Runtime behaviour (run by the scheduler process, see
    `vtkernel.engine.timing`). A type overrides the methods for its role:

    - `pattern(p, start, end)`: an event source. Returns the onsets
      `(beat, value)` or `(beat, value, duration_beats)` with
      `start <= beat < end`. It must be a pure function of the params and
      the beat: that is what keeps the phase when a pattern is replaced, and
      what lets the scheduler render any window. `beats_per_cycle(p, meter)`
      says how long its cycle is (events carry `cycle` and `cps` from it).
    - `signal(p, beat, seconds)`: a control source (its outputs are control
      signals, sampled where they are used). `seconds` is transport time.
    - `process(p, beat, value)`: an event transform on the `in` input;
      returns the new value, a list of values, or None to drop the event.
    - `emit(p, event, out)`: a sink; sends the event through `out`.

    `p` holds the module's params with modulation applied. Instances are made
    by the scheduler with no arguments and `name` set (and `meter`, the
    clock's beats per bar, kept up to date); they are recreated when
    the class is redefined (hot swap), so keep state in params, not in `self`.
    """

    type_name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    params: ClassVar[dict[str, ParamSpec]] = {}
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()

    name: str = ""
    meter: int = 4  # the clock's beats per bar, set by the scheduler before it asks for a pattern

    @classmethod
    def input_ports(cls) -> tuple[str, ...]:
        return tuple(cls.params) + tuple(p for p in cls.inputs if p not in cls.params)

    @classmethod
    def schema_json(cls) -> dict[str, Any]:
        return {
            "doc": cls.doc,
            "params": {name: spec.to_json() for name, spec in cls.params.items()},
            "inputs": list(cls.input_ports()),
            "outputs": list(cls.outputs),
            "role": cls.role(),
        }

    @classmethod
    def role(cls) -> str:
        """`pattern`, `signal`, `process`, `sink` or `passive` (no runtime behaviour)."""
        for method in ("pattern", "signal", "process", "emit"):
            if getattr(cls, method) is not getattr(ModuleType, method):
                return "sink" if method == "emit" else method
        return "passive"

    @classmethod
    def steps_per_beat(cls, p: Params) -> int:
        """Steps per beat: `@step` quantizes an edit of this module to its next step."""
        division = p.get("division")
        return division if isinstance(division, int) and division > 0 else 4

    @classmethod
    def beats_per_cycle(cls, p: Params, meter: int) -> float:
        """Beats in one cycle of this source (events' `cycle` and `cps`): the clock's meter unless it says."""
        return float(meter)

    def pattern(self, p: Params, start: float, end: float) -> Iterable[Onset]:
        raise NotImplementedError

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        raise NotImplementedError

    def process(self, p: Params, beat: float, value: Any) -> Any:
        raise NotImplementedError

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        raise NotImplementedError
