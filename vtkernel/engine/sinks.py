"""Sinks: the module types that send events out (OSC, SuperDirt, MIDI) or keep them (recorder).

An event's value is a number, a string, a list or a mapping of named fields
(`{"s": "bd", "n": 3}`), as in Tidal and Strudel. Each sink reads it as
fields with `event_fields`: a mapping is its own fields, anything else is
`{"value": x}`. How each sink maps fields to its wire format is written down
in `docs/outputs.md` (with the Tidal and Strudel source it follows).

- `osc_out`: any OSC receiver (TouchDesigner, Max, Pd, Processing...). The
  address is a template (`"/{s}"`) or the event's `address` field; `args` is
  the argument layout (positional values and `{field}` templates, so
  name/value pairs are `["freq", "{freq}", "amp", 0.2]`). OSC types follow
  the values: int -> `i` (`h` past 32 bits), float -> `f`, str -> `s`,
  bytes -> `b`, bool -> `i` 1/0, None -> `N`; a list is spread over several
  arguments, a mapping is sent as a JSON string.
- `superdirt`: SuperDirt's `/dirt/play`, name/value pairs like Tidal's
  (`cps`, `cycle`, `delta`, `orbit`, `_id_` and every field).
- `midi_out`: notes and CCs from fields (`note`/`n`, `velocity`, `dur`,
  `legato`, `channel`, `cc74`...), sent at their exact time by the scheduler.

Everything here runs in the scheduler process, inside the module's guard:
a sink never blocks, and a problem with one event is reported once per
module and edit (`Outputs.report`) without muting the module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from vtkernel.engine.moduletype import Event, ModuleType, Onset, Outputs, Params, ParamSpec

# OSC 1.0: an address is printable ASCII without space, and without the
# pattern characters # * , ? [ ] { }. NUL and DEL would cut or corrupt the
# NUL-terminated string on the wire (issue 14).
OSC_ADDRESS_RE = re.compile(r"/(?:(?![#*,?\[\]{}])[!-~])*")
# A template may hold `{field}` placeholders, filled from the event's fields.
OSC_ADDRESS_TEMPLATE = r"/(?:(?![#*,?\[\]{}])[!-~]|\{[A-Za-z_][A-Za-z0-9_]*\})*"
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
INT32 = 1 << 31


class MissingField(Exception):
    """A template names a field the event does not have."""


def event_fields(value: Any) -> dict[str, Any]:
    """An event value as named fields: a mapping is its own fields, anything else is `{"value": x}`."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return {"value": value}


def event_extras(event: Event) -> dict[str, Any]:
    """What a template may name besides the event's fields: its time in the pattern."""
    return {
        "beat": event.beat,
        "cycle": event.cycle,
        "cps": event.cps,
        "duration": event.duration,
        "delta": event.duration * event.seconds_per_beat,
    }


def osc_values(value: Any) -> list[Any]:
    """A value as OSC arguments (python-osc infers the tags from these Python types)."""
    if isinstance(value, bool):
        return [int(value)]
    if isinstance(value, (int, float, str, bytes)) or value is None:
        return [value]
    if isinstance(value, (bytearray, memoryview)):
        return [bytes(value)]
    if isinstance(value, Fraction):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in osc_values(item)]
    if isinstance(value, Mapping):
        return [json.dumps(value, default=str)]
    return [str(value)]


def _lookup(name: str, fields: Mapping[str, Any], extras: Mapping[str, Any]) -> Any:
    if name in fields:
        return fields[name]
    if name in extras:
        return extras[name]
    raise MissingField(name)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fill(template: str, fields: Mapping[str, Any], extras: Mapping[str, Any]) -> str:
    """Replace each `{field}` in `template` with the field's value as text."""
    return PLACEHOLDER_RE.sub(lambda m: _text(_lookup(m.group(1), fields, extras)), template)


