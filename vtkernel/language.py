"""The command language (SPEC §4): one parser for `%vt`, `%%vt`, the terminal and comm `text`.

A line parses to either an engine command (a `vtkernel.protocol` model) or a
`ShellAction` that the kernel carries out itself (state, get, open, save,
load, watch, ...). Parsing is pure and raises `VTError("invalid_command")`
with one line that says what was expected. The verbs, their arguments and
their help come from one table, `vtkernel.verbs.VERBS`.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from vtkernel.protocol import VTError, parse_command
from vtkernel.verbs import VERBS, engine_verbs

QUANTIZE = ("now", "step", "beat", "bar")


@dataclass(frozen=True)
class ShellAction:
    """A command-language verb that is not an engine command."""

    verb: str
    args: tuple[str, ...] = ()


# Each engine verb's command, from its arguments (checked against the table at import).
def _add(args: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for word in args[2:]:
        key, eq, raw = word.partition("=")
        if not eq or not key:
            raise VTError("invalid_command", f"expected PARAM=VALUE, got {word!r}; usage: {VERBS['add'].usage}")
        params[key] = parse_value(raw)
    data: dict[str, Any] = {"op": "add_module", "name": args[0], "type": args[1]}
    if params:
        data["params"] = params
    return data


def _link(word: str) -> dict[str, Any]:
    """`link on` (tempo and phase), `link sync` (play/stop too), `link off`."""
    if word.lower() == "sync":
        return {"op": "set_link", "link": True, "start_stop": True}
    on = _on_off(word, "link on|sync|off")
    return {"op": "set_link", "link": on, "start_stop": False}


def _on_off(word: str, usage: str) -> bool:
    value = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}.get(word.lower())
    if value is None:
        raise VTError("invalid_command", f"expected on or off, got {word!r}; usage: {usage}")
    return value


_BUILDERS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "add": _add,
    "rm": lambda a: {"op": "remove_module", "name": a[0]},
    "connect": lambda a: {"op": "connect", "src": a[0], "dst": a[1]},
    "disconnect": lambda a: {"op": "disconnect", "src": a[0], "dst": a[1]},
    "bpm": lambda a: {"op": "set_bpm", "bpm": parse_value(a[0])},
    "meter": lambda a: {"op": "set_meter", "meter": parse_value(a[0])},
    "link": lambda a: _link(a[0]),
    "play": lambda a: {"op": "play"},
    "stop": lambda a: {"op": "stop"},
    "undo": lambda a: {"op": "undo"},
    "redo": lambda a: {"op": "redo"},
    # `set` is parsed on its own (its VALUE is the rest of the line): see `_parse_set`.
}
_missing = engine_verbs() - set(_BUILDERS) - {"set"}
assert not _missing, f"engine verbs without a command builder: {sorted(_missing)}"


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
    spec = VERBS.get(verb)
    if spec is None:
        raise VTError("invalid_command", f"unknown command {words[0]!r}; try: {', '.join(VERBS)}")
    quantize = None
    if args and args[-1].startswith("@") and spec.kind == "engine":
        quantize = args.pop()[1:]
        if quantize not in QUANTIZE:
            raise VTError("invalid_command", f"unknown quantization @{quantize}; use @now, @step, @beat or @bar")
    if not spec.min_args <= len(args) <= spec.max_args:
        raise VTError("invalid_command", f"usage: {spec.usage}")
    if spec.kind != "engine":
        return ShellAction(verb, tuple(args))
    data = _BUILDERS[verb](args)
    if quantize is not None:
        if verb in ("undo", "redo"):
            raise VTError("invalid_command", f"{verb} cannot be quantized")
        data["quantize"] = quantize
    return parse_command(data)


def _parse_set(ref: str, rest: str) -> BaseModel:
    usage = VERBS["set"].usage
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
    return _split_ref(action.args[0], VERBS["get"].usage)


def help_text(verb: str | None = None) -> str:
    """`help`: every verb of the table, or one."""
    if verb is not None:
        spec = VERBS.get(verb.lower())
        if spec is None:
            raise VTError("invalid_command", f"unknown command {verb!r}; try: {', '.join(VERBS)}")
        return f"{spec.usage}  -- {spec.summary}"
    width = max(len(v.usage) for v in VERBS.values())
    lines = [f"{v.usage:<{width}}  {v.summary}" for v in VERBS.values()]
    lines.append("Engine commands take an optional @now/@step/@beat/@bar. VALUE is JSON or a bare word.")
    return "\n".join(lines)
