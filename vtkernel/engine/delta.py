"""Render changed paths into an RFC 6902 JSON Patch between two documents.

Pure. The engine records, per version, only the paths it touched; the hub
unions the paths of every version a client has not seen yet and renders one
patch from the client's base document to the newest one. Values always come
from the two documents, never from the intermediate commands, so coalescing
any number of versions still delivers the final state exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vtkernel.engine.document import MISSING, Document, Path


def _pointer(path: Path) -> str:
    return "/" + "/".join(seg.replace("~", "~0").replace("/", "~1") for seg in path)


def minimal_paths(paths: Iterable[Path]) -> list[Path]:
    """Drop paths covered by a shorter touched prefix; keep first-seen order."""
    unique = list(dict.fromkeys(paths))
    prefixes = set(unique)
    out = []
    for p in unique:
        if any(p[:i] in prefixes for i in range(1, len(p))):
            continue
        out.append(p)
    return out


def render_ops(base: Document, new: Document, paths: Iterable[Path]) -> list[dict[str, Any]]:
    """JSON Patch ops taking `base` to `new`, given (a superset of) the paths that changed."""
    ops: list[dict[str, Any]] = []
    for path in minimal_paths(paths):
        before = base.get_path(path)
        after = new.get_path(path)
        if before is MISSING and after is MISSING:
            continue
        pointer = _pointer(path)
        if before is MISSING:
            ops.append({"op": "add", "path": pointer, "value": after})
        elif after is MISSING:
            ops.append({"op": "remove", "path": pointer})
        elif before != after or type(before) is not type(after):
            ops.append({"op": "replace", "path": pointer, "value": after})
    return ops
