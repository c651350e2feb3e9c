"""Module types and their param schemas.

A module type is a class with a declared param schema (`ParamSpec`s), its
input and output ports, and (for the scheduler) how it behaves in time. The
schema is the one source of truth for validation, the command-language
help, the generated script and the GUI controls.

Types are registered in a `Registry`. Built-ins register themselves; third
parties add types through the `vtkernel.modules` entry-point group; users may
register a class from a cell. Registration is done on the kernel's main
thread before the type is used; the engine thread only reads the registry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, Protocol

from vtkernel.engine.patterns import euclid, events_between, lfo_value
from vtkernel.protocol import NAME_RE, VTError

ENTRY_POINT_GROUP = "vtkernel.modules"

ParamKind = Literal["float", "int", "bool", "enum", "string", "steps"]


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
        raise AssertionError(f"unknown param kind {kind}")  # a bug in a module type, not user input

    def _check_range(self, where: str, value: float) -> None:
        lo, hi = self.min, self.max
        if lo is not None and (value <= lo if self.min_exclusive else value < lo):
            op = ">" if self.min_exclusive else ">="
            raise VTError("invalid_value", f"{where} must be {op} {_num(lo)}, got {_num(value)}")
        if hi is not None and value > hi:
            raise VTError("invalid_value", f"{where} must be <= {_num(hi)}, got {_num(value)}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "default": _jsonable(self.default), "doc": self.doc}
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


def _num(v: float) -> str:
    return repr(int(v)) if float(v).is_integer() else repr(v)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """One timestamped event, as a sink sees it (in the scheduler process).

    `time` is the scheduled `time.monotonic()` of the scheduler, `wall` the
    same instant as `time.time()`, and `timetag` the same instant as a 64-bit
    NTP/OSC timetag (computed with integer arithmetic, so it lies exactly on
    the beat grid). `seconds_per_beat` is the tempo at that instant.
    """

    beat: float
    time: float
    wall: float
    timetag: int
    value: Any
    source: str
    seconds_per_beat: float


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
      `(beat, value)` with `start <= beat < end`. It must be a pure function
      of the params and the beat: that is what keeps the phase when a pattern
      is replaced, and what lets the scheduler render any window.
    - `signal(p, beat, seconds)`: a control source (its outputs are control
      signals, sampled where they are used). `seconds` is transport time.
    - `process(p, beat, value)`: an event transform on the `in` input;
      returns the new value, a list of values, or None to drop the event.
    - `emit(p, event, out)`: a sink; sends the event through `out`.

    `p` holds the module's params with modulation applied. Instances are made
    by the scheduler with no arguments and `name` set; they are recreated when
    the class is redefined (hot swap), so keep state in params, not in `self`.
    """

    type_name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    params: ClassVar[dict[str, ParamSpec]] = {}
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()

    name: str = ""

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

    def pattern(self, p: Params, start: float, end: float) -> Iterable[tuple[float, Any]]:
        raise NotImplementedError

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        raise NotImplementedError

    def process(self, p: Params, beat: float, value: Any) -> Any:
        raise NotImplementedError

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        raise NotImplementedError


class LFO(ModuleType):
    type_name = "lfo"
    doc = "Low-frequency oscillator: a control signal between -depth and depth."
    params = {
        "rate": ParamSpec("float", 1.0, "frequency in Hz", min=0.0, min_exclusive=True, max=1000.0),
        "depth": ParamSpec("float", 1.0, "amplitude", min=0.0, max=1.0),
        "shape": ParamSpec("enum", "sine", "waveform", choices=("sine", "square", "saw", "triangle")),
    }
    outputs = ("out",)

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        return lfo_value(p["shape"], p["rate"], p["depth"], seconds)


class Seq(ModuleType):
    type_name = "seq"
    doc = "Step sequencer: one event per non-null step, `division` steps per beat."
    params = {
        "steps": ParamSpec("steps", (0.0,), "numbers or null for a rest, or a mini-notation string"),
        "division": ParamSpec("int", 4, "steps per beat", min=1, max=64),
    }
    outputs = ("out",)

    def pattern(self, p: Params, start: float, end: float) -> Iterable[tuple[float, Any]]:
        return events_between(tuple(p["steps"]), p["division"], start, end)


class Euclid(ModuleType):
    type_name = "euclid"
    doc = "Euclidean rhythm: `hits` onsets spread evenly over `length` steps, each sending `value`."
    params = {
        "hits": ParamSpec("int", 3, "onsets per cycle", min=0, max=64),
        "length": ParamSpec("int", 8, "steps per cycle", min=1, max=64),
        "rotate": ParamSpec("int", 0, "rotation to the left, in steps", min=-64, max=64),
        "value": ParamSpec("float", 60.0, "the value each onset sends"),
        "division": ParamSpec("int", 4, "steps per beat", min=1, max=64),
    }
    outputs = ("out",)

    def pattern(self, p: Params, start: float, end: float) -> Iterable[tuple[float, Any]]:
        hits = min(p["hits"], p["length"])
        steps = tuple(p["value"] if hit else None for hit in euclid(hits, p["length"], p["rotate"]))
        return events_between(steps, p["division"], start, end)


