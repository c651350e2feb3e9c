"""The canonical Python script of a document: what the code shell shows and `vt.script()` returns.

Running the script with `vt` in scope, on a fresh engine, rebuilds the same
patch: bpm, meter, every module with every param, every connection. Like undo, it
leaves out the transport (playing) and telemetry. It is canonical, so equal
documents give equal text:

- `vt.bpm(...)` and `vt.meter(...)` first (always written, so running the
  script over another patch resets them too), then `vt.module(name, type, **params)` sorted by name
  with all params sorted by name, then `vt.connect(src, dst)` sorted by
  `(src, dst)`;
- values are Python literals: floats by `repr` (exact round trip), steps
  tuples as lists, `None` for rests, strings double-quoted when they can be;
- a param whose name is a Python keyword (`class`) is passed as
  `**{"class": ...}`; one named `name` or `type` (which `vt.module` takes
  itself) is set on the next line with `vt.set("module.type", ...)`.

Pure: no Jupyter, no engine thread (it only reads a `Document`).
"""

from __future__ import annotations

import keyword
import math
from typing import Any

from vtkernel.engine.document import Document, Module

HEADER = "# vtkernel patch: run with `vt` in scope to rebuild this document"
_RESERVED_KWARGS = frozenset({"name", "type"})  # vt.module's own parameters


def document_to_script(doc: Document) -> str:
    """The canonical script that rebuilds `doc` (see the module docstring)."""
    lines = [HEADER, f"vt.bpm({literal(doc.clock.bpm)})", f"vt.meter({literal(doc.clock.meter)})"]
    if doc.modules:
        lines.append("")
        for name, module in sorted(doc.modules.items()):
            lines.extend(module_lines(name, module))
    connections = doc.sorted_connections()
    if connections:
        lines.append("")
        lines.extend(f"vt.connect({literal(src)}, {literal(dst)})" for src, dst in connections)
    return "\n".join(lines) + "\n"


def module_lines(name: str, module: Module) -> list[str]:
    """`vt.module("lfo1", "lfo", depth=1.0, rate=2.0, shape="sine")` (and `vt.set` lines for reserved names)."""
    args = [literal(name), literal(module.type)]
    odd: list[str] = []
    sets: list[str] = []
    for pname, value in sorted(module.params.items()):
        if pname in _RESERVED_KWARGS:
            sets.append(f"vt.set({literal(name + '.' + pname)}, {literal(value)})")
        elif pname.isidentifier() and not keyword.iskeyword(pname):
            args.append(f"{pname}={literal(value)}")
        else:
            odd.append(f"{literal(pname)}: {literal(value)}")
    if odd:
        args.append("**{" + ", ".join(odd) + "}")
    return [f"vt.module({', '.join(args)})", *sets]


def literal(value: Any) -> str:
    """A Python literal that evaluates back to `value` (tuples become lists, as in the JSON document)."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f'float("{value}")'  # never in a valid document; kept evaluable anyway
    if isinstance(value, str):
        if '"' not in value and "'" not in value:
            return '"' + repr(value)[1:-1] + '"'
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in sorted(value.items())) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a literal: {value!r}")
