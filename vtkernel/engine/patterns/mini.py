"""Mini-notation: Strudel 1.1's `@strudel/mini` language, parsed to an AST and mapped onto the core.

`mini(text) -> Pattern` is the whole public surface (plus `MiniError` and `parse` for tools).

Two stages, as in Strudel:

1. `parse(text)` is a hand-written PEG parser that follows `krill.pegjs` rule by rule (same
   ordered choices, same greedy repetitions, same places where whitespace is allowed), so the
   odd corners parse the same way: `a@` is `a@2`, `a!2!3` is four copies, `a ? b` is `a? b`,
   `0..3` is one word while `0 .. 3` is a range, `a(3,8 2)` is `a(3,8,2)`, `.` and `|` are
   errors inside `< >` and `{ }`. It returns plain dataclasses (the AST) and numbers the random
   seeds exactly as krill does: one counter per call, advanced in parse order when a `?`,
   a `|` list or a `.` list is complete.
2. `_Builder` maps the AST onto the pattern core the way Strudel's `mini.mjs` does
   (`timecat` of weighted children, `stack`, `fast`/`slow` with patterned amounts,
   `_repeatCycles` + `_fast` for `!`, `euclid`/`euclidRot`, `_degradeByWith(rand.early(...))`,
   `chooseInWith(rand.early(...).segment(1))`, `:` lists, `..` ranges).

Errors are `MiniError(ValueError)`: one line, naming the column (1-based, in `text`).
Input size and nesting are bounded so hostile text gives a `MiniError`, never a RecursionError.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Union

from vtkernel.engine.patterns import core

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MiniError", "mini", "parse"]

MAX_LENGTH = 20_000
"""Longest mini-notation text accepted (characters)."""
MAX_DEPTH = 48
"""Deepest nesting of brackets and operator arguments accepted."""
MAX_STEPS = 100_000
"""Largest literal `!` count or `..` range length accepted (these expand eagerly)."""
RAND_OFFSET = 0.0003
"""Strudel reads seed k of a mini-notation text as `rand.early(0.0003 * k)`."""


class MiniError(ValueError):
    """A mini-notation text that cannot be parsed; str() is one line naming the column."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: a user's typo is one line, not 20 (SPEC §9).
        return [f"MiniError: {self}"]


# ---------------------------------------------------------------------------------------------
# AST (the krill stubs, typed)


@dataclass
class Atom:
    """A word, number or rest (`~`, `-`) as written; `column` is 1-based in the text."""

    source: str
    column: int


@dataclass
class Stretch:
    """`*x` (kind "fast") or `/x` (kind "slow"); the amount is a slice, so it may be patterned."""

    kind: str
    amount: Node


@dataclass
class Replicate:
    """`!n` (and bare `!`): the element repeated `amount` times inside its own step."""

    amount: float


@dataclass
class Bjorklund:
    """`(pulse,steps[,rotation])`: Euclidean rhythm; each argument is an element."""

    pulse: Element
    step: Element
    rotation: Element | None


@dataclass
class Degrade:
    """`?` or `?0.8`: drop a hap when rand < amount (0.5 when omitted)."""

    amount: float | None
    seed: int


@dataclass
class Tail:
    """`a:b`: the values joined into a list."""

    element: Node


@dataclass
class Range:
    """`a .. b`: the integers from a to b in one step."""

    element: Node


Op = Union[Stretch, Replicate, Bjorklund, Degrade, Tail, Range]


@dataclass
class Element:
    """A slice with its operators, weight (`@`, `_`, `!`) and replication count."""

    source: Node
    ops: list[Op] = field(default_factory=list)
    weight: float = 1.0
    reps: float = 1.0
    column: int = 0


@dataclass
class Seq:
    """A krill PatternStub: children and how they are aligned.

    alignment: "fastcat" (a sequence of elements), "stack" (`,`), "rand" (`|`), "feet" (`.`),
    "polymeter" (`{ }`, with `steps` from `%`) or "polymeter_slowcat" (`< >`).
    """

    children: list[Any]
    alignment: str
    seed: int | None = None
    steps: Node | None = None
    column: int = 0


