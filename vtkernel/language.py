"""The command language (SPEC §4): one parser for `%vt`, `%%vt`, the terminal and comm `text`.

A line parses to either an engine command (a `vtkernel.protocol` model) or a
`ShellAction` that the kernel carries out itself (state, get, open, save,
load, watch, ...). Parsing is pure and raises `VTError("invalid_command")`
with one line that says what was expected.

    add NAME TYPE [PARAM=VALUE ...]   rm NAME
    set NAME.PARAM VALUE              get NAME.PARAM
    connect SRC DST                   disconnect SRC DST
    bpm VALUE    meter VALUE    play    stop    undo    redo
    state        open PATH    save [PATH]    load PATH
    watch PATH   unwatch PATH
    script       history [N]   stats        help [WORD]

Any engine command may end with `@now`, `@step`, `@beat` or `@bar` to
quantize it to the next step, beat or bar of the clock.
VALUE is a JSON literal; a bare word is taken as a string.

`#` starts a comment on every verb when it begins the line or follows
whitespace, outside quotes: `set lfo1.rate 3  # faster` sets 3, while
`set drums.pattern "bd # x"` and `set a.name "#1"` keep their `#`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from vtkernel.protocol import VTError, parse_command

QUANTIZE = ("now", "step", "beat", "bar")


@dataclass(frozen=True)
class ShellAction:
    """A command-language verb that is not an engine command."""

    verb: str
    args: tuple[str, ...] = ()


# verb -> (usage, number of args: (min, max), what it does)
USAGE: dict[str, tuple[str, int, int, str]] = {
    "add": ("add NAME TYPE [PARAM=VALUE ...]", 2, 1 << 16, "add a module"),
    "rm": ("rm NAME", 1, 1, "remove a module and its connections"),
    "set": ("set NAME.PARAM VALUE", 2, 2, "set a param"),
    "get": ("get NAME.PARAM", 1, 1, "print a param's value as JSON"),
    "connect": ("connect SRC DST", 2, 2, "connect MODULE.OUT to MODULE.IN"),
    "disconnect": ("disconnect SRC DST", 2, 2, "remove a connection"),
    "bpm": ("bpm VALUE", 1, 1, "set the tempo (20..999)"),
    "meter": ("meter VALUE", 1, 1, "set the beats per bar (1..64), where @bar lands"),
    "play": ("play", 0, 0, "start the transport"),
    "stop": ("stop", 0, 0, "stop the transport"),
    "undo": ("undo", 0, 0, "undo the last patch edit"),
    "redo": ("redo", 0, 0, "redo"),
    "state": ("state", 0, 0, "print the document as JSON"),
    "open": ("open PATH", 1, 1, "bind the kernel to a session file (autosaved)"),
    "save": ("save [PATH]", 0, 1, "save the session now (or save as PATH)"),
    "load": ("load PATH", 1, 1, "replace the document with a file's (undoable)"),
    "close": ("close", 0, 0, "save and close the session file, releasing its lock"),
    "watch": ("watch PATH", 1, 1, "run a Python file and re-run its changes on save"),
    "unwatch": ("unwatch PATH", 1, 1, "stop watching a file"),
    "script": ("script", 0, 0, "print the Python script that rebuilds the document"),
    "history": ("history [N]", 0, 1, "list recent versions"),
    "stats": ("stats", 0, 0, "engine and clock metrics"),
    "doctor": ("doctor", 0, 0, "pre-flight check: kernelspec, versions, receivers, MIDI, priority, disk"),
    "panel": ("panel", 0, 0, "show the GUI panel (in a notebook)"),
    "help": ("help [VERB]", 0, 1, "this help"),
}
ENGINE_VERBS = {"add", "rm", "set", "connect", "disconnect", "bpm", "meter", "play", "stop", "undo", "redo"}


def parse_value(text: str) -> Any:
    """A JSON literal, or the bare word as a string."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def strip_comment(line: str) -> str:
    """`line` without its comment: a `#` at the start or after whitespace, outside '...' and "..." quotes.

    Inside double quotes a backslash escapes the next character, as in JSON,
    so `"a \\" # b"` stays one string. A `#` glued to a word (`bd#x`) is part of it.
    """
    if "#" not in line:
        return line
    quote = ""
    escaped = False
    prev_space = True
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and prev_space:
            return line[:i].rstrip()
        prev_space = ch.isspace()
    return line


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise VTError("invalid_command", f"cannot read the line: {exc}") from None


