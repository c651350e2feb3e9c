"""A bridge to Strudel 1.1 under node: the reference vtkernel's patterns are compared against.

One node process (`tests/strudel/reference.mjs`) per test session, spoken to in JSON lines.
`strudel` is the session fixture; it skips only when node itself is absent, and fails loudly
when node is there but the npm packages are not (`npm ci --prefix tests/strudel` installs them).

Also here: the normal form both sides are compared in (`normal_haps`), and the compact AST form
of vtkernel's parser that mirrors the one reference.mjs makes of krill's (`compact_ast`).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "strudel" / "reference.mjs"
MODULES = ROOT / "tests" / "strudel" / "node_modules"

Span = tuple[str, str]


class StrudelError(Exception):
    """Strudel refused the text or threw while querying (the message is Strudel's)."""


class Strudel:
    """A running reference process. Thread-safe enough for pytest: one request at a time."""

    def __init__(self, node: str = "node") -> None:
        self.proc = subprocess.Popen(
            [node, str(REFERENCE)],
            cwd=REFERENCE.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.lock = threading.Lock()
        self.next_id = 0
        hello = self._readline()
        if not hello.get("ready"):
            raise RuntimeError(f"reference.mjs did not start: {hello}")
        self.version = hello.get("version")

    def _readline(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"reference.mjs exited (code {self.proc.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def request(self, **req: Any) -> dict[str, Any]:
        with self.lock:
            self.next_id += 1
            req["id"] = self.next_id
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            answer = self._readline()
        assert answer.get("id") == req["id"], answer
        return answer

    def ast(self, text: str) -> Any:
        a = self.request(ast=text)
        if "error" in a:
            raise StrudelError(a["error"])
        return a["ast"]

    def query(self, spans: Sequence[tuple[Any, Any]], mini: str | None = None, expr: str | None = None) -> list[Any]:
        """Per span: the sorted normal haps, or a StrudelError instance when that query threw."""
        req: dict[str, Any] = {"spans": [[str(Fraction(b)), str(Fraction(e))] for b, e in spans]}
        if mini is not None:
            req["mini"] = mini
        else:
            req["expr"] = expr
        a = self.request(**req)
        if "error" in a:
            raise StrudelError(a["error"])
        out: list[Any] = []
        for r in a["results"]:
            if "error" in r:
                out.append(StrudelError(r["error"]))
            else:
                out.append(sorted(_normal_js_hap(h) for h in r["haps"]))
        return out

    def bench(self, text: str, kind: str = "mini", cycles: int = 64, repeats: int = 7) -> dict[str, Any]:
        return self.request(bench=text, kind=kind, cycles=cycles, repeats=repeats)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start() -> Strudel:
    """A reference process; raises RuntimeError naming what is missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    if not (MODULES / "@strudel" / "mini").is_dir():
        raise RuntimeError("tests/strudel/node_modules is missing: run `npm ci --prefix tests/strudel`")
    return Strudel(node)


@pytest.fixture(scope="session")
def strudel() -> Iterator[Strudel]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed, so Strudel (the reference) cannot run")
    ref = start()
    yield ref
    ref.close()


# ---------------------------------------------------------------------------------------------
# Normal forms


def _frac(s: str) -> Fraction:
    return Fraction(s)


def _js_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "$num" in v:
            f = float(v["$num"].replace("Infinity", "inf"))
            return ("num", "nan" if math.isnan(f) else f)
        if "$frac" in v:
            return ("frac", Fraction(v["$frac"]))
        if "$undefined" in v:
            return ("undefined",)
        return ("map", tuple(sorted((k, _js_value(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("list", tuple(_js_value(x) for x in v))
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("num", float(v))
    return ("str", v) if isinstance(v, str) else ("other", repr(v))


def _normal_js_hap(h: dict[str, Any]) -> tuple[Any, ...]:
    whole = None if h["whole"] is None else (_frac(h["whole"][0]), _frac(h["whole"][1]))
    part = (_frac(h["part"][0]), _frac(h["part"][1]))
    return (part, _sortable(whole), _js_value(h["value"]))


def _sortable(whole: tuple[Fraction, Fraction] | None) -> tuple[Any, ...]:
    return (0,) if whole is None else (1, *whole)


def py_value(v: Any) -> Any:
    """A vtkernel hap value in the same normal form as Strudel's (numbers compare as floats)."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, Fraction):
        return ("frac", v)
    if isinstance(v, (int, float)):
        f = float(v)
        return ("num", f if not math.isnan(f) else "nan")
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, (list, tuple)):
        return ("list", tuple(py_value(x) for x in v))
    if isinstance(v, dict):
        return ("map", tuple(sorted((k, py_value(x)) for k, x in v.items())))
    if v is None:
        return ("undefined",)
    return ("other", repr(v))


def normal_haps(haps: Sequence[Any]) -> list[tuple[Any, ...]]:
    """vtkernel haps, sorted, in the normal form of `Strudel.query`."""
    out = []
    for h in haps:
        whole = None if h.whole is None else (Fraction(h.whole.begin), Fraction(h.whole.end))
        out.append(((Fraction(h.part.begin), Fraction(h.part.end)), _sortable(whole), py_value(h.value)))
    return sorted(out)


def compact_ast(node: Any) -> Any:
    """vtkernel's mini AST in the compact form reference.mjs gives krill's."""
    from vtkernel.engine.patterns import mini as m

    if node is None:
        return None
    if isinstance(node, m.Atom):
        return ["atom", node.source, node.column]
    if isinstance(node, m.Seq):
        return ["pat", node.alignment, node.seed, compact_ast(node.steps), [compact_ast(c) for c in node.children]]
    if isinstance(node, m.Element):
        return ["el", compact_ast(node.source), _num(node.weight), _num(node.reps), [_op(o) for o in node.ops]]
    raise TypeError(node)


def _num(x: float) -> Any:
    return int(x) if float(x).is_integer() else x


def _op(op: Any) -> Any:
    from vtkernel.engine.patterns import mini as m

    if isinstance(op, m.Stretch):
        return [op.kind, compact_ast(op.amount)]
    if isinstance(op, m.Replicate):
        return ["rep", _num(op.amount)]
    if isinstance(op, m.Bjorklund):
        return ["euclid", compact_ast(op.pulse), compact_ast(op.step), compact_ast(op.rotation)]
    if isinstance(op, m.Degrade):
        return ["deg", None if op.amount is None else _num(op.amount), op.seed]
    if isinstance(op, m.Tail):
        return ["tail", compact_ast(op.element)]
    if isinstance(op, m.Range):
        return ["range", compact_ast(op.element)]
    raise TypeError(op)
