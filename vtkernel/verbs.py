"""The command language's verbs: one table for the parser, `help`, completion and dispatch.

Protocol layer: pure data, no imports from the project, so the shells may
read it (they speak the command language over comm `text`). Every consumer
reads this table and nothing else:

- `vtkernel.language` parses a line against it (argument counts, usage in
  errors, engine command or `ShellAction`) and prints `help` from it;
- the kernel dispatches a `ShellAction` by its `thread`;
- the terminal shell completes verbs and their arguments from `args`, and
  recognises its own changes by `edits`.

Adding a verb is one `Verb(...)` line in `VERBS` (plus, for an engine verb,
its command builder in `vtkernel.language`; for a kernel verb, the
service the kernel registers under the same name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What an argument completes to in the terminal shell (`Verb.args`):
#   module, param (NAME.PARAM), value (of the param named before it), output, input,
#   source (a connected output), target (an input connected to the source before it),
#   name (a new name: nothing to offer), type (a module type), assign (PARAM=VALUE of
#   the type before it), verb, path (a file), text (free text).
ArgKind = Literal[
    "module", "param", "value", "output", "input", "source", "target", "name", "type", "assign", "verb", "path", "text", "onoff"
]


@dataclass(frozen=True, slots=True)
class Verb:
    """One verb of the command language."""

    name: str
    usage: str
    summary: str
    min_args: int = 0
    max_args: int = 0
    # `engine`: builds an engine command (quantizable with @now/@step/@beat/@bar);
    # `kernel`: a `ShellAction` the kernel (or `vt`) carries out.
    kind: Literal["engine", "kernel"] = "kernel"
    # Where the kernel runs a kernel verb sent from a shell: `inline` on the hub thread
    # (reads a snapshot, cannot block), `main` in order with cells (user code, the
    # namespace), `worker` on the hub's verb worker (may block: files, processes).
    thread: Literal["inline", "main", "worker"] = "worker"
    # Whether the verb changes the document as this shell's own edit (a terminal
    # does not print those changes back to its user as "made elsewhere").
    edits: bool = False
    # What each argument completes to; the last one repeats (`add NAME TYPE PARAM=VALUE...`).
    args: tuple[ArgKind, ...] = ()
    # Only meaningful in a notebook (a widget): shells get a one-line pointer instead.
    notebook_only: bool = False


MANY = 1 << 16

VERBS: dict[str, Verb] = {
    v.name: v
    for v in (
        Verb("add", "add NAME TYPE [PARAM=VALUE ...]", "add a module", 2, MANY, "engine", edits=True, args=("name", "type", "assign")),
        Verb("rm", "rm NAME", "remove a module and its connections", 1, 1, "engine", edits=True, args=("module",)),
        Verb("set", "set NAME.PARAM VALUE", "set a param", 2, 2, "engine", edits=True, args=("param", "value")),
        Verb("get", "get NAME.PARAM", "print a param's value as JSON", 1, 1, thread="inline", args=("param",)),
        Verb("connect", "connect SRC DST", "connect MODULE.OUT to MODULE.IN", 2, 2, "engine", edits=True, args=("output", "input")),
        Verb("disconnect", "disconnect SRC DST", "remove a connection", 2, 2, "engine", edits=True, args=("source", "target")),
        Verb("bpm", "bpm VALUE", "set the tempo (20..999)", 1, 1, "engine", edits=True),
        Verb("meter", "meter VALUE", "set the beats per bar (1..64), where @bar lands", 1, 1, "engine", edits=True),
        Verb("link", "link on|sync|off", "join an Ableton Link session (tempo and phase; sync: play/stop too) or leave it", 1, 1, "engine", edits=True, args=("onoff",)),
        Verb("play", "play", "start the transport", kind="engine", edits=True),
        Verb("stop", "stop", "stop the transport", kind="engine", edits=True),
        Verb("undo", "undo", "undo the last patch edit", kind="engine", edits=True),
        Verb("redo", "redo", "redo", kind="engine", edits=True),
        Verb("state", "state", "print the document as JSON", thread="inline"),
        Verb("open", "open PATH", "bind the kernel to a session file (autosaved)", 1, 1, edits=True, args=("path",)),
        Verb("save", "save [PATH]", "save the session now (or save as PATH)", 0, 1, args=("path",)),
        Verb("load", "load PATH", "replace the document with a file's (undoable)", 1, 1, edits=True, args=("path",)),
        Verb("close", "close", "save and close the session file, releasing its lock"),
        Verb("watch", "watch PATH", "run a Python file and re-run its changes on save", 1, 1, thread="main", args=("path",)),
        Verb("unwatch", "unwatch PATH", "stop watching a file", 1, 1, thread="main", args=("path",)),
        Verb("script", "script", "print the Python script that rebuilds the document"),
        Verb("history", "history [N]", "list recent versions", 0, 1, thread="inline"),
        Verb("stats", "stats", "engine and clock metrics"),
        Verb("doctor", "doctor", "pre-flight check: kernelspec, versions, receivers, MIDI, priority, disk"),
        Verb("restart", "restart", "restart the timing process, keeping the transport's beat"),
        Verb("panel", "panel", "show the GUI panel (in a notebook)", notebook_only=True),
        Verb("help", "help [VERB]", "this help", 0, 1, thread="inline", args=("verb",)),
    )
}

# Words a shell reads as "leave the shell" (the terminal's own, never sent to the kernel).
SHELL_EXIT_WORDS = ("quit", "exit")


def engine_verbs() -> frozenset[str]:
    return frozenset(name for name, v in VERBS.items() if v.kind == "engine")