def osc_layout(layout: tuple[Any, ...], value: Any, fields: Mapping[str, Any], extras: Mapping[str, Any]) -> list[Any]:
    """The OSC arguments of one event.

    With no layout, a plain value is sent as is (a list spread over several
    arguments) and a mapping as name/value pairs of its fields (without
    `address`). Otherwise each item of the layout is an argument: `"{name}"`
    alone is the field's value with its own type, a string holding
    placeholders is filled in as text, anything else is sent as given.
    """
    if not layout:
        if not isinstance(value, Mapping):
            return osc_values(value)
        out: list[Any] = []
        for name, v in fields.items():
            if name != "address":
                out.append(name)
                out.extend(osc_values(v))
        return out
    args: list[Any] = []
    for item in layout:
        if isinstance(item, str) and "{" in item:
            whole = PLACEHOLDER_RE.fullmatch(item)
            if whole is not None:
                args.extend(osc_values(_lookup(whole.group(1), fields, extras)))
            else:
                args.append(fill(item, fields, extras))
        else:
            args.extend(osc_values(item))
    return args


class OscOut(ModuleType):
    type_name = "osc_out"
    doc = (
        "Sends each event reaching `in` as an OSC bundle timetagged with the event's exact time; "
        "the address and the argument layout come from the event's fields as you choose."
    )
    params = {
        "host": ParamSpec("string", "127.0.0.1", "receiver host"),
        "port": ParamSpec("int", 57120, "receiver UDP port", min=1, max=65535),
        "address": ParamSpec(
            "string",
            "/vt",
            "OSC address; `{field}` is filled from the event (`/{s}`); an event field `address` overrides it",
            pattern=OSC_ADDRESS_TEMPLATE,
        ),
        "args": ParamSpec(
            "list",
            (),
            "argument layout: values and `{field}` templates, e.g. [\"freq\", \"{freq}\", \"amp\", 0.2]; "
            "empty: the value, or name/value pairs of every field",
        ),
    }
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        value = event.value
        fields = event_fields(value)
        extras = event_extras(event)
        try:
            given = fields.get("address")
            if given is not None:
                address = str(given)
            else:
                address = p["address"]
                if "{" in address:
                    address = fill(address, fields, extras)
            args = osc_layout(tuple(p["args"]), value, fields, extras)
        except MissingField as exc:
            out.report(
                self.name,
                f"field:{exc}",
                f"{self.name}: an event has no field {str(exc)!r} (named by the address or args); such events are not sent",
            )
            return
        if not OSC_ADDRESS_RE.fullmatch(address):
            out.report(
                self.name,
                "address",
                f"{self.name}: {address[:60]!r} is not an OSC address (printable ASCII after '/', "
                "no spaces or # * , ? [ ] {{ }}); such events are not sent",
            )
            return
        if _has_nul(args):
            out.report(self.name, "nul", f"{self.name}: an OSC string cannot hold a NUL character; such events are not sent")
            return
        out.send_osc(self.name, p["host"], p["port"], address, event.timetag, args)


def _has_nul(args: list[Any]) -> bool:
    """OSC strings end at the first NUL: one inside would cut the string and shift every argument after it."""
    return any(isinstance(a, str) and "\0" in a for a in args)


# ----- SuperDirt ------------------------------------------------------------------

DIRT_PLAY = "/dirt/play"
# Params that Tidal declares as integers (`pI` in tidal-core/src/Sound/Tidal/Params.hs);
# every other number goes as a float, as Tidal sends it.
TIDAL_INT_FIELDS = frozenset({"channel", "cut", "nrpn", "val", "octave", "orbit"})
# Strudel's `s` control takes a list as [s, n, gain] (`bd:3` -> s "bd", n 3).
S_LIST_FIELDS = ("s", "n", "gain")
NOTE_RE = re.compile(r"([a-gA-G])([#bsf]*)(-?[0-9]*)")
_CHROMA = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def note_to_midi(name: str, default_octave: int = 3) -> int | None:
    """Strudel's `noteToMidi`: `c4` -> 60, `eb3` -> 51, `a` -> 57 (octave 3 when none is given); None if not a note."""
    m = NOTE_RE.fullmatch(name)
    if m is None:
        return None
    letter, accidentals, octave = m.groups()
    offset = sum(1 if a in "#s" else -1 for a in accidentals)
    return (int(octave or default_octave) + 1) * 12 + _CHROMA[letter.lower()] + offset


