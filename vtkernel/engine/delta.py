"""Render changed paths into an RFC 6902 JSON Patch between two documents.

Pure. The engine records, per version, only the paths it touched; the hub
unions the paths of every version a client has not seen yet and renders one
patch from the client's base document to the newest one. Values always come
from the two documents, never from the intermediate commands, so coalescing
any number of versions still delivers the final state exactly.

Connections are a sorted list in the JSON document, and a change names one
by its key (`("connections", SRC, DST)`), not by an index that depends on
the version. `render_ops` turns the touched keys into element ops: every
`remove` first, at its index in `base`, highest index first, then every
`add` at its index in `new`, lowest first. Applied in order, each index is
right when its op runs, so one connect among 2,000 costs one small op, not
the list. A path `("connections",)` (a whole document loaded) still replaces
the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vtkernel.engine.document import ConnKey, Document, Path
from vtkernel.jsonpatch import MISSING, encode_pointer


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
    keys: list[ConnKey] = []
    for path in minimal_paths(paths):
        if path[0] == "connections" and len(path) == 3:
            if not keys:
                ops.append({})  # where the connection ops go, among the others
            keys.append((path[1], path[2]))
            continue
        before = base.get_path(path)
        after = new.get_path(path)
        if before is MISSING and after is MISSING:
            continue
        pointer = encode_pointer(path)
        if before is MISSING:
            ops.append({"op": "add", "path": pointer, "value": after})
        elif after is MISSING:
            ops.append({"op": "remove", "path": pointer})
        elif before != after or type(before) is not type(after):
            ops.append({"op": "replace", "path": pointer, "value": after})
    if keys:
        at = ops.index({})
        ops[at : at + 1] = connection_ops(base, new, keys)
    return ops


def connection_ops(base: Document, new: Document, keys: Iterable[ConnKey]) -> list[dict[str, Any]]:
    """Element ops on `/connections` for the connections `keys` that differ between `base` and `new`."""
    old, now = base.connections, new.connections
    removed = sorted({k for k in keys if k in old and k not in now}, key=old.index, reverse=True)
    added = sorted({k for k in keys if k in now and k not in old}, key=now.index)
    ops: list[dict[str, Any]] = [{"op": "remove", "path": f"/connections/{old.index(k)}"} for k in removed]
    ops += [{"op": "add", "path": f"/connections/{now.index(k)}", "value": {"src": k[0], "dst": k[1]}} for k in added]
    return ops
