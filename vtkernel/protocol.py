"""Protocol v1: every command and every comm message, in one place.

This module is the single source of truth for message shapes (SPEC §4, §5).
The engine validates commands with these models, the command-language parser
builds them, the hub speaks them and the shells read them. Nothing else in
the project re-declares a message shape.

It imports only pydantic and the standard library, so shells can use it
without pulling in the engine or the kernel.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError, field_validator

# Defined where the kernel can read them before pydantic loads; this is where clients read them.
from vtkernel.limits import COMM_TARGET as COMM_TARGET
from vtkernel.limits import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES

PROTOCOL_VERSION = 1
MAX_ORIGIN_CHARS = 64  # shell names and origins: every delta to every client carries one

# \A...\Z, not ^...$: `$` also matches before a final "\n", so `.match` would let "lfo\n" in.
# Use them with `fullmatch` (which every caller here does); the anchors keep `.match` safe too.
NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
PORT_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

ErrorCode = Literal[
    "bad_message",
    "invalid_command",
    "unknown_module",
    "unknown_param",
    "invalid_value",
    "duplicate_name",
    "unknown_type",
    "unknown_port",
    "nothing_to_undo",
    "session_locked",
    "session_invalid",
    "io_error",
    "internal_error",  # a bug in vtkernel (its traceback is in the kernel log), not the request's fault
]
ERROR_CODES: tuple[str, ...] = ErrorCode.__args__  # type: ignore[attr-defined]

Quantize = Literal["now", "step", "beat", "bar"]


class VTError(Exception):
    """A user-facing error with a stable code and one line of message.

    Raised by validation and by the engine's pure update functions; never
    carries a traceback to users (see `_render_traceback_`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def _render_traceback_(self) -> list[str]:
        # IPython shows exactly this one line instead of a traceback.
        return [f"\x1b[31mvt error\x1b[0m [{self.code}] {self.message}"]


# --------------------------------------------------------------------------
# Commands (SPEC §4)
# --------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"bad module name {value!r}: use letters, digits and _, not starting with a digit, at most 64")
    return value


def _check_port(value: str) -> str:
    if not PORT_RE.fullmatch(value):
        raise ValueError(f"bad port {value!r}: expected MODULE.PORT")
    return value


_SCALARS = (int, float, bool, type(None))


def find_unencodable(value: Any) -> str | None:
    """The first lone surrogate in any string of `value` (keys and nested lists/maps too), or None.

    JSON may carry `"\\udfff"`, but such a string cannot be encoded as UTF-8,
    so a document that held one could be sent to nobody: every delta and
    snapshot would fail. Iterative, so a deep value cannot exhaust the stack.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return str(v[exc.start])
        elif t in _SCALARS:
            continue
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, str):  # a str subclass
            stack.append(str(v))
    return None


def _surrogate_message(what: str, char: str) -> str:
    return f"{what} holds a lone surrogate {char!r}, which is not valid Unicode text"


def _check_value(value: Any) -> Any:
    char = find_unencodable(value)
    if char is not None:
        raise VTError("invalid_value", _surrogate_message("the value", char))
    return value


def _check_text(value: Any) -> Any:
    char = find_unencodable(value)
    if char is not None:
        raise VTError("invalid_command", _surrogate_message("a string", char))
    return value


class _Command(BaseModel):
    model_config = _STRICT


class AddModule(_Command):
    op: Literal["add_module"] = "add_module"
    name: str
    type: str
    params: dict[str, Any] | None = None
    quantize: Quantize | None = None

    _name = field_validator("name")(_check_name)
    _type = field_validator("type")(_check_text)
    _params = field_validator("params")(_check_value)


class RemoveModule(_Command):
    op: Literal["remove_module"] = "remove_module"
    name: str
    quantize: Quantize | None = None

    _name = field_validator("name")(_check_name)


class SetParam(_Command):
    op: Literal["set_param"] = "set_param"
    module: str
    param: str
    value: Any
    quantize: Quantize | None = None

    _module = field_validator("module")(_check_name)
    _param = field_validator("param")(_check_name)
    _value = field_validator("value")(_check_value)


class Connect(_Command):
    op: Literal["connect"] = "connect"
    src: str
    dst: str
    quantize: Quantize | None = None

    _ports = field_validator("src", "dst")(_check_port)


class Disconnect(_Command):
    op: Literal["disconnect"] = "disconnect"
    src: str
    dst: str
    quantize: Quantize | None = None

    _ports = field_validator("src", "dst")(_check_port)


class SetBpm(_Command):
    op: Literal["set_bpm"] = "set_bpm"
    # Range is checked by the engine so that a bpm of 5 is `invalid_value`,
    # not `invalid_command` (it has the right shape, a bad value).
    bpm: float
    quantize: Quantize | None = None

    @field_validator("bpm", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("bpm must be a number")
        return v


class SetMeter(_Command):
    op: Literal["set_meter"] = "set_meter"
    # Beats per bar; the range (1..64) is checked by the engine, so 0 is `invalid_value`.
    meter: int
    quantize: Quantize | None = None

    @field_validator("meter", mode="before")
    @classmethod
    def _whole_number(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError("meter must be a whole number of beats")
        return int(v)


class SetLink(_Command):
    """Join (`true`) or leave an Ableton Link session (SPEC §10). Like play/stop, not undoable."""

    op: Literal["set_link"] = "set_link"
    link: bool
    # Also share play/stop with the session (Link's start/stop sync); None leaves it as it is.
    start_stop: bool | None = None


class Play(_Command):
    op: Literal["play"] = "play"
    quantize: Quantize | None = None


class Stop(_Command):
    op: Literal["stop"] = "stop"
    quantize: Quantize | None = None


class Undo(_Command):
    op: Literal["undo"] = "undo"


class Redo(_Command):
    op: Literal["redo"] = "redo"


class Batch(_Command):
    op: Literal["batch"] = "batch"
    commands: list[Command]


Command = Annotated[
    Union[AddModule, RemoveModule, SetParam, Connect, Disconnect, SetBpm, SetMeter, SetLink, Play, Stop, Batch, Undo, Redo],
    Field(discriminator="op"),
]
Batch.model_rebuild()

COMMAND_MODELS: dict[str, type[BaseModel]] = {
    m.model_fields["op"].default: m
    for m in (AddModule, RemoveModule, SetParam, Connect, Disconnect, SetBpm, SetMeter, SetLink, Play, Stop, Batch, Undo, Redo)
}

_command_adapter: TypeAdapter[Any] = TypeAdapter(Command)


def parse_command(data: Any) -> Any:
    """Validate a JSON-shaped command; raise VTError(`invalid_command`) with one line."""
    if not isinstance(data, dict):
        raise VTError("invalid_command", "a command must be a JSON object with an 'op'")
    op = data.get("op")
    if op not in COMMAND_MODELS:
        known = ", ".join(sorted(COMMAND_MODELS))
        raise VTError("invalid_command", f"unknown op {op!r}; expected one of: {known}")
    try:
        return _command_adapter.validate_python(data)
    except ValidationError as exc:
        raise VTError("invalid_command", describe_validation_error(exc, op)) from None


def describe_validation_error(exc: ValidationError, what: str) -> str:
    errors = exc.errors()
    # An unknown field explains a "missing" one (a typo such as `vaule`), so say it first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    parts = [str(p) for p in err["loc"]]
    if parts and parts[0] == what:  # the discriminator tag pydantic puts first
        parts = parts[1:]
    loc = ".".join(parts)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{what}: unknown field {loc!r}"
    if kind == "missing":
        return f"{what}: missing field {loc!r}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{what}: {loc}: {msg}" if loc else f"{what}: {msg}"


def command_to_dict(cmd: BaseModel) -> dict[str, Any]:
    return cmd.model_dump(exclude_none=True)


# --------------------------------------------------------------------------
# Comm messages (SPEC §5)
# --------------------------------------------------------------------------

_MSG = ConfigDict(extra="forbid")
MsgId = Union[int, str]


class Hello(BaseModel):
    """Data of the `comm_open` a client sends."""

    model_config = ConfigDict(extra="allow")
    protocol: Literal[1] = 1
    shell: str = "unknown"
    telemetry: bool = False

    @field_validator("shell")
    @classmethod
    def _shell_name(cls, v: str) -> str:
        # The shell becomes the `origin` of every delta sent to every client: keep it short.
        if len(v) > MAX_ORIGIN_CHARS:
            raise VTError("bad_message", f"the shell name has {len(v)} characters; at most {MAX_ORIGIN_CHARS}")
        return str(_check_text(v))


class SnapshotMsg(BaseModel):
    model_config = _MSG
    type: Literal["snapshot"] = "snapshot"
    version: int
    state: dict[str, Any]


class DeltaMsg(BaseModel):
    model_config = _MSG
    type: Literal["delta"] = "delta"
    base: int
    version: int
    ops: list[dict[str, Any]]
    origin: str


class AckMsg(BaseModel):
    model_config = _MSG
    type: Literal["ack"] = "ack"
    id: MsgId | None
    version: int
    output: str | None = None


class ErrorBody(BaseModel):
    model_config = _MSG
    code: str
    message: str


class ErrorMsg(BaseModel):
    model_config = _MSG
    type: Literal["error"] = "error"
    id: MsgId | None
    error: ErrorBody


class TelemetryMsg(BaseModel):
    model_config = _MSG
    type: Literal["telemetry"] = "telemetry"
    beat: float
    playing: bool
    values: dict[str, Any]
    # In an Ableton Link session only: {"peers", "tempo", "quantum", "phase_offset_ms"}.
    link: dict[str, Any] | None = None


class ScriptMsg(BaseModel):
    model_config = _MSG
    type: Literal["script"] = "script"
    version: int
    text: str


class ReportMsg(BaseModel):
    """Extension: a report every client should show (the terminal prints it, the panel logs it).

    `source` is `file` (a watched file's run: an error with its line, or what
    a save applied), `session` (autosave trouble), `timing` (the scheduler:
    an output that cannot send, a muted module) or `plugin` (a module plugin
    that failed to load, is still importing, or came late). `text` is at most 4,000
    characters; `path` names the watched file.
    """

    model_config = _MSG
    type: Literal["report"] = "report"
    source: Literal["file", "session", "timing", "plugin"]
    text: str
    error: bool = False
    path: str | None = None


class SchemaMsg(BaseModel):
    """Extension: the param schema of every module type, sent after the snapshot.

    GUI clients build their controls from it; others may ignore it.
    """

    model_config = _MSG
    type: Literal["schema"] = "schema"
    types: dict[str, Any]


class CommandMsg(BaseModel):
    model_config = _MSG
    type: Literal["command"]
    id: MsgId | None = None
    command: dict[str, Any]


class TextMsg(BaseModel):
    model_config = _MSG
    type: Literal["text"]
    id: MsgId | None = None
    text: str

    _text = field_validator("text")(_check_text)


class ResyncMsg(BaseModel):
    model_config = _MSG
    type: Literal["resync"]


class GetScriptMsg(BaseModel):
    model_config = _MSG
    type: Literal["get_script"]
    id: MsgId | None = None


class ScriptViewMsg(BaseModel):
    """Extension: the client's code shell is showing (`on`) or hidden; scripts go only while it shows.

    A hello with `"script": true` starts with it showing. Turning it on sends
    the current script at once.
    """

    model_config = _MSG
    type: Literal["script_view"]
    id: MsgId | None = None
    on: StrictBool


class RunScriptMsg(BaseModel):
    """Extension: the code shell's EDIT mode applies an edited script."""

    model_config = _MSG
    type: Literal["run_script"]
    id: MsgId | None = None
    text: str

    _text = field_validator("text")(_check_text)


MAX_HAPS_CYCLES = 64.0  # the longest window a `get_haps` may ask for
MAX_HAPS_WATCHES = 32  # modules one client may watch at once


class GetHapsMsg(BaseModel):
    """Extension: what a source module plays over a window of cycles (the GUI's pianoroll).

    `svg` asks for the pianoroll drawn too; `watch` asks for a fresh `haps`
    (with `id` null) each time that module or the clock's meter changes,
    until a `get_haps` for the module with `watch` false.
    """

    model_config = _MSG
    type: Literal["get_haps"]
    id: MsgId | None = None
    module: str
    cycles: tuple[float, float] = (0.0, 4.0)
    svg: bool = False
    watch: bool = False
    width: int = Field(640, ge=160, le=4096)  # of the drawing, in CSS pixels (the panel sends its own width)

    _module = field_validator("module")(_check_name)

    @field_validator("cycles")
    @classmethod
    def _window(cls, v: tuple[float, float]) -> tuple[float, float]:
        begin, end = v
        if not (math.isfinite(begin) and math.isfinite(end) and 0 < end - begin <= MAX_HAPS_CYCLES):
            raise ValueError(f"cycles must be [begin, end] with 0 < end - begin <= {MAX_HAPS_CYCLES:g}")
        return v


class HapsMsg(BaseModel):
    """Extension: the reply to `get_haps`, and the updates of a watched module (`id` null)."""

    model_config = _MSG
    type: Literal["haps"] = "haps"
    id: MsgId | None
    module: str
    version: int
    cycles: tuple[float, float]
    cycle_beats: float
    haps: list[tuple[float, float, Any]]  # (begin, end, value), cycles
    truncated: bool = False
    svg: str | None = None


ClientMsg = Annotated[
    Union[CommandMsg, TextMsg, ResyncMsg, GetScriptMsg, RunScriptMsg, GetHapsMsg, ScriptViewMsg],
    Field(discriminator="type"),
]
CLIENT_MSG_TYPES = ("command", "text", "resync", "get_script", "run_script", "get_haps", "script_view")
_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMsg)


def parse_client_message(data: Any) -> Any:
    """Validate a client->kernel message; raise VTError(`bad_message`) with one line."""
    if not isinstance(data, dict):
        raise VTError("bad_message", "a message must be a JSON object with a 'type'")
    kind = data.get("type")
    if kind not in CLIENT_MSG_TYPES:
        raise VTError("bad_message", f"unknown message type {kind!r}; expected one of: {', '.join(CLIENT_MSG_TYPES)}")
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        raise VTError("bad_message", describe_validation_error(exc, str(kind))) from None


def message_size(data: Any) -> int:
    """Size in bytes of a message as JSON (what crossed the wire, near enough)."""
    return len(json.dumps(data, separators=(",", ":"), default=str).encode())


def error_msg(msg_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "id": msg_id, "error": {"code": code, "message": message}}