def _numeral(value: Any) -> Any:
    """Strudel's `parseNumeral`: a note name -> its MIDI number, a numeric string -> the number."""
    if isinstance(value, str):
        midi = note_to_midi(value)
        if midi is not None:
            return midi
        try:
            return float(value)
        except ValueError:
            return value
    return value


def dirt_fields(value: Any) -> dict[str, Any]:
    """An event value as SuperDirt controls: a word is `s`, a list is Strudel's `[s, n, gain]`."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        return {"s": value}
    if isinstance(value, (list, tuple)):
        return {name: v for name, v in zip(S_LIST_FIELDS, value, strict=False)}
    return {"value": value}


def dirt_controls(event: Event, orbit: int, ident: str) -> dict[str, Any]:
    """The `/dirt/play` name/value pairs of one event, in the order they are sent (sorted by name, as Tidal).

    Tidal (`toOSC` in src/Sound/Tidal/Stream/Process.hs) adds `cps`, `cycle`
    (the whole's begin) and `delta` (the whole's duration in seconds) unless
    the event has them, plus the pattern's `_id_`. Strudel
    (`parseControlsFromHap` in packages/osc/osc.mjs) also makes `n` and
    `note` numeric (a note name in `note` adds `midinote`), prefixes `s` with
    `bank`, renames `roomsize` to `size` and JSON-encodes `channels`.
    """
    fields = dirt_fields(event.value)
    s = fields.get("s")
    if isinstance(s, str) and ":" in s and "n" not in fields:
        name, _, index = s.partition(":")
        fields["s"] = name
        fields["n"] = index
    if "n" in fields:
        fields["n"] = _numeral(fields["n"])
    note = fields.get("note")
    if isinstance(note, str):
        octave = fields.get("octave")
        midi = note_to_midi(note, int(octave) if isinstance(octave, (int, float)) and not isinstance(octave, bool) else 3)
        if midi is not None:
            fields["midinote"] = midi
        else:
            fields["note"] = _numeral(note)
    bank = fields.get("bank")
    if isinstance(bank, str) and bank and isinstance(fields.get("s"), str):
        fields["s"] = bank + fields["s"]
    if "roomsize" in fields:
        fields["size"] = _numeral(fields["roomsize"])
    speed = fields.get("speed")
    if fields.get("unit") == "c" and isinstance(speed, (int, float)) and event.cps > 0:
        fields["speed"] = speed / event.cps
    if "channels" in fields and not isinstance(fields["channels"], str):
        fields["channels"] = json.dumps(fields["channels"])
    controls: dict[str, Any] = {
        "_id_": ident,
        "cps": event.cps,
        "cycle": event.cycle,
        "delta": event.duration * event.seconds_per_beat,
        "orbit": orbit,
    }
    controls.update(fields)
    return {name: controls[name] for name in sorted(controls) if controls[name] is not None}


def dirt_value(name: str, value: Any) -> Any:
    """One control as Tidal types it: ints only for Tidal's int params, other numbers as floats, bools as 1/0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, Fraction)):
        if name in TIDAL_INT_FIELDS and float(value).is_integer():
            return int(value)
        return float(value)
    if isinstance(value, (str, bytes)):
        return value
    return json.dumps(value, default=str)


def dirt_args(controls: Mapping[str, Any]) -> list[Any]:
    args: list[Any] = []
    for name, value in controls.items():
        args.append(name)
        args.append(dirt_value(name, value))
    return args


