"""Which changed paths a command asked to quantize. Pure.

The engine applies every command at once; the scheduler delays the *sound*
of a quantized change to the next step, beat or bar. For that it needs, per
published version, the paths that came from quantized commands:
`Change.quantize`, a tuple of `(path, "step" | "beat" | "bar")`. Paths not
listed take effect at once. The engine builds it with `quantized_paths`
for each command it applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vtkernel.engine.document import Path
from vtkernel.protocol import (
    AddModule,
    Batch,
    Connect,
    Disconnect,
    Play,
    RemoveModule,
    SetBpm,
    SetMeter,
    SetParam,
    Stop,
)

QUANTIZED = ("step", "beat", "bar")


def _touches(cmd: Any, path: Path) -> bool:
    """Whether `cmd` may have produced the change at `path`."""
    if isinstance(cmd, SetParam):
        return path[:4] == ("modules", cmd.module, "params", cmd.param) or path == ("modules", cmd.module)
    if isinstance(cmd, (AddModule, RemoveModule)):
        # Removing a module removes its connections: ("connections", SRC, DST) with its name in one end.
        return path[:2] == ("modules", cmd.name) or (path[0] == "connections" and _ends_at(path, cmd.name))
    if isinstance(cmd, (Connect, Disconnect)):
        return path == ("connections", cmd.src, cmd.dst) or path == ("connections",)
    if isinstance(cmd, SetBpm):
        return path == ("clock", "bpm")
    if isinstance(cmd, SetMeter):
        return path == ("clock", "meter")
    if isinstance(cmd, (Play, Stop)):
        return path == ("clock", "playing")
    return False


def _ends_at(path: Path, module: str) -> bool:
    if len(path) != 3:
        return path == ("connections",)
    return any(end.split(".", 1)[0] == module for end in path[1:])


def quantized_paths(cmd: Any, changes: Iterable[Path]) -> list[tuple[Path, str]]:
    """The `(path, quantize)` pairs of one applied command (for `Change.quantize`).

    In a batch each sub-command keeps its own quantization: a path gets that
    of the last sub-command that may have touched it.
    """
    subs = cmd.commands if isinstance(cmd, Batch) else [cmd]
    if not any(getattr(sub, "quantize", None) in QUANTIZED for sub in subs):
        return []
    out = []
    for path in changes:
        q = None
        for sub in subs:
            if _touches(sub, path):
                q = getattr(sub, "quantize", None)
        if q in QUANTIZED:
            out.append((path, q))
    return out
