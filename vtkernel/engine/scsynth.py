"""The `scsynth` sink: a synth per event on SuperCollider's server, with no sclang.

Each event becomes one OSC bundle timetagged at the event's exact time:

    /s_new DEF NODE ADD_ACTION GROUP  name value  name value ...

- `DEF` is the event's `s` (a plain string value is `s`; `bd`/`hh` are the
  shipped `kick`/`hat`), else the module's `synth` param.
- `freq` comes from the event's `freq`, else from `note` (a MIDI number or a
  name like `c4`, `eb3`), `n` or a plain number, as MIDI note → Hz; not for
  the shipped drums, where `n` is a variant in Tidal's sense (`bd:3`).
- Every other numeric field goes along as a named control (scsynth ignores
  names a SynthDef does not have); strings and lists are not controls.
- `sustain` (seconds) is the event's `sustain`, else its `duration` in beats
  times `legato` (default 1) at the current tempo. With `release="gate"` the
  voice is started held (`sustain 0`) and a second bundle, `/n_set NODE gate
  0`, is timetagged at the note's end.

Connecting. Without sclang a server has no SynthDefs and no group 1. When the
module appears in the scheduler (`connect_output`, which the renderer calls
after each structural change), and in any case before its first event, the
sink sends `/d_recv` with the SynthDefs this package ships
(`vtkernel/engine/synthdefs/*.scsyndef`, compiled by
`scripts/build_synthdefs.py` with supriya; nothing here needs supriya) and
`/g_new GROUP 0 0`. scsynth loads definitions asynchronously: about two
audio blocks (10.6 ms at 256 frames / 48 kHz, measured). So events that
would sound sooner than `DEF_LOAD_SECONDS` after the definitions were sent
are stamped at that moment instead (only the first notes after a connect).
Until scsynth answers `/done /d_recv`, the definitions are sent again, at
most every `RETRY_SECONDS`, with the next event (so starting scsynth after
the kernel works); a confirmed server is asked `/status` every
`PING_SECONDS` (a restarted one, with fewer SynthDefs than were sent, gets
them again). These control messages go, untimed, through the sink's own
non-blocking UDP socket (`_Server`); every event goes through
`Outputs.send_osc`, which counts, times and reports.

Node ids come from one counter per process, starting at a random point in
`[NODE_MIN, NODE_MAX)` and wrapping, so two kernels on one server, or a
restarted kernel, do not collide in practice.

Owner: the scheduler thread (sinks run only there).
"""

from __future__ import annotations

import math
import random
import re
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

from vtkernel.engine.moduletype import Event, ModuleType, Outputs, Params, ParamSpec

DEFAULT_PORT = 57110
DEF_LOAD_SECONDS = 0.03  # from /d_recv sent to the definitions usable (two blocks, with room)
RETRY_SECONDS = 1.0  # resend the definitions this often until scsynth confirms them
PING_SECONDS = 2.0  # once confirmed, ask /status this often (notices a restarted server)
NODE_MIN = 1000
NODE_MAX = (1 << 31) - 1
NTP_UNITS = 1 << 32
ADD_ACTIONS = {"head": 0, "tail": 1}
ALIASES = {"bd": "kick", "hh": "hat"}  # Strudel/Tidal names for the shipped drums
UNPITCHED = frozenset({"kick", "hat"})  # `freq` tunes them, but a note or `n` (bd:3) does not set it
NOT_CONTROLS = frozenset({"s", "value", "note", "n", "freq", "legato", "sustain", "duration", "cycle", "cps", "delta"})
_NOTE_RE = re.compile(r"^([a-gA-G])([#sbf]*)(-?\d+)?$")
_CHROMA = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def synthdef_files() -> dict[str, bytes]:
    """The shipped compiled SynthDefs (SCgf files), by name."""
    folder = files("vtkernel.engine").joinpath("synthdefs")
    return {
        entry.name.removesuffix(".scsyndef"): entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".scsyndef")
    }


def synthdef_bundle(defs: Mapping[str, bytes]) -> bytes:
    """One SCgf file (version 2) holding every definition: the blob of a single `/d_recv`."""
    bodies = []
    for name, data in defs.items():
        magic, version, count = struct.unpack(">4siH", data[:10])
        if magic != b"SCgf" or version != 2 or count != 1:
            raise ValueError(f"{name}.scsyndef is not a single version-2 SynthDef")
        bodies.append(data[10:])
    return b"SCgf" + struct.pack(">iH", 2, len(bodies)) + b"".join(bodies)


SYNTHDEFS = synthdef_files()
SYNTHDEF_NAMES = tuple(SYNTHDEFS)
SYNTHDEF_BLOB = synthdef_bundle(SYNTHDEFS)