class SuperDirt(ModuleType):
    type_name = "superdirt"
    doc = (
        "Plays each event reaching `in` on SuperDirt: `/dirt/play` with name/value pairs (cps, cycle, delta, "
        "orbit and every field), in a bundle timetagged at the event's exact time, as Tidal sends it."
    )
    params = {
        "host": ParamSpec("string", "127.0.0.1", "SuperDirt's host"),
        "port": ParamSpec("int", 57120, "SuperDirt's UDP port (sclang's)", min=1, max=65535),
        "orbit": ParamSpec("int", 0, "the orbit of events that do not name one", min=0, max=255),
    }
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        controls = dirt_controls(event, p["orbit"], event.source)
        if not isinstance(controls.get("s"), str):
            out.report(
                self.name,
                "no-s",
                f"{self.name}: SuperDirt needs a sound name `s` in each event (got {_short(event.value)}); "
                "use s(...) or a word pattern. Such events are not sent",
            )
            return
        timetag = event.timetag
        nudge = controls.get("nudge")
        if isinstance(nudge, (int, float)) and not isinstance(nudge, bool) and math.isfinite(nudge):
            timetag += round(nudge * (1 << 32))  # Tidal moves the bundle by `nudge` seconds
        args = dirt_args(controls)
        if _has_nul(args):
            out.report(self.name, "nul", f"{self.name}: an OSC string cannot hold a NUL character; such events are not sent")
            return
        out.send_osc(self.name, p["host"], p["port"], DIRT_PLAY, timetag, args)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ----- MIDI --------------------------------------------------------------------------

CC_FIELD_RE = re.compile(r"cc([0-9]{1,3})")
DEFAULT_NOTE_BEATS = 0.25