Node = Union[Atom, Seq]

# ---------------------------------------------------------------------------------------------
# Parser

_WS = frozenset(" \n\r\t\u00a0")
_STEP_EXTRA = frozenset("0123456789~-#.^_")
_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})


def _is_step_char(c: str) -> bool:
    return c in _STEP_EXTRA or unicodedata.category(c) in _LETTER_CATEGORIES


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class _Fail(Exception):
    pass


class _Parser:
    """Recursive descent over `code` = '"' + text + '"', one method per krill rule.

    A method either returns its value with `pos` after the match, or raises `_Fail` with `pos`
    restored by the caller (`_try`). `far` is the furthest position any rule failed at, which is
    where PEG parsers report an error.
    """

    def __init__(self, text: str) -> None:
        self.code = '"' + text + '"'
        self.pos = 0
        self.far = 0
        self.seed = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------------------
    def fail(self, at: int | None = None) -> _Fail:
        p = self.pos if at is None else at
        if p > self.far:
            self.far = p
        return _Fail()

    def peek(self) -> str:
        return self.code[self.pos] if self.pos < len(self.code) else ""

    def lit(self, s: str) -> None:
        if self.code.startswith(s, self.pos):
            self.pos += len(s)
        else:
            raise self.fail()

    def ws(self) -> None:
        code, n, p = self.code, len(self.code), self.pos
        while p < n and code[p] in _WS:
            p += 1
        self.pos = p

    def number(self) -> float:
        m = _NUMBER.match(self.code, self.pos)
        if not m:
            raise self.fail()
        self.pos = m.end()
        return float(m.group())

    def opt_number(self) -> float | None:
        start = self.pos
        try:
            return self.number()
        except _Fail:
            self.pos = start
            return None

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise MiniError(f"mini-notation: nesting deeper than {MAX_DEPTH} at column {self.pos}")

    # -- rules -------------------------------------------------------------------------------
    def start(self) -> Node:
        # mini = ws quote ws stack_or_choose ws quote; then `ws comment*` and the end of input.
        self.ws()
        self.lit('"')
        self.ws()
        node = self.stack_or_choose()
        self.ws()
        if self.peek() not in ('"', "'"):
            raise self.fail()
        self.pos += 1
        self.ws()
        while self.code.startswith("//", self.pos):
            end = self.code.find("\n", self.pos)
            self.pos = len(self.code) if end < 0 else end
        if self.pos != len(self.code):
            raise self.fail()
        return node

    def step(self) -> Atom:
        start = self.pos
        self.ws()
        begin = self.pos
        code, n, p = self.code, len(self.code), self.pos
        while p < n and _is_step_char(code[p]):
            p += 1
        if p == begin:
            raise self.fail(p)
        chars = code[begin:p]
        self.pos = p
        self.ws()
        if chars in (".", "_"):
            self.pos = start
            raise self.fail(begin)
        return Atom(chars, begin)

    def slice(self) -> Node:
        c = self.peek_after_ws()
        self.enter()
        try:
            if c == "[":
                return self.sub_cycle()
            if c == "{":
                return self.polymeter()
            if c == "<":
                return self.slow_sequence()
            return self.step()
        finally:
            self.depth -= 1

    def peek_after_ws(self) -> str:
        p, code, n = self.pos, self.code, len(self.code)
        while p < n and code[p] in _WS:
            p += 1
        return code[p] if p < n else ""

    def sub_cycle(self) -> Node:
        self.ws()
        self.lit("[")
        self.ws()
        s = self.stack_or_choose()
        self.ws()
        self.lit("]")
        self.ws()
        return s

    def polymeter(self) -> Seq:
        self.ws()
        self.lit("{")
        self.ws()
        s = self.polymeter_stack()
        self.ws()
        self.lit("}")
        start = self.pos
        try:
            self.lit("%")
            s.steps = self.slice()
        except _Fail:
            self.pos = start
        self.ws()
        return s

    def slow_sequence(self) -> Seq:
        self.ws()
        column = self.pos
        self.lit("<")
        self.ws()
        s = self.polymeter_stack()
        self.ws()
        self.lit(">")
        self.ws()
        s.alignment = "polymeter_slowcat"
        s.column = column
        return s

    def slice_op(self, el: Element, pending: list[Any]) -> bool:
        """Try each krill slice_op in order; on success append its action to `pending`."""
        start = self.pos
        # op_weight = ws ("@" / "_") number?
        self.ws()
        if self.peek() in ("@", "_"):
            self.pos += 1
            pending.append(("weight", self.opt_number()))
            return True
        self.pos = start
        c = self.peek()
        if c == "(":
            try:
                pending.append(("bjorklund", self.op_bjorklund()))
                return True
            except _Fail:
                self.pos = start
        elif c in ("/", "*"):
            self.pos += 1
            try:
                pending.append(("stretch", Stretch("slow" if c == "/" else "fast", self.slice())))
                return True
            except _Fail:
                self.pos = start
        # op_replicate = ws "!" number?
        self.ws()
        if self.peek() == "!":
            self.pos += 1
            pending.append(("replicate", self.opt_number()))
            return True
        self.pos = start
        if c == "?":
            self.pos += 1
            pending.append(("degrade", self.opt_number()))
            return True
        if c == ":":
            self.pos += 1
            try:
                pending.append(("tail", self.slice()))
                return True
            except _Fail:
                self.pos = start
        if self.code.startswith("..", self.pos):
            self.pos += 2
            try:
                pending.append(("range", self.slice()))
                return True
            except _Fail:
                self.pos = start
        self.fail()
        return False

    def op_bjorklund(self) -> Bjorklund:
        self.lit("(")
        self.ws()
        self.enter()
        try:
            p = self.slice_with_ops()
            self.ws()
            self.comma()
            self.ws()
            s = self.slice_with_ops()
            self.ws()
            start = self.pos
            try:
                self.comma()
            except _Fail:
                self.pos = start
            self.ws()
            start = self.pos
            r: Element | None
            try:
                r = self.slice_with_ops()
            except _Fail:
                self.pos = start
                r = None
            self.ws()
            self.lit(")")
        finally:
            self.depth -= 1
        return Bjorklund(p, s, r)

    def comma(self) -> None:
        self.ws()
        self.lit(",")
        self.ws()

    def slice_with_ops(self) -> Element:
        column = self.pos
        while column < len(self.code) and self.code[column] in _WS:
            column += 1
        source = self.slice()
        el = Element(source, column=column)
        pending: list[Any] = []
        while self.slice_op(el, pending):
            pass
        # krill applies the operator actions once the whole element is parsed (seeds are taken here).
        for kind, arg in pending:
            if kind == "weight":
                el.weight = el.weight + (2 if arg is None else arg) - 1
            elif kind == "replicate":
                el.reps = el.reps + (2 if arg is None else arg) - 1
                el.ops = [op for op in el.ops if not isinstance(op, Replicate)]
                el.ops.append(Replicate(el.reps))
                el.weight = el.reps
            elif kind == "degrade":
                el.ops.append(Degrade(arg, self.seed))
                self.seed += 1
            elif kind == "stretch" or kind == "bjorklund":
                el.ops.append(arg)
            elif kind == "tail":
                el.ops.append(Tail(arg))
            else:
                el.ops.append(Range(arg))
        return el

    def sequence(self) -> Seq:
        column = self.pos
        if self.peek() == "^":  # krill's tactus mark; it changes no event
            self.pos += 1
        children = [self.slice_with_ops()]
        while True:
            start = self.pos
            try:
                children.append(self.slice_with_ops())
            except _Fail:
                self.pos = start
                break
        return Seq(children, "fastcat", column=column)

    def tail(self, sep: str) -> list[Seq]:
        out: list[Seq] = []
        while True:
            start = self.pos
            try:
                self.ws()
                self.lit(sep)
                self.ws()
                out.append(self.sequence())
            except _Fail:
                self.pos = start
                break
        if not out:
            raise self.fail()
        return out

    def stack_or_choose(self) -> Node:
        column = self.pos
        head = self.sequence()
        for sep, alignment in ((",", "stack"), ("|", "rand"), (".", "feet")):
            start = self.pos
            try:
                rest = self.tail(sep)
            except _Fail:
                self.pos = start
                continue
            seed = None
            if alignment != "stack":
                seed = self.seed
                self.seed += 1
            return Seq([head, *rest], alignment, seed, column=column)
        return head

    def polymeter_stack(self) -> Seq:
        column = self.pos
        head = self.sequence()
        start = self.pos
        try:
            rest = self.tail(",")
        except _Fail:
            self.pos = start
            rest = []
        return Seq([head, *rest], "polymeter", column=column)