def osc_message(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


def midi_to_hz(midi: float) -> float:
    return float(440.0 * 2.0 ** ((midi - 69.0) / 12.0))


def note_number(note: Any) -> float | None:
    """A MIDI number from a number or a note name (`c4` = 60, `a#3`, `eb5`; no octave = 3, as in Strudel)."""
    if isinstance(note, bool):
        return None
    if isinstance(note, (int, float)):
        return float(note) if math.isfinite(note) else None
    if isinstance(note, str):
        m = _NOTE_RE.match(note.strip())
        if m is None:
            return None
        letter, accidentals, octave = m.groups()
        shift = sum(1 if a in "#s" else -1 for a in accidentals)
        return float((int(octave or 3) + 1) * 12 + _CHROMA[letter.lower()] + shift)
    return None


def event_fields(value: Any) -> dict[str, Any]:
    """An event value as named fields: a mapping as is; a string is `s`; `[s, n]` (`bd:3`); a number is `value`."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        return {"s": value}
    if isinstance(value, (list, tuple)):
        out: dict[str, Any] = {}
        if value and isinstance(value[0], str):
            out["s"] = value[0]
            if len(value) > 1:
                out["n"] = value[1]
        return out
    return {"value": value}


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _node_ids() -> Iterator[int]:
    node = random.randrange(NODE_MIN, NODE_MAX)
    while True:
        yield node
        node = node + 1 if node + 1 < NODE_MAX else NODE_MIN


_NODES = _node_ids()


class _Server:
    """One scsynth the sinks of this process send to: the connect handshake and its health.

    - Not confirmed: `/d_recv` + `/g_new` are (re)sent at most every
      `RETRY_SECONDS`, until `/done /d_recv` comes back on `sock`.
    - Confirmed: a `/status` every `PING_SECONDS`; a refused send or a reply
      with fewer SynthDefs than we sent (the server restarted) starts over.

    Everything is non-blocking and runs only when an event is emitted.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.groups: set[int] = set()
        self.confirmed = False
        self.sent = -math.inf  # wall time of the last /d_recv
        self.ready = -math.inf  # wall time from which the definitions are usable
        self.pinged = -math.inf
        self.refused = False  # the port refused a send (nothing listens): `Outputs` says so for the events
        self.sock: socket.socket | None = None

    def poll(self, module: str, group: int, out: Outputs) -> float:
        """Read replies, resend or ping as due; return the wall time from which events may sound."""
        now = time.time()
        self._read(module, out)
        if group not in self.groups:
            self.groups.add(group)
            if self.confirmed:
                self._send(module, out, osc_message("/g_new", group, 0, 0))
        if not self.confirmed and now - self.sent >= RETRY_SECONDS:
            if self.sent > -math.inf and not self.refused:  # no answer (a refusal is reported by `out` already)
                out.report(
                    module,
                    f"silent:{self.host}:{self.port}",
                    f"{module}: scsynth at {self.host}:{self.port} does not answer; start it (docs/scsynth.md) "
                    "or check with %vt doctor. Events are still sent, the clock keeps running",
                )
            self.sent = now
            self.ready = now + DEF_LOAD_SECONDS
            self._send(module, out, osc_message("/d_recv", SYNTHDEF_BLOB))
            for g in sorted(self.groups):
                self._send(module, out, osc_message("/g_new", g, 0, 0))  # fails harmlessly if it exists
        elif self.confirmed and now - self.pinged >= PING_SECONDS:
            self.pinged = now
            self._send(module, out, osc_message("/status"))
        return self.ready

    def _socket(self) -> socket.socket:
        if self.sock is None:
            host = "127.0.0.1" if self.host == "localhost" else self.host
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect((host, self.port))
            except OSError:
                sock.close()
                raise
            self.sock = sock
        return self.sock

    def _send(self, module: str, out: Outputs, data: bytes) -> None:
        try:
            self._socket().send(data)
        except ConnectionRefusedError:
            self.refused = True
            self._lost()
        except OSError as exc:
            self._lost()
            out.report(
                module,
                f"connect:{self.host}:{self.port}",
                f"{module}: cannot send to scsynth at {self.host}:{self.port}: {exc.strerror or exc}",
            )

    def _read(self, module: str, out: Outputs) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(64):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self.refused = True
                self._lost()
                continue
            except OSError:
                return
            self._reply(module, out, data)

    def _reply(self, module: str, out: Outputs, data: bytes) -> None:
        try:
            from pythonosc.osc_message import OscMessage

            msg = OscMessage(data)
        except Exception:
            return
        params = list(msg.params)
        self.refused = False
        if msg.address == "/done" and params[:1] == ["/d_recv"]:
            self.confirmed = True
            self.ready = min(self.ready, time.time())
            self.pinged = time.time()
        elif msg.address == "/status.reply" and len(params) > 4:
            if isinstance(params[4], int) and params[4] < len(SYNTHDEFS):  # restarted: our definitions are gone
                self._lost()
        elif msg.address == "/fail" and params[:1] == ["/d_recv"]:
            out.report(module, "d_recv", f"{module}: scsynth refused the SynthDefs: {' '.join(map(str, params[1:]))}")

    def _lost(self) -> None:
        self.confirmed = False
        self.sent = min(self.sent, time.time() - RETRY_SECONDS)  # resend with the next event


class _Connections:
    """The servers of this process, by (host, port). Module level, so a re-created sink does not reconnect.

    Owner: the scheduler thread.
    """

    def __init__(self) -> None:
        self.servers: dict[tuple[str, int], _Server] = {}

    def connect(self, module: str, host: str, port: int, group: int, out: Outputs) -> float:
        server = self.servers.get((host, port))
        if server is None:
            server = self.servers[(host, port)] = _Server(host, port)
        return server.poll(module, group, out)


CONNECTIONS = _Connections()


class ScsynthOut(ModuleType):
    type_name = "scsynth"
    doc = "Starts a synth on SuperCollider's server (scsynth) per event reaching `in`: /s_new at the event's exact time."
    params = {
        "host": ParamSpec("string", "127.0.0.1", "scsynth host"),
        "port": ParamSpec("int", DEFAULT_PORT, "scsynth UDP port", min=1, max=65535),
        "synth": ParamSpec(
            "string", "sine", "SynthDef for events without `s`", pattern=r"[A-Za-z0-9_.\-]{1,64}"
        ),
        "group": ParamSpec("int", 1, "group the synths go in (created at connect)", min=1, max=NODE_MIN - 1),
        "add_action": ParamSpec("enum", "head", "where in the group", choices=tuple(ADD_ACTIONS)),
        "release": ParamSpec(
            "enum", "timed", "timed: the voice ends itself after `sustain`; gate: /n_set gate 0 at the end",
            choices=("timed", "gate"),
        ),
    }
    inputs = ("in",)

    def connect_output(self, p: Params, out: Outputs) -> None:
        """When the module appears (the renderer's hook): send the SynthDefs before any event needs them."""
        CONNECTIONS.connect(self.name, p["host"], p["port"], p["group"], out)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        host, port, group = p["host"], p["port"], p["group"]
        ready = CONNECTIONS.connect(self.name, host, port, group, out)
        timetag = event.timetag
        if event.wall < ready:  # the definitions may not be loaded yet: sound when they are
            timetag += round((ready - event.wall) * NTP_UNITS)
        fields = event_fields(event.value)
        name = fields.get("s")
        synth = ALIASES.get(name, name) if isinstance(name, str) and name else p["synth"]
        if synth not in SYNTHDEFS:
            # scsynth only prints "SynthDef sd not found" to its own log: say it here, once per edit.
            out.report(
                self.name,
                f"no-def:{synth}",
                f"{self.name}: {synth!r} is not a shipped SynthDef ({', '.join(n for n in SYNTHDEF_NAMES if n != 'vt_record')}; "
                f"bd and hh are kick and hat); it sounds only if you loaded a SynthDef named {synth!r} yourself",
            )
        node = next(_NODES)
        args: list[Any] = [synth, node, ADD_ACTIONS[p["add_action"]], group]
        freq = _number(fields.get("freq"))
        if freq is None and synth not in UNPITCHED:
            for key in ("note", "n", "value"):
                if key in fields:
                    midi = note_number(fields[key])
                    if midi is not None:
                        freq = midi_to_hz(midi)
                        break
        if freq is not None:
            args += ["freq", freq]
        sustain = _number(fields.get("sustain"))
        if sustain is None and event.duration > 0:
            legato = _number(fields.get("legato"))
            sustain = event.duration * event.seconds_per_beat * (1.0 if legato is None else legato)
        gated = p["release"] == "gate"
        if gated:
            args += ["sustain", 0.0]
        elif sustain is not None:
            args += ["sustain", sustain]
        for key, value in fields.items():
            number = _number(value)
            if number is not None and key not in NOT_CONTROLS and isinstance(key, str):
                args += [key, number]
        out.send_osc(self.name, host, port, "/s_new", timetag, args)
        if gated:
            length = sustain if sustain is not None and sustain > 0 else 0.25
            off = timetag + round(length * NTP_UNITS)
            out.send_osc(self.name, host, port, "/n_set", off, (node, "gate", 0.0))
