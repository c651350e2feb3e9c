"""The scheduler's copy of the patch, and how it turns beats into events.

`Renderer` holds two copies of the document as plain JSON: `target` mirrors
the engine (every op it receives is applied at once) and `live` is what
sounds. An op quantized to a step, beat or bar waits in `pending` and is
copied from `target` to `live` when the render reaches that boundary, so the
engine can publish at once while the music changes on the grid.

The transport is a `TempoMap` plus the *horizon*: the first beat not yet
rendered. `advance(now)` renders every event in `[horizon, beat(now +
lookahead))`, so events go out ahead of their time by up to the lookahead,
and an edit takes effect at the horizon (at most the lookahead from now).

Rendering a window asks each pattern module for its onsets in that window
(patterns are pure functions of beat, so the window boundaries never change
what sounds), then routes each event along the connections: through
`process` modules to sinks (`osc_out`, `midi_out`, `recorder`, ...). Control
signals (`signal` modules) modulate params: a param's value is its base
value plus the sum of the signals connected to it, clamped to its range,
sampled at each step of the modulated module. A control signal connected to
an event input is sampled on a 1/16-beat grid.

No I/O and no clock reads here: time comes in as arguments and events go
out through an `Outputs`. Owner: one thread (the scheduler's).
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vtkernel.engine.schema import Event, ModuleType, Onset, Outputs, ParamSpec
from vtkernel.engine.timing.clock import BEAT_EPSILON, TempoMap, WallClock, quantize_beat
from vtkernel.engine.timing.link import DRIFT_BEATS, LinkSession
from vtkernel.jsonpatch import MISSING as _MISSING
from vtkernel.jsonpatch import apply_in_place, decode_pointer, from_json
from vtkernel.jsonpatch import get as _get

Segs = tuple[str, ...]
JSONDoc = dict[str, Any]
# What an event carries from its source pattern module through `process` modules:
# (duration in beats, cycle position, cycles per second).
Meta = tuple[float, float, float]
NO_META: Meta = (0.0, 0.0, 0.0)

CONTROL_STEPS_PER_BEAT = 16  # where a control signal feeding an event input is sampled
PROBE_BEATS = 4.0  # how far ahead to look for the next onset when deciding when to wake
MAX_BEHIND_SECONDS = 1.0  # further behind than this (machine suspended...), skip instead of flooding
MAX_ROUTE_DEPTH = 16
QUANTIZED = ("step", "beat", "bar")
# Beats; an onset due within this of the lookahead edge goes now rather than
# costing a wake-up of its own (larger than the grid tolerance of patterns).
HORIZON_SLACK = 1e-6


def empty_document() -> JSONDoc:
    return {"clock": {"bpm": 120.0, "playing": False, "meter": 4}, "modules": {}, "connections": []}


def _put(doc: JSONDoc, segs: Segs, value: Any) -> None:
    """Set (or, for `_MISSING`, delete) a member of nested objects, creating them on the way."""
    node: Any = doc
    for seg in segs[:-1]:
        node = node.setdefault(seg, {})
    if value is _MISSING:
        node.pop(segs[-1], None)
    else:
        node[segs[-1]] = value


@dataclass(slots=True)
class Routes:
    """What the connections mean, derived from `live` (rebuilt on structural edits)."""

    sources: list[str] = field(default_factory=list)  # pattern modules
    events_to: dict[str, list[str]] = field(default_factory=dict)  # module -> modules whose event input it feeds
    mods: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # module -> param -> signal modules
    sampled: list[tuple[str, str]] = field(default_factory=list)  # (signal module, module with event input)


@dataclass(slots=True)
class Counters:
    events: int = 0  # events rendered (reaching any module)
    skipped_seconds: float = 0.0


class Renderer:
    """The scheduler's patch and transport. See the module docstring. Owner: the scheduler thread."""

    def __init__(
        self,
        types: dict[str, type[ModuleType]],
        out: Outputs,
        *,
        lookahead: float,
        wall: WallClock,
    ) -> None:
        self.types = types
        self.out = out
        self.lookahead = lookahead
        self.wall = wall
        self.version = 0
        self.target: JSONDoc = empty_document()
        self.live: JSONDoc = empty_document()
        self.pending: list[tuple[float, int, Segs]] = []  # (beat, order, path), sorted
        self._order = 0
        self.tempo: TempoMap | None = None  # None while stopped
        # Ableton Link (vtkernel.engine.timing.link): the scheduler sets `link`; our beat is Link's
        # beat minus `link_origin` (whole bars); `_align_at` is our bar where a late join lines up.
        self.link: LinkSession | None = None
        self.link_origin: float | None = None
        self._align_at: float | None = None
        self.horizon = 0.0
        self.play_time = 0.0
        self.stopped_beat = 0.0
        self.counters = Counters()
        self.last_values: dict[str, tuple[float, Any]] = {}  # module -> (time, value) of its last event
        self.muted: dict[str, str] = {}  # module -> why (a runtime method raised)
        self._instances: dict[str, ModuleType] = {}
        self._base: dict[str, dict[str, Any]] = {}
        self._routes: Routes | None = None

    # ----- the document ---------------------------------------------------

    @property
    def playing(self) -> bool:
        return self.tempo is not None

    def reset(self, doc: JSONDoc, version: int, now: float) -> None:
        """Replace the whole patch (start, resync). The transport keeps running if it still plays."""
        doc = {k: v for k, v in doc.items() if k != "version"}
        self.target = copy.deepcopy(doc)
        was_playing = self.playing
        self.pending.clear()
        self.live = copy.deepcopy(doc)
        self._structure_changed()
        self.version = version
        clock = self.live["clock"]
        self._link_membership()
        if clock["playing"] and not was_playing:
            self._start(now)
        elif not clock["playing"] and was_playing:
            self._stop(self.horizon)
        elif self.tempo is not None and self.tempo.bpm != clock["bpm"]:
            self.tempo = self.tempo.with_bpm(clock["bpm"], self.horizon)

    def apply(self, ops: Iterable[tuple[Mapping[str, Any], str | None]], version: int, now: float) -> None:
        """Apply JSON Patch ops (each with its quantization) received from the engine."""
        for op, quantize in ops:
            segs = decode_pointer(op["path"])
            if segs[0] == "connections":
                # Element ops on the sorted list (or the whole list). `live` takes the list
                # from `target` when the change lands, so indices never refer to a stale list.
                apply_in_place(self.target, [{**op, "value": copy.deepcopy(op.get("value"))}])
                segs = ("connections",)
            else:
                _put(self.target, segs, copy.deepcopy(op["value"]) if op["op"] != "remove" else _MISSING)
            # A pending change of a container (say, a module added @bar) will
            # copy the whole container from `target` when it lands, this edit
            # included; pending changes inside what this op replaces are moot.
            inside_pending = any(len(p[2]) < len(segs) and segs[: len(p[2])] == p[2] for p in self.pending)
            self.pending = [p for p in self.pending if p[2][: len(segs)] != segs]
            if inside_pending:
                continue
            if self.playing and quantize in QUANTIZED:
                at = quantize_beat(
                    self.horizon, quantize, steps_per_beat=self._steps_per_beat(segs), meter=self._meter()
                )
                if at > self.horizon + BEAT_EPSILON:
                    self._order += 1
                    bisect.insort(self.pending, (at, self._order, segs))
                    continue
            self._make_live(segs, now, self.horizon)
        self.version = version

    def _make_live(self, segs: Segs, now: float, at_beat: float) -> None:
        if len(segs) > 2 and segs[0] == "modules" and segs[1] not in self.live["modules"]:
            return  # inside a module that does not sound (yet): it arrives whole, from `target`
        head = segs[0]
        if head == "connections":
            # Its elements are never edited in place, so a shallow copy is enough; only the
            # routes depend on connections: params, instances and reports stay.
            self.live["connections"] = list(self.target["connections"])
            self._routes = None
            return
        value = _get(self.target, segs)
        _put(self.live, segs, copy.deepcopy(value))
        if head == "clock":
            self._clock_changed(now, at_beat)
        elif head == "modules" and len(segs) >= 4 and segs[2] == "params":
            self._base.pop(segs[1], None)
            self.muted.pop(segs[1], None)
            self._forget(segs[1])
        else:
            self._structure_changed()

    def _clock_changed(self, now: float, at_beat: float) -> None:
        clock = self.live["clock"]
        self._link_membership()
        if clock["playing"] and self.tempo is None:
            self._start(now)
        elif not clock["playing"] and self.tempo is not None:
            self._stop(at_beat)
        elif self.tempo is not None and clock["bpm"] != self.tempo.bpm:
            if self._linked():
                assert self.link is not None
                self.link.propose_tempo(float(clock["bpm"]))  # the session's tempo; we follow it next tick
            else:
                self.tempo = self.tempo.with_bpm(float(clock["bpm"]), at_beat)

    def _start(self, now: float) -> None:
        # Beat 0 sounds one lookahead from now, so the first onsets are not late.
        self.play_time = now + self.lookahead
        bpm = float(self.live["clock"]["bpm"])
        self.horizon = 0.0
        self.stopped_beat = 0.0
        self._align_at = None
        if self._linked():
            # Beat 0 is the session's next bar (alone: a bar moved onto play_time).
            assert self.link is not None
            self.link.propose_playing(True)
            origin, s = self.link.origin_for_start(self.play_time, bpm)
            self.link_origin = origin
            self.tempo = TempoMap(s.tempo, s.time, s.beat - origin, self.wall.timetag(s.time))
            self.play_time = self.tempo.time_of(0.0)
            return
        self.tempo = TempoMap.start(bpm, self.play_time, self.wall)

    # ----- Ableton Link ---------------------------------------------------------

    def _linked(self) -> bool:
        return self.link is not None and self.link.active

    @property
    def linked(self) -> bool:
        """In an Ableton Link session (the scheduler keeps telemetry coming while stopped, for the peer count)."""
        return self._linked()

    def _link_membership(self) -> None:
        """Join or leave the session as `clock.link` says; keep the quantum at the meter."""
        link = self.link
        if link is None:
            return
        clock = self.live["clock"]
        if clock.get("link") and not link.active:
            if not link.join(float(clock["bpm"]), float(self._meter())):
                self.out.report("", "link", f"Ableton Link could not start in the timing process: {link.error}")
                return
            if self.tempo is not None:
                self._join_while_playing()
        elif not clock.get("link") and link.active:
            link.leave()
            self.link_origin = None
            self._align_at = None
        elif link.active and link.quantum != self._meter():
            link.set_quantum(float(self._meter()))
        if link.active:
            sync = bool(clock.get("link_sync"))
            if sync and not link.start_stop_sync and self.tempo is not None:
                link.set_start_stop_sync(True)
                link.propose_playing(True)  # already playing when sync was turned on: the session starts
            else:
                link.set_start_stop_sync(sync)

    def _join_while_playing(self) -> None:
        """Joined during play: alone, the session takes our beat; with peers, line up at our next bar."""
        assert self.link is not None and self.tempo is not None
        s = self.link.sample()
        if s.peers == 0:
            self.link.adopt(self.tempo.beat_at(s.time))
            self.link_origin = 0.0
            return
        self.link_origin = None  # `_follow_link` aligns at the next bar

    def _follow_link(self, now: float) -> None:
        """Keep the tempo map on the session's timeline (each tick, before rendering)."""
        link, tempo = self.link, self.tempo
        if link is None or tempo is None or not link.active or self._align_at is not None:
            return
        s = link.sample()
        if self.link_origin is None:
            # Late join (or a restart): our next bar B goes on the session's first bar that is
            # neither in the past nor before the end of what we already sent.
            q = float(self._meter())
            bar = math.ceil(self.horizon / q - BEAT_EPSILON) * q
            at = max(tempo.time_of(bar), now + self.lookahead)
            self.link_origin = link.next_bar(s, at) - bar
            self._align_at = bar
            return
        beat = s.beat - self.link_origin
        if s.tempo != tempo.bpm or abs(tempo.beat_at(s.time) - beat) > DRIFT_BEATS:
            self.tempo = TempoMap(s.tempo, s.time, beat, self.wall.timetag(s.time))

    def link_telemetry(self, now: float) -> dict[str, Any] | None:
        """Peers, the session's tempo and how far our bar phase is from the session's, in ms."""
        link = self.link
        if link is None or not link.active:
            return None
        s = link.sample()
        out: dict[str, Any] = {"peers": s.peers, "tempo": round(s.tempo, 6), "quantum": link.quantum}
        if link.start_stop_sync:
            out["playing"] = link.session_playing()  # the session's play/stop, which the kernel follows
        if self.tempo is not None and self.link_origin is not None and self._align_at is None:
            q = link.quantum
            ours = (self.tempo.beat_at(s.time) + self.link_origin) % q
            diff = (ours - link.phase(s) + q / 2) % q - q / 2
            out["phase_offset_ms"] = round(diff * 60000.0 / s.tempo, 4)
        return out

    def _stop(self, at_beat: float) -> None:
        if self._linked():
            assert self.link is not None
            self.link.propose_playing(False)
        self.tempo = None
        self.stopped_beat = at_beat
        # Nothing can wait for a boundary that will not come: apply what is pending now.
        pending, self.pending = self.pending, []
        for _, _, segs in pending:
            self._make_live(segs, 0.0, at_beat)

    def _structure_changed(self) -> None:
        self._routes = None
        self._base.clear()
        for name in self.muted:
            self._forget(name)  # unmuted: if it fails again, that is reported again
        self.muted.clear()
        names = self.live["modules"]
        for name in list(self._instances):
            if name not in names or type(self._instances[name]) is not self.types.get(names[name]["type"]):
                del self._instances[name]
                self._forget(name)  # retyped, removed or hot-swapped: its next problem is news
        for name in list(self.last_values):
            if name not in names:
                del self.last_values[name]
        self._connect_outputs()

    def _connect_outputs(self) -> None:
        """Let sinks that prepare their receiver do it now, before their first event (scsynth: its SynthDefs).

        A sink opts in with a method `connect_output(p, out)`; it must not block, and it
        is called after every structural change (so it must be cheap when already done).
        """
        for name, module in self.live["modules"].items():
            cls = self.types.get(module.get("type", ""))
            if cls is None or getattr(cls, "connect_output", None) is None or name in self.muted:
                continue
            inst = self._instance(name)
            try:
                inst.connect_output(self._params(name), self.out)  # type: ignore[union-attr]
            except Exception as exc:
                self._mute(name, "connect_output", exc)

    def _forget(self, name: str) -> None:
        """A module was edited: its problems are reported again (once) if they happen again."""
        forget = getattr(self.out, "forget", None)  # optional in an `Outputs`
        if forget is not None:
            forget(name)

    def set_type(self, cls: type[ModuleType]) -> None:
        """Register or hot-swap a module class: live instances are recreated, params kept."""
        self.types[cls.type_name] = cls
        self._structure_changed()

    def _meter(self) -> int:
        meter = self.live["clock"].get("meter", 4)
        return meter if isinstance(meter, int) and meter > 0 else 4

    def _steps_per_beat(self, segs: Segs) -> int:
        if len(segs) >= 2 and segs[0] == "modules":
            cls = self._type_of(segs[1])
            if cls is not None:
                return cls.steps_per_beat(self._params(segs[1]))
        return 4

    # ----- modules --------------------------------------------------------

    def _type_of(self, name: str) -> type[ModuleType] | None:
        module = self.live["modules"].get(name)
        return None if module is None else self.types.get(module.get("type", ""))

    def _instance(self, name: str) -> ModuleType | None:
        inst = self._instances.get(name)
        if inst is None:
            cls = self._type_of(name)
            if cls is None:
                return None
            inst = cls()
            inst.name = name
            self._instances[name] = inst
        return inst

    def _params(self, name: str) -> dict[str, Any]:
        """The module's params: the class defaults overlaid with the document's (cached)."""
        base = self._base.get(name)
        if base is None:
            cls = self._type_of(name)
            given = self.live["modules"][name].get("params", {})
            base = {}
            if cls is not None:
                for pname, spec in cls.params.items():
                    value = given.get(pname, spec.default)
                    base[pname] = from_json(value)
            self._base[name] = base
        return base

    def routes(self) -> Routes:
        routes = self._routes
        if routes is not None:
            return routes
        routes = Routes()
        modules = self.live["modules"]
        roles: dict[str, str] = {}
        for name, module in modules.items():
            cls = self._type_of(name)
            if cls is None:
                self.out.report(
                    name, "type", f"{name}: module type {module['type']!r} is not known to the scheduler; it is silent"
                )
            roles[name] = "passive" if cls is None else cls.role()
        routes.sources = sorted(name for name, role in roles.items() if role == "pattern")
        for conn in self.live["connections"]:
            smod, _, _sport = conn["src"].partition(".")
            dmod, _, dport = conn["dst"].partition(".")
            if smod not in modules or dmod not in modules:
                continue
            dcls = self._type_of(dmod)
            if dcls is None:
                continue
            srole, drole = roles[smod], roles[dmod]
            to_param = dport in dcls.params
            if srole == "signal":
                if to_param:
                    routes.mods.setdefault(dmod, {}).setdefault(dport, []).append(smod)
                elif drole in ("sink", "process"):
                    routes.sampled.append((smod, dmod))
            elif srole in ("pattern", "process"):
                if to_param:
                    self.out.report(
                        smod,
                        f"to-param:{dmod}.{dport}",
                        f"{conn['src']} -> {conn['dst']}: events cannot modulate a param; connect a control signal (lfo, const)",
                    )
                elif drole in ("sink", "process"):
                    routes.events_to.setdefault(smod, []).append(dmod)
        self._routes = routes
        return routes

    def params_at(self, name: str, beat: float, stack: tuple[str, ...] = ()) -> Mapping[str, Any]:
        """The module's params at `beat`, with modulation applied (cycles are cut, not followed)."""
        base = self._params(name)
        mods = self.routes().mods.get(name)
        if not mods:
            return base
        cls = self._type_of(name)
        assert cls is not None
        params = dict(base)
        inner = (*stack, name)
        for pname, sources in mods.items():
            total = 0.0
            for src in sources:
                if src not in inner:
                    total += self.signal_at(src, beat, inner)
            if total:
                params[pname] = modulate(cls.params[pname], base[pname], total)
        return params

    def seconds_of(self, beat: float) -> float:
        """Transport seconds (since beat 0) of `beat`: what LFOs run on."""
        return 0.0 if self.tempo is None else self.tempo.time_of(beat) - self.play_time

    def signal_at(self, name: str, beat: float, stack: tuple[str, ...] = ()) -> float:
        inst = self._instance(name)
        if inst is None or name in self.muted:
            return 0.0
        try:
            value = float(inst.signal(self.params_at(name, beat, stack), beat, self.seconds_of(beat)))
        except Exception as exc:
            self._mute(name, "signal", exc)
            return 0.0
        return value if math.isfinite(value) else 0.0

    def _mute(self, name: str, method: str, exc: BaseException) -> None:
        why = f"{name}: {method}() raised {type(exc).__name__}: {exc}; the module is muted until it is edited"
        self.muted[name] = why
        self.out.report(name, f"raised:{method}", why)

    # ----- rendering ------------------------------------------------------

    def advance(self, now: float) -> float | None:
        """Render everything up to one lookahead past `now`; return when to wake next (monotonic) or None."""
        tempo = self.tempo
        if tempo is None:
            return None
        behind = now - tempo.time_of(self.horizon)
        if behind > MAX_BEHIND_SECONDS:
            self.counters.skipped_seconds += behind
            self.out.report(
                "", "behind", f"the scheduler fell {behind:.2f} s behind (machine overloaded?); skipped ahead"
            )
            self.horizon = tempo.beat_at(now)
        self._follow_link(now)
        end_time = now + self.lookahead
        while self.tempo is not None:
            end = self.tempo.beat_at(end_time) + HORIZON_SLACK
            if self._align_at is not None and self._align_at < end:
                # A late join lines up here: finish our bar, then continue on the session's grid.
                at = self._align_at
                self._render(self.horizon, at)
                self.horizon = max(self.horizon, at)
                self._align_at = None
                assert self.link is not None and self.link_origin is not None
                s = self.link.sample()
                self.tempo = TempoMap(s.tempo, s.time, s.beat - self.link_origin, self.wall.timetag(s.time))
                continue
            if self.pending and self.pending[0][0] < end:
                at, _, segs = self.pending.pop(0)
                self._render(self.horizon, at)
                self.horizon = max(self.horizon, at)
                self._make_live(segs, now, at)
                continue
            if end > self.horizon:
                self._render(self.horizon, end)
                self.horizon = end
            break
        if self.tempo is None:
            return None
        return self.tempo.time_of(self.next_onset()) - self.lookahead

    def next_onset(self) -> float:
        """The beat of the next onset at or after the horizon (a bound: never later than the real one)."""
        h = self.horizon
        best = h + PROBE_BEATS
        routes = self.routes()
        for name in routes.sources:
            inst = self._instance(name)
            if inst is None or name in self.muted:
                continue
            if name in routes.mods:  # modulated: the structure may change at any of its steps
                spb = self._steps_per_beat(("modules", name))
                best = min(best, math.ceil(h * spb - BEAT_EPSILON) / spb)
                continue
            try:
                inst.meter = self._meter()
                for onset in inst.pattern(self._params(name), h, best):
                    best = min(best, onset[0])
                    break
            except Exception as exc:
                self._mute(name, "pattern", exc)
        if routes.sampled:
            best = min(best, math.ceil(h * CONTROL_STEPS_PER_BEAT - BEAT_EPSILON) / CONTROL_STEPS_PER_BEAT)
        if self.pending:
            best = min(best, self.pending[0][0])
        return max(best, h)

    def _render(self, start: float, end: float) -> None:
        if end <= start:
            return
        routes = self.routes()
        onsets: list[tuple[float, int, str, Any, Meta]] = []
        n = 0
        meter = self._meter()
        tempo = self.tempo
        assert tempo is not None
        for name in routes.sources:
            inst = self._instance(name)
            if inst is None or name in self.muted:
                continue
            try:
                inst.meter = meter
                bpc = float(inst.beats_per_cycle(self._params(name), meter))
                cps = 1.0 / (bpc * tempo.seconds_per_beat)
                for beat, value, duration in self._pattern(inst, name, start, end, name in routes.mods):
                    onsets.append((beat, n, name, value, (duration, beat / bpc, cps)))
                    n += 1
            except Exception as exc:
                self._mute(name, "pattern", exc)
        for src, dst in routes.sampled:
            k0 = math.ceil(start * CONTROL_STEPS_PER_BEAT - BEAT_EPSILON)
            k1 = math.ceil(end * CONTROL_STEPS_PER_BEAT - BEAT_EPSILON)
            for k in range(k0, k1):
                beat = k / CONTROL_STEPS_PER_BEAT
                onsets.append((beat, n, f"{src}\0{dst}", self.signal_at(src, beat), NO_META))
                n += 1
        onsets.sort(key=lambda onset: (onset[0], onset[1]))
        for beat, _, name, value, meta in onsets:
            if "\0" in name:  # a sampled control signal, delivered to one module only
                src, dst = name.split("\0")
                self._note(src, beat, value)
                self._deliver(src, dst, beat, value, meta, 0)
            else:
                self._dispatch(name, beat, value, meta, 0)

    def _pattern(
        self, inst: ModuleType, name: str, start: float, end: float, modulated: bool
    ) -> list[tuple[float, Any, float]]:
        """The module's onsets in `[start, end)` as `(beat, value, duration)`."""
        if not modulated:
            return [_onset(o) for o in inst.pattern(self._params(name), start, end)]
        # Modulated: sample the params at each of the module's own steps (on the
        # absolute grid, so the result does not depend on the window).
        spb = self._steps_per_beat(("modules", name))
        out: list[tuple[float, Any, float]] = []
        k = math.floor(start * spb + BEAT_EPSILON)
        while k / spb < end:
            step = k / spb
            lo, hi = max(start, step), min(end, (k + 1) / spb)
            if hi > lo:
                out.extend(_onset(o) for o in inst.pattern(self.params_at(name, step), lo, hi))
            k += 1
        return out

    def _note(self, name: str, beat: float, value: Any) -> None:
        assert self.tempo is not None
        self.last_values[name] = (self.tempo.time_of(beat), value)
        self.counters.events += 1

    def _dispatch(self, src: str, beat: float, value: Any, meta: Meta, depth: int) -> None:
        self._note(src, beat, value)
        for dst in self.routes().events_to.get(src, ()):
            self._deliver(src, dst, beat, value, meta, depth)

    def _deliver(self, src: str, dst: str, beat: float, value: Any, meta: Meta, depth: int) -> None:
        inst = self._instance(dst)
        cls = self._type_of(dst)
        if inst is None or cls is None or dst in self.muted:
            return
        if depth >= MAX_ROUTE_DEPTH:
            self.out.report(
                dst, "cycle", f"{dst}: events loop through more than {MAX_ROUTE_DEPTH} modules; check for a cycle"
            )
            return
        role = cls.role()
        params = self.params_at(dst, beat)
        if role == "sink":
            tempo = self.tempo
            assert tempo is not None
            t = tempo.time_of(beat)
            event = Event(
                beat, t, self.wall.wall(t), tempo.timetag_of(beat), value, src, tempo.seconds_per_beat, *meta
            )
            try:
                inst.emit(params, event, self.out)
            except Exception as exc:
                self._mute(dst, "emit", exc)
        elif role == "process":
            try:
                result = inst.process(params, beat, value)
            except Exception as exc:
                self._mute(dst, "process", exc)
                return
            if result is None:
                return
            for v in result if isinstance(result, (list, tuple)) else (result,):
                self._dispatch(dst, beat, v, meta, depth + 1)

    # ----- telemetry ------------------------------------------------------

    def beat_at(self, now: float) -> float:
        return self.stopped_beat if self.tempo is None else max(0.0, self.tempo.beat_at(now))

    def values(self, now: float) -> dict[str, Any]:
        """Each module's output value at `now`: a signal's current value, or the last event that sounded."""
        out: dict[str, Any] = {}
        beat = self.beat_at(now)
        for name in self.live["modules"]:
            cls = self._type_of(name)
            if cls is None:
                continue
            role = cls.role()
            if role == "signal":
                out[name] = round(self.signal_at(name, beat), 6) if self.playing else None
            elif role in ("pattern", "process") and name in self.last_values:
                out[name] = self.last_values[name][1]
        return out


def _onset(onset: Onset) -> tuple[float, Any, float]:
    """`(beat, value)` or `(beat, value, duration)` from a module's `pattern` as `(beat, value, duration)`."""
    if len(onset) == 3:
        return onset[0], onset[1], float(onset[2])
    return onset[0], onset[1], 0.0


def modulate(spec: ParamSpec, base: Any, amount: float) -> Any:
    """A param's base value moved by `amount`, kept in its range; kinds that cannot move are unchanged."""
    if spec.kind == "float" or spec.kind == "int":
        value = float(base) + amount
        lo, hi = spec.min, spec.max
        if lo is not None:
            value = max(value, math.nextafter(lo, math.inf) if spec.min_exclusive else lo)
        if hi is not None:
            value = min(value, hi)
        if spec.kind == "int":
            value = round(value)
            if lo is not None and (value < lo or (spec.min_exclusive and value <= lo)):
                value = math.floor(lo) + 1
            return int(value)
        return value
    if spec.kind == "steps":
        return tuple(None if s is None else s + amount for s in base)
    return base
