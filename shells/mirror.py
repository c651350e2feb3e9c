"""A client's copy of the document: snapshots, RFC 6902 deltas, and one-line change descriptions.

Pure (no I/O, no threads, no Jupyter), so the protocol rules a shell relies on
are tested without a kernel:

- deltas are applied with `vtkernel.jsonpatch.apply_patch` (the project's one
  JSON Patch implementation, shared with the engine), which never mutates its
  input: a reader holding the old document never sees a half-applied delta.
  Connection changes arrive as element ops (`add`/`remove` at
  `/connections/INDEX` of the sorted list);
- `Mirror.apply` accepts a delta only if its `base` is the version held, and
  returns `None` on a gap (the caller then sends `resync`);
- `describe` turns the ops of one delta into short lines such as
  `lfo1.rate = 3.0`, each with a key (`lfo1.rate`, `lfo1`, `clock.bpm`,
  `connection lfo1.out lfo2.rate`) used to recognise a shell's own changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vtkernel.jsonpatch import PatchError, apply_patch, decode_pointer

# --------------------------------------------------------------------------
# Describing changes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change of one delta, as a short line, with a key naming what it touched."""

    key: str
    text: str


def show(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= 60 else text[:57] + "..."


def _clock_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name == "playing":
            out.append(Change("clock.playing", "play" if after.get(name) else "stop"))
        else:
            out.append(Change(f"clock.{name}", f"{name} = {show(after.get(name))}"))
    return out


def _connection_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Change]:
    old = {(c.get("src"), c.get("dst")) for c in before or []}
    new = {(c.get("src"), c.get("dst")) for c in after or []}
    out = [Change(f"connection {s} {d}", f"disconnect {s} {d}") for s, d in sorted(old - new)]
    out += [Change(f"connection {s} {d}", f"connect {s} {d}") for s, d in sorted(new - old)]
    return out


def _param_changes(module: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    return [
        Change(f"{module}.{p}", f"{module}.{p} = {show(after[p])}")
        for p in after
        if p not in before or before[p] != after[p]
    ]


def describe(before: dict[str, Any], after: dict[str, Any], ops: list[dict[str, Any]]) -> list[Change]:
    """Short lines for the ops of one delta (values are read from `after`, the patched document)."""
    out: list[Change] = []
    connections_done = False
    for op in ops:
        try:
            parts = decode_pointer(op.get("path", ""))
        except PatchError:
            continue
        head = parts[0] if parts else ""
        if head == "modules" and len(parts) >= 2:
            name = parts[1]
            old = (before.get("modules") or {}).get(name)
            new = (after.get("modules") or {}).get(name)
            if new is None:
                out.append(Change(name, f"rm {name}"))
            elif old is None:
                out.append(Change(name, f"add {name} {new.get('type')}"))
            elif old.get("type") != new.get("type"):
                out.append(Change(name, f"replace {name} with a {new.get('type')}"))
            else:
                out.extend(_param_changes(name, old.get("params") or {}, new.get("params") or {}))
        elif head == "modules":
            old_mods = before.get("modules") or {}
            new_mods = after.get("modules") or {}
            for name in sorted(set(old_mods) - set(new_mods)):
                out.append(Change(name, f"rm {name}"))
            for name in sorted(new_mods):
                if name not in old_mods:
                    out.append(Change(name, f"add {name} {new_mods[name].get('type')}"))
                else:
                    out.extend(
                        _param_changes(name, old_mods[name].get("params") or {}, new_mods[name].get("params") or {})
                    )
        elif head == "connections":
            if not connections_done:  # one delta may hold many element ops: compare the lists once
                connections_done = True
                out.extend(_connection_changes(before.get("connections") or [], after.get("connections") or []))
        elif head == "clock":
            out.extend(_clock_changes(before.get("clock") or {}, after.get("clock") or {}))
        else:
            out.append(Change(op.get("path", ""), f"{op.get('op')} {op.get('path')}"))
    return list(dict.fromkeys(out))  # a coalesced delta may name one thing twice


# --------------------------------------------------------------------------
# The mirror
# --------------------------------------------------------------------------


class Mirror:
    """The newest document a client holds, and its version.

    Owner: one thread applies snapshots and deltas; other threads may read
    `doc` and `version` at any time (each delta swaps in a new document).
    """

    def __init__(self) -> None:
        self.version: int | None = None
        self.doc: dict[str, Any] = {}
        self.schema: dict[str, Any] = {}

    @property
    def ready(self) -> bool:
        return self.version is not None

    def load(self, msg: dict[str, Any]) -> None:
        self.doc = msg["state"]
        self.version = msg["version"]

    def apply(self, msg: dict[str, Any]) -> list[Change] | None:
        """Apply a delta and describe it; `None` means a gap or a bad patch: resync."""
        if self.version is None or msg.get("base") != self.version:
            return None
        before = self.doc
        try:
            after = apply_patch(before, msg.get("ops") or [])
        except (PatchError, KeyError, TypeError):
            return None
        self.doc, self.version = after, msg["version"]
        return describe(before, after, msg.get("ops") or [])

    # ----- names for completion -------------------------------------------------

    def modules(self) -> dict[str, Any]:
        return dict(self.doc.get("modules") or {})

    def params(self) -> list[str]:
        return [f"{m}.{p}" for m, mod in self.modules().items() for p in (mod.get("params") or {})]

    def outputs(self) -> list[str]:
        out = []
        for name, mod in self.modules().items():
            spec = self.schema.get(mod.get("type"), {})
            out += [f"{name}.{port}" for port in spec.get("outputs", ["out"])]
        return out

    def inputs(self) -> list[str]:
        out = []
        for name, mod in self.modules().items():
            spec = self.schema.get(mod.get("type"), {})
            ports = spec.get("inputs") or list(mod.get("params") or {})
            out += [f"{name}.{port}" for port in ports]
        return out

    def _param_spec(self, type_name: str, param: str) -> dict[str, Any]:
        spec = ((self.schema.get(type_name) or {}).get("params") or {}).get(param)
        return spec if isinstance(spec, dict) else {}

    def values_of(self, ref: str) -> list[str]:
        """Values worth offering for `MODULE.PARAM`: an enum's choices, `true`/`false` for a bool."""
        module, _, param = ref.partition(".")
        mod = self.modules().get(module) or {}
        return _choices(self._param_spec(mod.get("type", ""), param))

    def assignments(self, type_name: str, current: str) -> list[str]:
        """`PARAM=` for each param of `type_name`, or `PARAM=VALUE` once `current` names the param."""
        params = (self.schema.get(type_name) or {}).get("params") or {}
        name, eq, _ = current.partition("=")
        if eq:
            return [f"{name}={v}" for v in _choices(self._param_spec(type_name, name))]
        return [f"{p}=" for p in params]

    def connections(self) -> list[tuple[str, str]]:
        return [(c["src"], c["dst"]) for c in self.doc.get("connections") or []]


def _choices(spec: dict[str, Any]) -> list[str]:
    if spec.get("choices"):
        return [str(c) for c in spec["choices"]]
    if spec.get("kind") == "bool":
        return ["true", "false"]
    return []