def _describe_error(text: str, pos: int) -> str:
    code = '"' + text + '"'
    if pos >= len(code) - 1:
        what = "end of input"
    else:
        ch = code[pos]
        what = repr(ch) if ch.isprintable() else f"character U+{ord(ch):04X}"
    line = text.count("\n", 0, max(pos - 1, 0)) + 1
    if line > 1:
        column = pos - 1 - text.rfind("\n", 0, pos - 1)
        return f"mini-notation: unexpected {what} at line {line}, column {column}"
    return f"mini-notation: unexpected {what} at column {pos}"


def parse(text: str) -> Node:
    """The AST of a mini-notation text (raises MiniError)."""
    if not isinstance(text, str):
        raise MiniError(f"mini-notation: expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise MiniError(f"mini-notation: text longer than {MAX_LENGTH} characters (column {MAX_LENGTH + 1})")
    p = _Parser(text)
    try:
        return p.start()
    except _Fail:
        raise MiniError(_describe_error(text, p.far)) from None


# ---------------------------------------------------------------------------------------------
# Atoms: what JavaScript's Number() accepts becomes a number


_JS_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_JS_RADIX = re.compile(r"0([xXoObB])([0-9a-zA-Z]+)")
_RADIX = {"x": 16, "o": 8, "b": 2}


def js_number(s: str) -> float | int | None:
    """`Number(s)` for the characters an atom can hold, or None where it gives NaN.

    Integral values come back as int (Python users expect `n("3")` to be 3), others as float.
    """
    v: float
    if _JS_DECIMAL.fullmatch(s):
        v = float(s)
    elif m := _JS_RADIX.fullmatch(s):
        try:
            i = int(m.group(2), _RADIX[m.group(1).lower()])
        except ValueError:
            return None
        try:
            v = float(i)
        except OverflowError:
            return math.inf
    elif s in ("Infinity", "-Infinity"):
        return math.inf if s[0] == "I" else -math.inf
    else:
        return None
    if math.isfinite(v) and v.is_integer():
        return int(v)
    return v


# ---------------------------------------------------------------------------------------------
# AST -> Pattern (Strudel's patternifyAST and applyOptions)


def _array_range(start: Any, stop: Any) -> list[Any]:
    """JavaScript's `arrayRange(start, stop)` from mini.mjs: NaN arithmetic gives no values."""
    if not _is_num(start) or not _is_num(stop):
        return []
    length = abs(stop - start) + 1
    if math.isnan(length):
        return []
    if length > MAX_STEPS:
        raise core.PatternError(f"mini-notation: range {start} .. {stop} has more than {MAX_STEPS} steps")
    count = int(length)
    return [start + i if start < stop else start - i for i in range(count)]


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _tail_pair(a: Any) -> Any:
    return lambda b: [*a, b] if isinstance(a, list) else [a, b]


class _Builder:
    """Turns the AST into core patterns, node by node, as mini.mjs's `patternifyAST`."""

    def __init__(self) -> None:
        from vtkernel.engine.patterns.signals import rand

        self.rand = rand

    def seeded_rand(self, seed: int) -> core.Pattern:
        return self.rand.early(RAND_OFFSET * seed)

    def node(self, node: Node | Element) -> core.Pattern:
        """A pattern and, for sequences, their weight (Strudel's `__weight`)."""
        return self.weighted(node)[0]

    def weighted(self, node: Node | Element) -> tuple[core.Pattern, Fraction | None]:
        if isinstance(node, Element):  # an element entered directly: its operators are not applied
            return self.weighted(node.source)
        if isinstance(node, Atom):
            if node.source in ("~", "-"):
                return core.silence, None
            value = js_number(node.source)
            return core.pure(node.source if value is None else value), None
        return self.seq(node)

    def seq(self, node: Seq) -> tuple[core.Pattern, Fraction | None]:
        entered = [self.weighted(c) for c in node.children]
        children = [
            self.options(c, p) if isinstance(c, Element) else p for c, (p, _w) in zip(node.children, entered, strict=True)
        ]
        alignment = node.alignment
        if alignment == "stack":
            return core.stack(*children), None
        if alignment == "polymeter_slowcat":
            slowed = [p._slow(self.need_weight(w, node)) for p, (_p, w) in zip(children, entered, strict=True)]
            return core.stack(*slowed), None
        if alignment == "polymeter":
            if node.steps is not None:
                steps = self.node(node.steps).fmap(core.frac)
            else:
                steps = core.pure(self.need_weight(entered[0][1], node) if entered else Fraction(1))
            aligned = [
                p.fast(steps.fmap(_divide_by(self.need_weight(w, node))))
                for p, (_p, w) in zip(children, entered, strict=True)
            ]
            return core.stack(*aligned), None
        if alignment == "rand":
            assert node.seed is not None
            return core.chooseInWith(self.seeded_rand(node.seed).segment(1), children), None
        if alignment == "feet":
            return core.fastcat(*children), None
        # a sequence of elements: weighted steps
        weights = [c.weight if isinstance(c, Element) else 1.0 for c in node.children]
        if any(weights):
            fracs = [core.frac(w) if w else Fraction(1) for w in weights]
            total = sum(fracs, Fraction(0))
            if len(children) > 1 and total == 0:
                raise MiniError(f"mini-notation: the weights of the sequence at column {node.column} add up to 0")
            return core.timecat(*zip(fracs, children, strict=True)), total
        return core.sequence(*children), None

    @staticmethod
    def need_weight(w: Fraction | None, node: Seq) -> Fraction:
        if w is None or w == 0:
            raise MiniError(f"mini-notation: a step of zero length at column {node.column}")
        return w

    def options(self, el: Element, pat: core.Pattern) -> core.Pattern:
        for op in el.ops:
            if isinstance(op, Stretch):
                factor = self.node(op.amount)
                pat = pat.fast(factor) if op.kind == "fast" else pat.slow(factor)
            elif isinstance(op, Replicate):
                if op.amount > MAX_STEPS:
                    raise MiniError(f"mini-notation: more than {MAX_STEPS} copies at column {el.column}")
                pat = pat._repeatCycles(op.amount)._fast(op.amount)
            elif isinstance(op, Bjorklund):
                if op.rotation is not None:
                    pat = pat.euclidRot(self.node(op.pulse), self.node(op.step), self.node(op.rotation))
                else:
                    pat = pat.euclid(self.node(op.pulse), self.node(op.step))
            elif isinstance(op, Degrade):
                pat = pat._degradeByWith(self.seeded_rand(op.seed), 0.5 if op.amount is None else op.amount)
            elif isinstance(op, Tail):
                pat = pat.fmap(_tail_pair).appLeft(self.node(op.element))
            else:
                pat = pat.squeezeBind(_range_to(self.node(op.element)))
        return pat


def _range_to(friend: core.Pattern) -> Any:
    """`a .. b`: for each a (squeezed), the bound b (bound) gives fastcat(a, a+1, ..., b)."""

    def bind_a(a: Any) -> core.Pattern:
        return friend.bind(lambda b: core.fastcat(*_array_range(a, b)))

    return bind_a


def _divide_by(w: Fraction) -> Any:
    return lambda x: x / w


def mini(text: str) -> core.Pattern:
    """The pattern of a mini-notation text, as Strudel's `mini(text)` (raises MiniError).

    Its JSON form (`tree`) is the text itself: the core calls made while building it are
    internal, so the tree recorder (tree.py) is told not to record them.
    """
    ast = parse(text)
    state = core.RECORDING
    state.depth += 1
    try:
        pat = _Builder().node(ast)
    finally:
        state.depth -= 1
    return pat.with_tree(text)