def _midi7(value: Any, *, unit: bool) -> int | None:
    """A 0..127 MIDI data byte from a number; with `unit`, numbers in [0, 1] are a fraction of 127."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        return None
    x = float(value)
    if not math.isfinite(x):
        return None
    if unit and 0.0 <= x <= 1.0:
        x *= 127.0
    return min(127, max(0, round(x)))


def midi_note(fields: Mapping[str, Any]) -> int | None:
    """The note number: `note`, else `n`, else a plain value; numbers or note names (`c4` = 60)."""
    for name in ("note", "n", "value"):
        if name in fields:
            raw = fields[name]
            if isinstance(raw, str):
                midi = note_to_midi(raw)
                if midi is None:
                    try:
                        return round(float(raw))
                    except ValueError:
                        return None
                return midi
            if isinstance(raw, bool) or not isinstance(raw, (int, float, Fraction)) or not math.isfinite(raw):
                return None
            return round(float(raw))
    return None


class MidiOut(ModuleType):
    type_name = "midi_out"
    doc = (
        "Plays each event reaching `in` as a MIDI note at its exact time: `note` (or `n`, a note name, or a plain "
        "number), `velocity` (0..1 or 0..127, times `gain`), `dur` (beats) / `legato` / the event's duration, "
        "`channel`, and CCs from fields named `cc74` etc."
    )
    params = {
        "port": ParamSpec("string", "", "MIDI output port name (empty: the backend's default)"),
        "channel": ParamSpec("int", 1, "MIDI channel of events that do not name one", min=1, max=16),
        "velocity": ParamSpec("int", 100, "velocity of events that do not give one", min=0, max=127),
        "length": ParamSpec(
            "float",
            0.0,
            "note length in beats; 0: the event's own duration (a hap's, a step's), or 1/4 beat if it has none",
            min=0.0,
            max=64.0,
        ),
    }
    inputs = ("in",)

    def messages(self, p: Params, event: Event) -> list[tuple[float, tuple[int, ...]]]:
        """The MIDI messages of one event, each with its monotonic send time (note-on, CCs, note-off)."""
        fields = event_fields(event.value)
        if fields.get("midi_clock") is True:  # a tick from a `midi_clock` module
            ticks: list[tuple[float, tuple[int, ...]]] = [(event.time, (MIDI_CLOCK,))]
            return [(event.time, (MIDI_START,)), *ticks] if fields.get("start") is True else ticks
        channel = p["channel"]
        for name in ("channel", "midichan"):
            given = fields.get(name)
            if isinstance(given, (int, float)) and not isinstance(given, bool) and 1 <= given <= 16:
                channel = int(given)
                break
        status = channel - 1
        at = event.time
        out: list[tuple[float, tuple[int, ...]]] = []
        for name, raw in fields.items():
            m = CC_FIELD_RE.fullmatch(name)
            if m is not None and int(m.group(1)) <= 127:
                cc = _midi7(raw, unit=isinstance(raw, float))
                if cc is not None:
                    out.append((at, (0xB0 | status, int(m.group(1)), cc)))
        ccn, ccv = _midi7(fields.get("ccn"), unit=False), fields.get("ccv")
        if ccn is not None and "ccv" in fields:
            value = _midi7(ccv, unit=isinstance(ccv, float))
            if value is not None:
                out.append((at, (0xB0 | status, ccn, value)))
        note = midi_note(fields)
        if note is None:
            return out
        note = min(127, max(0, note))
        velocity = p["velocity"]
        if "velocity" in fields:
            given = _midi7(fields["velocity"], unit=True)
            velocity = velocity if given is None else given
        gain = fields.get("gain")
        if isinstance(gain, (int, float)) and not isinstance(gain, bool) and math.isfinite(gain) and gain >= 0:
            velocity = min(127, round(velocity * gain))
        out.append((at, (0x90 | status, note, velocity)))
        out.append((at + self.length_beats(p, event, fields) * event.seconds_per_beat, (0x80 | status, note, 0)))
        return out

    @staticmethod
    def length_beats(p: Params, event: Event, fields: Mapping[str, Any]) -> float:
        """The note's length in beats.

        From the event's fields: `sustain` (seconds), else `dur` (beats), else
        `legato` times the event's duration. Otherwise the `length` param,
        and when that is 0 the event's duration (1/4 beat if it has none).
        """

        def positive(name: str) -> float | None:
            v = fields.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                return None
            return float(v)

        sustain = positive("sustain")
        if sustain is not None:
            return sustain / event.seconds_per_beat
        dur = positive("dur")
        if dur is not None:
            return dur
        legato = positive("legato")
        if legato is not None and event.duration > 0:
            return legato * event.duration
        if p["length"] > 0:
            return float(p["length"])
        return event.duration if event.duration > 0 else DEFAULT_NOTE_BEATS

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        messages = self.messages(p, event)
        if not messages:
            out.report(
                self.name,
                "value",
                f"{self.name}: MIDI needs a note (`note`, `n`, a note name or a number) or a `ccN` field, "
                f"got {_short(event.value)}",
            )
            return
        for at, message in messages:
            out.send_midi(self.name, p["port"], at, message)


MIDI_CLOCK = 0xF8
MIDI_START = 0xFA


class MidiClock(ModuleType):
    type_name = "midi_clock"
    doc = (
        "MIDI clock: a tick event every 1/24 beat (MIDI's 24 ppq), and Start at beat 0; "
        "connect it to a `midi_out` to drive a drum machine or a DAW from the transport."
    )
    params = {"ppq": ParamSpec("int", 24, "ticks per beat (MIDI clock is 24)", min=1, max=96)}
    outputs = ("out",)

    @classmethod
    def steps_per_beat(cls, p: Params) -> int:
        ppq = p.get("ppq")
        return ppq if isinstance(ppq, int) and ppq > 0 else 24

    def pattern(self, p: Params, start: float, end: float) -> list[Onset]:
        ppq = p["ppq"]
        k = math.ceil(start * ppq - 1e-9)
        out: list[Onset] = []
        while k / ppq < end:
            if k >= 0:
                out.append((k / ppq, {"midi_clock": True, "start": k == 0}, 1.0 / ppq))
            k += 1
        return out


class Recorder(ModuleType):
    type_name = "recorder"
    doc = "Keeps the last `size` events reaching `in`, for plots."
    params = {"size": ParamSpec("int", 1000, "events kept", min=1, max=100_000)}
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        out.record(self.name, event)