class Const(ModuleType):
    type_name = "const"
    doc = "A constant control signal (an offset for modulation, or a value to send)."
    params = {"value": ParamSpec("float", 0.0, "the signal's value")}
    outputs = ("out",)

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        return float(p["value"])


class OscOut(ModuleType):
    type_name = "osc_out"
    doc = "Sends each event reaching `in` as an OSC bundle timetagged with the event's exact time."
    params = {
        "host": ParamSpec("string", "127.0.0.1", "receiver host"),
        "port": ParamSpec("int", 57120, "receiver UDP port", min=1, max=65535),
        "address": ParamSpec("string", "/vt", "OSC address pattern", pattern=r"/[^\s#*,?\[\]{}]*"),
    }
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        out.send_osc(self.name, p["host"], p["port"], p["address"], event.timetag, (event.value,))


class MidiOut(ModuleType):
    type_name = "midi_out"
    doc = "Plays each event reaching `in` as a MIDI note (value = note number), at its exact time."
    params = {
        "port": ParamSpec("string", "", "MIDI output port name (empty: the backend's default)"),
        "channel": ParamSpec("int", 1, "MIDI channel", min=1, max=16),
        "velocity": ParamSpec("int", 100, "note velocity", min=0, max=127),
        "length": ParamSpec("float", 0.25, "note length in beats", min=0.0, min_exclusive=True, max=64.0),
    }
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        try:
            note = round(float(event.value))
        except (TypeError, ValueError):
            out.report(self.name, "value", f"{self.name}: MIDI needs numeric note values, got {event.value!r}")
            return
        note = min(127, max(0, note))
        channel = p["channel"] - 1
        out.send_midi(self.name, p["port"], event.time, (0x90 | channel, note, p["velocity"]))
        off = event.time + p["length"] * event.seconds_per_beat
        out.send_midi(self.name, p["port"], off, (0x80 | channel, note, 0))


class Recorder(ModuleType):
    type_name = "recorder"
    doc = "Keeps the last `size` events reaching `in`, for plots."
    params = {"size": ParamSpec("int", 1000, "events kept", min=1, max=100_000)}
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        out.record(self.name, event)


BUILTIN_TYPES: tuple[type[ModuleType], ...] = (LFO, Seq, Euclid, Const, OscOut, MidiOut, Recorder)


@dataclass
class Registry:
    """Module types by name.

    Owner: the kernel's main thread registers; every thread may read. Reads
    are single dict lookups; registration replaces the dict (copy-on-write) so
    readers never see a half-updated mapping.
    """

    _types: dict[str, type[ModuleType]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with each class before it is registered (on the registering
    # thread); one that raises refuses the class (e.g. the scheduler cannot
    # receive it). Copy-on-write, like `_types`.
    _listeners: tuple[Callable[[type[ModuleType]], None], ...] = ()

    def register(self, cls: type[ModuleType]) -> type[ModuleType]:
        if not isinstance(cls, type) or not issubclass(cls, ModuleType):
            raise TypeError("a module type must subclass vtkernel.engine.schema.ModuleType")
        if not NAME_RE.match(cls.type_name or ""):
            raise ValueError(f"module type name {cls.type_name!r} is not a valid name")
        for pname, spec in cls.params.items():
            if not NAME_RE.match(pname):
                raise ValueError(f"param name {pname!r} of {cls.type_name} is not a valid name")
            spec.validate(cls.type_name, pname, spec.default)
        for listener in self._listeners:
            listener(cls)
        with self._lock:
            types = dict(self._types)
            types[cls.type_name] = cls
            self._types = types
        return cls

    def subscribe(self, listener: Callable[[type[ModuleType]], None]) -> Callable[[], None]:
        """Call `listener(cls)` before each registration; return a function that unsubscribes."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(fn for fn in self._listeners if fn is not listener)

        return unsubscribe

    def types(self) -> dict[str, type[ModuleType]]:
        """Every registered type by name (a copy)."""
        return dict(self._types)

    def get(self, name: str) -> type[ModuleType]:
        cls = self._types.get(name)
        if cls is None:
            raise VTError("unknown_type", self.get_error(name))
        return cls

    def get_error(self, name: str) -> str:
        """The one-line message for an unknown type name."""
        return f"unknown module type {name!r}; known types: {', '.join(sorted(self._types))}"

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def schema_json(self) -> dict[str, Any]:
        return {name: cls.schema_json() for name, cls in sorted(self._types.items())}

    def load_entry_points(self) -> list[str]:
        """Register every type in the `vtkernel.modules` group; return one line per failure."""
        problems = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                self.register(ep.load())
            except Exception as exc:  # a broken plugin must not stop the kernel
                problems.append(f"module plugin {ep.name!r} ({ep.value}) failed to load: {exc}")
        return problems


def default_registry() -> Registry:
    reg = Registry()
    for cls in BUILTIN_TYPES:
        reg.register(cls)
    return reg
