"""Module types and their param schemas.

A module type is a class with a declared param schema (`ParamSpec`s), its
input and output ports, and (for the scheduler) how it behaves in time. The
schema is the one source of truth for validation, the command-language
help, the generated script and the GUI controls.

Where things are: the base (`ParamSpec`, `Event`, `Outputs`, `ModuleType`)
is in `moduletype.py` and re-exported here; the signal and step-sequencer
types are below; the sinks (`osc_out`, `superdirt`, `midi_out`, `recorder`)
are in `sinks.py`; the `pattern` type is in `pattern_module.py`. A new
built-in type goes in one of those files (or a new one) and into
`BUILTIN_TYPES`.

Types are registered in a `Registry`. Built-ins register themselves; third
parties add types through the `vtkernel.modules` entry-point group; users may
register a class from a cell. Registration is done on the kernel's main
thread, or for a plugin that imports slowly on its own thread
(`load_entry_points`), and always before the type is used; registration
is copy-on-write under a lock, and the engine thread only reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from vtkernel.engine.moduletype import (
    MAX_STEPS,
    Event,
    ModuleType,
    Onset,
    Outputs,
    ParamKind,
    Params,
    ParamSpec,
)
from vtkernel.engine.pattern_module import PatternModule
from vtkernel.engine.patterns import euclid, events_between, lfo_value
from vtkernel.engine.scsynth import ScsynthOut
from vtkernel.engine.sinks import MidiClock, MidiOut, OscOut, Recorder, SuperDirt
from vtkernel.protocol import NAME_RE, VTError

__all__ = [
    "BUILTIN_TYPES",
    "ENTRY_POINT_GROUP",
    "LFO",
    "MAX_STEPS",
    "Const",
    "Euclid",
    "Event",
    "MidiClock",
    "MidiOut",
    "ModuleType",
    "Onset",
    "OscOut",
    "Outputs",
    "ParamKind",
    "ParamSpec",
    "Params",
    "PatternModule",
    "Recorder",
    "Registry",
    "Seq",
    "SuperDirt",
    "default_registry",
]

ENTRY_POINT_GROUP = "vtkernel.modules"


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

    def pattern(self, p: Params, start: float, end: float) -> Iterable[Onset]:
        step = 1.0 / p["division"]
        return [(beat, value, step) for beat, value in events_between(tuple(p["steps"]), p["division"], start, end)]


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

    def pattern(self, p: Params, start: float, end: float) -> Iterable[Onset]:
        hits = min(p["hits"], p["length"])
        steps = tuple(p["value"] if hit else None for hit in euclid(hits, p["length"], p["rotate"]))
        step = 1.0 / p["division"]
        return [(beat, value, step) for beat, value in events_between(steps, p["division"], start, end)]


class Const(ModuleType):
    type_name = "const"
    doc = "A constant control signal (an offset for modulation, or a value to send)."
    params = {"value": ParamSpec("float", 0.0, "the signal's value")}
    outputs = ("out",)

    def signal(self, p: Params, beat: float, seconds: float) -> float:
        return float(p["value"])


BUILTIN_TYPES: tuple[type[ModuleType], ...] = (
    LFO,
    Seq,
    Euclid,
    Const,
    PatternModule,
    OscOut,
    SuperDirt,
    ScsynthOut,
    MidiOut,
    MidiClock,
    Recorder,
)


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
        if not NAME_RE.fullmatch(cls.type_name or ""):
            raise ValueError(f"module type name {cls.type_name!r} is not a valid name")
        for pname, spec in cls.params.items():
            if not NAME_RE.fullmatch(pname):
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

    def load_entry_points(
        self, *, wait: float | None = None, late: Callable[[str, bool], None] | None = None
    ) -> list[str]:
        """Register every type in the `vtkernel.modules` group; return one line per failure.

        A plugin runs its own code as it imports, and that code can hang. With
        `wait`, the plugins import in turn on a thread of their own
        (`vtkernel-plugins`) and this returns after at most `wait` seconds. A
        plugin still importing then is one line of the result; when its import
        returns, its type is registered (or its failure said) through
        `late(line, error)`, and so are the plugins after it.
        """
        plugins = list(entry_points(group=ENTRY_POINT_GROUP))
        if wait is None:
            return [problem for problem, _ in map(self._load_plugin, plugins) if problem is not None]
        load = _PluginLoad(self, plugins, late)
        threading.Thread(target=load.run, name="vtkernel-plugins", daemon=True).start()
        return load.result(wait)

    def _load_plugin(self, ep: Any) -> tuple[str | None, str | None]:
        """Register the type of one entry point: (its problem in one line, or None; the type's name)."""
        try:
            return None, self.register(ep.load()).type_name
        except (Exception, SystemExit) as exc:  # a broken plugin must not stop the kernel
            return f"module plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}", None


class _PluginLoad:
    """`Registry.load_entry_points(wait=...)`: the plugins' thread, and what it has said by when.

    `run` is the `vtkernel-plugins` thread; `result` is the caller's. The
    lock orders the two: a plugin's outcome goes into the result if it came
    before the caller stopped waiting, else to `late`.
    """

    def __init__(self, registry: Registry, plugins: list[Any], late: Callable[[str, bool], None] | None) -> None:
        self.registry = registry
        self.plugins = plugins
        self.late = late
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.problems: list[str] = []
        self.done = 0  # plugins whose outcome is in: `plugins[done]` is the one importing now
        self.waited = False  # the caller stopped waiting: later outcomes go to `late`
        self.started = time.monotonic()

    def run(self) -> None:
        for ep in self.plugins:
            problem, type_name = self.registry._load_plugin(ep)
            with self.lock:
                self.done += 1
                if not self.waited:
                    self.problems += [problem] if problem is not None else []
                    continue
            if self.late is not None:
                took = time.monotonic() - self.started
                ready = f"module plugin {ep.name!r} ({ep.value}) finished importing after {took:.1f} s: type {type_name!r} is ready"
                self.late(problem or ready, problem is not None)
        self.finished.set()

    def result(self, wait: float) -> list[str]:
        self.finished.wait(wait)
        with self.lock:
            self.waited = True
            problems = list(self.problems)
            if self.done < len(self.plugins):
                stuck = self.plugins[self.done]
                after = len(self.plugins) - 1 - self.done
                rest = (
                    f" and the {after} plugin{'s' if after != 1 else ''} after it, and registers them as their imports return"
                    if after
                    else ", and registers it when its import returns"
                )
                problems.append(
                    f"module plugin {stuck.name!r} ({stuck.value}) is still importing after {wait:g} s: "
                    f"the kernel started without it{rest}"
                )
        return problems


def default_registry() -> Registry:
    reg = Registry()
    for cls in BUILTIN_TYPES:
        reg.register(cls)
    return reg