def _split_ref(ref: str, usage: str) -> tuple[str, str]:
    if ref.count(".") != 1:
        raise VTError("invalid_command", f"expected NAME.PARAM, got {ref!r}; usage: {usage}")
    module, param = ref.split(".")
    return module, param


_SET_RE = re.compile(r"^\s*set\s+(\S+)\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_QUANT_RE = re.compile(r"^(.*?)\s+@(\w+)$", re.DOTALL)


def parse_line(line: str) -> BaseModel | ShellAction | None:
    """Parse one line; None for a blank or comment line."""
    line = strip_comment(line)
    m = _SET_RE.match(line)
    if m is not None:
        # VALUE is the rest of the line, so JSON with spaces needs no quoting: set s.steps [60, null, 62]
        return _parse_set(m.group(1), m.group(2))
    words = _split(line.strip())
    if not words:
        return None
    verb, args = words[0].lower(), words[1:]
    if verb not in USAGE:
        raise VTError("invalid_command", f"unknown command {words[0]!r}; try: {', '.join(USAGE)}")
    quantize = None
    if args and args[-1].startswith("@") and verb in ENGINE_VERBS:
        quantize = args.pop()[1:]
        if quantize not in QUANTIZE:
            raise VTError("invalid_command", f"unknown quantization @{quantize}; use @now, @step, @beat or @bar")
    usage, lo, hi, _ = USAGE[verb]
    if not lo <= len(args) <= hi:
        raise VTError("invalid_command", f"usage: {usage}")
    if verb not in ENGINE_VERBS:
        return ShellAction(verb, tuple(args))
    data: dict[str, Any]
    if verb == "add":
        params: dict[str, Any] = {}
        for word in args[2:]:
            key, eq, raw = word.partition("=")
            if not eq or not key:
                raise VTError("invalid_command", f"expected PARAM=VALUE, got {word!r}; usage: {usage}")
            params[key] = parse_value(raw)
        data = {"op": "add_module", "name": args[0], "type": args[1]}
        if params:
            data["params"] = params
    elif verb == "rm":
        data = {"op": "remove_module", "name": args[0]}
    elif verb in ("connect", "disconnect"):
        data = {"op": verb, "src": args[0], "dst": args[1]}
    elif verb == "bpm":
        data = {"op": "set_bpm", "bpm": parse_value(args[0])}
    elif verb == "meter":
        data = {"op": "set_meter", "meter": parse_value(args[0])}
    else:
        data = {"op": verb}
    if quantize is not None:
        if verb in ("undo", "redo"):
            raise VTError("invalid_command", f"{verb} cannot be quantized")
        data["quantize"] = quantize
    return parse_command(data)


def _parse_set(ref: str, rest: str) -> BaseModel:
    usage = USAGE["set"][0]
    quantize = None
    q = _QUANT_RE.match(rest)
    if q is not None:
        rest, quantize = q.group(1), q.group(2)
        if quantize not in QUANTIZE:
            raise VTError("invalid_command", f"unknown quantization @{quantize}; use @now, @step, @beat or @bar")
    module, param = _split_ref(ref, usage)
    data: dict[str, Any] = {"op": "set_param", "module": module, "param": param, "value": parse_value(rest)}
    if quantize is not None:
        data["quantize"] = quantize
    return parse_command(data)


def parse_get(action: ShellAction) -> tuple[str, str]:
    return _split_ref(action.args[0], USAGE["get"][0])


def help_text(verb: str | None = None) -> str:
    if verb is not None:
        if verb not in USAGE:
            raise VTError("invalid_command", f"unknown command {verb!r}; try: {', '.join(USAGE)}")
        usage, _, _, what = USAGE[verb]
        return f"{usage}  -- {what}"
    width = max(len(u) for u, *_ in USAGE.values())
    lines = [f"{u:<{width}}  {what}" for u, _, _, what in USAGE.values()]
    lines.append("Engine commands take an optional @now/@step/@beat/@bar. VALUE is JSON or a bare word.")
    return "\n".join(lines)
