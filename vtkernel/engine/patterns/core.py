"""The pattern core: Tidal's model with Strudel 1.1's semantics, in exact time.

A `Pattern` is a function from a `TimeSpan` (in cycles, `fractions.Fraction`)
to the list of `Hap`s active in it. A hap has a `whole` (the event's full
span, `None` for a continuous signal), a `part` (the fragment inside the
query) and a `value`. Everything here is pure: no clock, no threads, no I/O.

The reference is Strudel 1.1's `@strudel/core` (pattern.mjs, signal.mjs,
euclid.mjs): the same construction must give the same haps, in the same
fragments, so each function follows the structure of Strudel's own (which
joins, which spans are queried) rather than a shortcut that happens to agree
most of the time. Where JavaScript's number semantics matter (a float turned
into a fraction, `%` on negatives, 32-bit integer shifts in the random
generator) they are reproduced explicitly.

Names PAT2's mini-notation parser (and anyone else) can call
-------------------------------------------------------------
Constructors: `pure(v)`, `silence`, `nothing`, `gap(t)`, `reify(x)` (a str
is mini-notation, a Pattern passes, anything else is `pure`), `stack(*ps)`,
`slowcat`/`cat(*ps)`, `fastcat`/`seq`/`sequence(*ps)`, `timecat`/`timeCat`/
`s_cat(*(weight, pat))`, `s_polymeter(*ps)`, `s_polymeterSteps(n, *ps)`
(aliases `polymeter`, `polymeterSteps`), `randcat(*ps)`,
`chooseInWith(pat, xs)`, `chooseWith(pat, xs)`.
Methods (Strudel's names; args may be patterns, strs or numbers):
`fast`, `slow`, `early`, `late`, `ply`, `segment`, `range`, `euclid`,
`euclidRot`, `euclidLegato`, `degradeBy`, `struct`, `mask`, ... and the
unpatterned forms with a leading underscore taking plain values:
`_fast(f)`, `_slow(f)`, `_early(t)`, `_late(t)`, `_repeatCycles(n)`,
`_degradeByWith(randpat, amount)`, `_segment(n)`, `_ply(n)`, `_euclidRot(k, n, r)`.
Monadic plumbing: `fmap`/`withValue`, `appLeft`, `appRight`, `appBoth`,
`bind`, `innerBind`, `outerBind`, `squeezeBind`, `innerJoin`, `outerJoin`,
`squeezeJoin`, `splitQueries`, `withQuerySpan`, `withHapTime`, ...
Signals and the random generator live in `signals` (`rand`, `sine`, ...).
`frac(x)` turns a number into a Fraction exactly as fraction.js does.
A single atom must be a `pure(...)` pattern (its `_pure` is set): methods
given only pure arguments apply directly, without a join, as Strudel does.
Operators take Strudel's structures: `pat.add(x)` (from the left),
`pat.add.out(x)`, `.mix`, `.squeeze`, `.squeezeout`, `.reset`, `.restart`.

Known differences from Strudel 1.1
----------------------------------
- Hap contexts (source locations, tags) are not modelled; `tactus` is kept
  for the constructors, `steps` and `s_polymeter`. Not implemented: the
  experimental stepwise `s_*` functions, `pick`/`inhabit`/`squeeze`,
  `wchoose`, `transpose`/`scaleTranspose`, scale anchors.
- Where Strudel 1.1 throws on its own bug, this works: `linger` with a
  negative amount, `zoom`/`linger` of a pattern without a step count
  (Strudel reads `tactus.mulmaybe` of undefined), `arp` given a string. `fast(Fraction(0))` is silence as
  `fast(0)` is (Strudel divides by zero); `compress(b, b)` is `nothing`.
- Eager expansion is bounded (MAX_COUNT, MAX_SPAN_CYCLES) so hostile input
  fails with a PatternError instead of hanging; Strudel has no bounds.
- JavaScript has one number type: integral results stay Python ints
  (`4 / 2` is `2`), others are floats; `Math.sin` is V8's (jsmath.py),
  other Math functions (`pow`, `exp`, `log`) are the C library's and may
  differ in the last bit.
- `query` returns [] when the query raises PatternError (Strudel's
  `queryArc`); `query_strict` raises.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

Time = Fraction
Query = Callable[["TimeSpan"], list["Hap"]]
TimeLike = int | float | Fraction


class PatternError(ValueError):
    """A pattern cannot be queried (where Strudel's query throws): one line."""


class _Recording(threading.local):
    """Per-thread state of the tree recorder (see tree.py): `depth` > 0 inside a recorded call or a query."""

    depth = 0
    counter = 0


RECORDING = _Recording()


# ---------------------------------------------------------------------------
# Numbers with JavaScript's semantics


_FRAC_CACHE: dict[float, Fraction] = {}
_INT_FRACS = [Fraction(i) for i in range(-64, 65)]


def _ifrac(i: int) -> Fraction:
    """Fraction(i) for an int, cached for the small ones (cycle numbers)."""
    if -64 <= i <= 64:
        return _INT_FRACS[i + 64]
    f = object.__new__(Fraction)
    f._numerator = i  # type: ignore[attr-defined]
    f._denominator = 1  # type: ignore[attr-defined]
    return f


# Exact arithmetic on the hot path. The scheduler queries every tick, and
# Fraction's operators spend most of their time in type dispatch; these do the
# same normalised integer arithmetic and build the (genuine) Fraction directly.
_onew = object.__new__
_gcd = math.gcd


def _mk(n: int, d: int) -> Fraction:
    """A Fraction from a numerator and a positive denominator already in lowest terms."""
    f = _onew(Fraction)
    f._numerator = n  # type: ignore[attr-defined]
    f._denominator = d  # type: ignore[attr-defined]
    return f


def _fmul(a: Fraction, b: Fraction) -> Fraction:
    na = a._numerator  # type: ignore[attr-defined]
    da = a._denominator  # type: ignore[attr-defined]
    nb = b._numerator  # type: ignore[attr-defined]
    db = b._denominator  # type: ignore[attr-defined]
    g1 = _gcd(na, db)
    g2 = _gcd(nb, da)
    return _mk((na // g1) * (nb // g2), (da // g2) * (db // g1))


def _fmul_int(a: Fraction, k: int) -> Fraction:
    na = a._numerator  # type: ignore[attr-defined]
    da = a._denominator  # type: ignore[attr-defined]
    if da == 1:
        return _mk(na * k, 1)
    g = _gcd(k, da)
    return _mk(na * (k // g), da // g)


def _fdiv_int(a: Fraction, k: int) -> Fraction:
    """a / k for an int k > 0."""
    na = a._numerator  # type: ignore[attr-defined]
    g = _gcd(na, k)
    return _mk(na // g, a._denominator * (k // g))  # type: ignore[attr-defined]


def _retimed(haps: Iterable[Hap], op: Callable[[Fraction, Any], Fraction], arg: Any) -> list[Hap]:
    """Each hap with the times of its whole and part mapped through `op(time, arg)`.

    The one loop behind `_fast`, `_early` and `slowcat`: a query mapped into a
    pattern's own time, and its haps mapped back (as many calls of the exact
    fraction helpers as writing it out at each place).
    """
    out = []
    for h in haps:
        w = h.whole
        p = h.part
        out.append(
            Hap(
                None if w is None else TimeSpan(op(w.begin, arg), op(w.end, arg)),
                TimeSpan(op(p.begin, arg), op(p.end, arg)),
                h.value,
            )
        )
    return out


def _fadd(a: Fraction, b: Fraction) -> Fraction:
    da = a._denominator  # type: ignore[attr-defined]
    db = b._denominator  # type: ignore[attr-defined]
    if da == db:
        if da == 1:
            return _mk(a._numerator + b._numerator, 1)  # type: ignore[attr-defined]
        n = a._numerator + b._numerator  # type: ignore[attr-defined]
        g = _gcd(n, da)
        return _mk(n // g, da // g)
    n = a._numerator * db + b._numerator * da  # type: ignore[attr-defined]
    d = da * db
    g = _gcd(n, d)
    return _mk(n // g, d // g)


def _fsub(a: Fraction, b: Fraction) -> Fraction:
    da = a._denominator  # type: ignore[attr-defined]
    db = b._denominator  # type: ignore[attr-defined]
    if da == db:
        if da == 1:
            return _mk(a._numerator - b._numerator, 1)  # type: ignore[attr-defined]
        n = a._numerator - b._numerator  # type: ignore[attr-defined]
        g = _gcd(n, da)
        return _mk(n // g, da // g)
    n = a._numerator * db - b._numerator * da  # type: ignore[attr-defined]
    d = da * db
    g = _gcd(n, d)
    return _mk(n // g, d // g)


def _flt(a: Fraction, b: Fraction) -> bool:
    return a._numerator * b._denominator < b._numerator * a._denominator  # type: ignore[attr-defined,no-any-return]


def _feq(a: Fraction, b: Fraction) -> bool:
    return a._numerator == b._numerator and a._denominator == b._denominator  # type: ignore[attr-defined,no-any-return]


def _fsam(t: Fraction) -> int:
    return t._numerator // t._denominator  # type: ignore[attr-defined,no-any-return]


def _farey(x: float) -> Fraction:
    """fraction.js 4.3's reading of a double: a Farey search with denominators up to 1e7."""
    sign = -1 if x < 0 else 1
    p1 = -x if x < 0 else x
    if p1 % 1 == 0:
        return Fraction(int(p1) * sign)
    a, b, c, d = 0.0, 1.0, 1.0, 1.0
    limit = 10000000.0
    z = 1.0
    n = 0.0
    den = 1.0
    if p1 >= 1:
        z = math.pow(10, math.floor(1 + math.log(p1) / math.log(10)))
        p1 /= z
    while b <= limit and d <= limit:
        m = (a + c) / (b + d)
        if p1 == m:
            if b + d <= limit:
                n, den = a + c, b + d
            elif d > b:
                n, den = c, d
            else:
                n, den = a, b
            break
        if p1 > m:
            a += c
            b += d
        else:
            c += a
            d += b
        if b > limit:
            n, den = c, d
        else:
            n, den = a, b
    n *= z
    return Fraction(int(n) * sign, int(den))


def frac(x: Any) -> Fraction:
    """`Fraction(x)` as Strudel's `Fraction(x)` (fraction.js) computes it.

    Ints and Fractions are exact; a float goes through fraction.js's Farey
    approximation, so `frac(0.1) == Fraction(1, 10)` and `frac(0.0003 * 3)`
    is the same fraction Strudel gets.
    """
    if type(x) is Fraction:
        return x
    if type(x) is int:
        return _ifrac(x)
    if isinstance(x, float):
        cached = _FRAC_CACHE.get(x)
        if cached is None:
            if not math.isfinite(x):
                raise PatternError(f"{x} is not a finite number")
            cached = _farey(x)
            if len(_FRAC_CACHE) < 100_000:
                _FRAC_CACHE[x] = cached
        return cached
    if isinstance(x, bool):
        raise PatternError(f"expected a number, got {x!r}")
    if isinstance(x, int | Fraction):
        return Fraction(x)
    if isinstance(x, str):
        if "_" in x:  # Python reads "2_2" as 22; fraction.js refuses it (mini `a*2_2`)
            raise PatternError(f"cannot read {x!r} as a number")
        try:
            return Fraction(x.strip())
        except (ValueError, ZeroDivisionError):
            raise PatternError(f"cannot read {x!r} as a number") from None
    if isinstance(x, list | tuple) and x and all(type(v) in (int, float) for v in x[:2]):
        # fraction.js reads an array as [numerator, denominator]: mini `a*[3:2]` is a*1.5
        return _frac_pair(x[0], x[1] if len(x) > 1 else 1)
    raise PatternError(f"expected a number, got {x!r}")


def _js_gcd(a: float, b: float) -> float:
    """fraction.js's gcd on doubles (Euclid with `%`)."""
    if not a:
        return b
    if not b:
        return a
    while True:
        a = math.fmod(a, b)
        if not a:
            return b
        b = math.fmod(b, a)
        if not b:
            return a


def _frac_pair(n: float, d: float) -> Fraction:
    """fraction.js's `Fraction([n, d])`: both reduced by its float gcd; whole results only."""
    if d == 0:
        raise PatternError(f"[{n}, {d}] divides by zero")
    if type(n) is int and type(d) is int:
        return Fraction(n, d)
    sign = -1 if n * d < 0 else 1
    a, b = abs(d), abs(n)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise PatternError(f"[{n}, {d}] is not a finite fraction")
    g = _js_gcd(a, b)
    num, den = abs(n) / g, abs(d) / g
    if not (num.is_integer() and den.is_integer()):
        raise PatternError(f"[{n}, {d}] is not a fraction Strudel can read exactly")
    return Fraction(sign * int(num), int(den))


def js_number(x: Any) -> float | int:
    """JavaScript's `Number(x)` for the values patterns carry (NaN when it is not a number)."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int | float):
        return x
    if isinstance(x, Fraction):
        return float(x)
    if x is None:
        return math.nan
    if isinstance(x, str):
        s = x.strip()
        if s == "":
            return 0
        try:
            if s.lower().startswith(("0x", "0o", "0b")):
                return int(s, 0)
            if s.lower().startswith(("+0x", "-0x", "+0o", "-0o", "+0b", "-0b")):
                return math.nan
            if s in ("Infinity", "+Infinity"):
                return math.inf
            if s == "-Infinity":
                return -math.inf
            if any(c.isalpha() and c not in "eE" for c in s) or "_" in s:
                return math.nan
            v = float(s)
        except ValueError:
            return math.nan
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(x, list):
        if len(x) == 0:
            return 0
        if len(x) == 1:
            return js_number(x[0])
        return math.nan
    return math.nan


def js_mod(n: float, m: float) -> float:
    """Strudel's `_mod`: a modulo that is positive for a positive modulus (JS `((n % m) + m) % m`)."""
    return math.fmod(math.fmod(n, m) + m, m)


def _num_mod(n: Any, m: Any) -> Any:
    """`_mod` keeping ints ints (JS has one number type)."""
    if isinstance(n, int) and isinstance(m, int) and m != 0:
        return ((n % m) + m) % m if m > 0 else -((-n) % (-m))
    return js_mod(float(n), float(m))


# ---------------------------------------------------------------------------
# Time spans and haps


class TimeSpan:
    """A span of time in cycles, `[begin, end)`; both ends are Fractions."""

    __slots__ = ("begin", "end")

    def __init__(self, begin: Fraction, end: Fraction) -> None:
        self.begin = begin if type(begin) is Fraction else frac(begin)
        self.end = end if type(end) is Fraction else frac(end)

    @property
    def duration(self) -> Fraction:
        return self.end - self.begin

    def span_cycles(self) -> list[TimeSpan]:
        """The span cut at cycle boundaries (a zero-width span is kept as itself)."""
        begin = self.begin
        end = self.end
        if _feq(begin, end):
            return [TimeSpan(begin, end)]
        bs = _fsam(begin)
        es = _fsam(end)
        if bs == es:
            return [self]
        if _flt(end, begin):
            return []
        if es - bs > MAX_SPAN_CYCLES:
            raise PatternError(f"a query over more than {MAX_SPAN_CYCLES} cycles")
        spans = [TimeSpan(begin, _ifrac(bs + 1))]
        for c in range(bs + 1, es):
            spans.append(TimeSpan(_ifrac(c), _ifrac(c + 1)))
        if end._denominator != 1:  # type: ignore[attr-defined]
            spans.append(TimeSpan(_ifrac(es), end))
        return spans

    spanCycles = span_cycles

    def cycle_arc(self) -> TimeSpan:
        b = cycle_pos(self.begin)
        return TimeSpan(b, b + self.duration)

    def with_time(self, func: Callable[[Fraction], Fraction]) -> TimeSpan:
        return TimeSpan(func(self.begin), func(self.end))

    withTime = with_time

    def with_end(self, func: Callable[[Fraction], Fraction]) -> TimeSpan:
        return TimeSpan(self.begin, func(self.end))

    def with_cycle(self, func: Callable[[Fraction], Fraction]) -> TimeSpan:
        s = sam(self.begin)
        return TimeSpan(s + func(self.begin - s), s + func(self.end - s))

    withCycle = with_cycle

    def intersection(self, other: TimeSpan) -> TimeSpan | None:
        """The common part, or None; a zero-width span at the end of a non-zero one does not intersect."""
        sb = self.begin
        se = self.end
        ob = other.begin
        oe = other.end
        b = ob if _flt(sb, ob) else sb
        e = oe if _flt(oe, se) else se
        if _flt(e, b):
            return None
        if _feq(b, e):
            if _feq(b, se) and _flt(sb, se):
                return None
            if _feq(b, oe) and _flt(ob, oe):
                return None
        return TimeSpan(b, e)

    def intersection_e(self, other: TimeSpan) -> TimeSpan:
        result = self.intersection(other)
        if result is None:
            raise PatternError("TimeSpans do not intersect")
        return result

    def midpoint(self) -> Fraction:
        return self.begin + (self.end - self.begin) / 2

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeSpan) and self.begin == other.begin and self.end == other.end

    def __hash__(self) -> int:
        return hash((self.begin, self.end))

    def __repr__(self) -> str:
        return f"TimeSpan({self.begin}, {self.end})"

    def show(self) -> str:
        return f"{self.begin} → {self.end}"


class Hap:
    """One event: `whole` (None for a continuous value), `part` (inside the query) and `value`."""

    __slots__ = ("part", "value", "whole")

    def __init__(self, whole: TimeSpan | None, part: TimeSpan, value: Any) -> None:
        self.whole = whole
        self.part = part
        self.value = value

    def has_onset(self) -> bool:
        """True when this fragment holds the event's start (`whole.begin == part.begin`)."""
        return self.whole is not None and self.whole.begin == self.part.begin

    hasOnset = has_onset

    def whole_or_part(self) -> TimeSpan:
        return self.whole if self.whole is not None else self.part

    wholeOrPart = whole_or_part

    def with_span(self, func: Callable[[TimeSpan], TimeSpan]) -> Hap:
        return Hap(None if self.whole is None else func(self.whole), func(self.part), self.value)

    def with_value(self, func: Callable[[Any], Any]) -> Hap:
        return Hap(self.whole, self.part, func(self.value))

    def span_equals(self, other: Hap) -> bool:
        if self.whole is None or other.whole is None:
            return self.whole is None and other.whole is None
        return self.whole == other.whole

    @property
    def duration(self) -> Fraction:
        """The whole's length (what a synth plays), or the part's for a continuous hap."""
        return self.whole_or_part().duration

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Hap)
            and self.whole == other.whole
            and self.part == other.part
            and self.value == other.value
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        whole = "~" if self.whole is None else f"{self.whole.begin}-{self.whole.end}"
        return f"Hap({whole}, {self.part.begin}-{self.part.end}, {self.value!r})"


def sam(t: Fraction) -> Fraction:
    """The start of the cycle holding `t`."""
    return _ifrac(_fsam(t))


def next_sam(t: Fraction) -> Fraction:
    return _ifrac(_fsam(t) + 1)


def cycle_pos(t: Fraction) -> Fraction:
    return _fsub(t, _ifrac(_fsam(t)))


def whole_cycle(t: Fraction) -> TimeSpan:
    s = _fsam(t)
    return TimeSpan(_ifrac(s), _ifrac(s + 1))


def _flcm(values: Iterable[Fraction | None]) -> Fraction | None:
    """Strudel's `lcm` of step counts: unknown (None) ones are left out; None when none is known."""
    result = _ifrac(1)
    seen = False
    for v in values:
        if v is None:
            continue
        seen = True
        if result == 0 or v == 0:
            result = _ifrac(0)
            continue
        n = math.lcm(result.numerator, v.numerator)
        d = math.gcd(result.denominator, v.denominator)
        result = Fraction(n, d)
    return result if seen else None


# ---------------------------------------------------------------------------
# Patterns


class Pattern:
    """A pattern: `query_span(TimeSpan) -> list[Hap]`, and Strudel's methods.

    `query(begin, end)` is Strudel's `queryArc`: errors that Strudel's query
    throws on bad data (an impossible Euclid rhythm, a zero-width polymeter)
    become an empty result for that query, as in Strudel.

    `tree` is the pattern's JSON form (see `tree.py`) when the pattern was
    built through the public functions, else None (`tree_error` says why).

    Threads: a pattern is immutable once built, so any thread may query it
    at the same time as others; the only mutable state is the tree
    recorder's, which is per thread (`RECORDING`).
    """

    __slots__ = ("_pure", "query_span", "signal_of", "tactus", "tree", "tree_error", "weight")

    def __init__(self, query: Query, tactus: Fraction | None = None) -> None:
        self.query_span = query
        self.tactus = tactus
        self._pure: Any = None
        self.tree: Any = None
        self.weight: Fraction | None = None
        self.tree_error: str | None = None
        # (func, offset) when this is `signal(func)` shifted by `offset`: `early` of a signal stays one query
        self.signal_of: tuple[Callable[[float], Any], Fraction] | None = None

    def with_tree(self, tree: Any, error: str | None = None) -> Pattern:
        """A copy of this pattern carrying `tree` (patterns are shared, so never mutate one)."""
        p = Pattern(self.query_span, self.tactus)
        p._pure = self._pure
        p.weight = self.weight
        p.signal_of = self.signal_of
        p.tree = tree
        p.tree_error = error
        return p

    # -- querying ---------------------------------------------------------

    def query(self, begin: TimeLike, end: TimeLike) -> list[Hap]:
        """The haps active in `[begin, end)` (cycles), as Strudel's `queryArc`."""
        state = RECORDING
        state.depth += 1  # patterns built while querying are internal: no trees
        try:
            return self.query_span(TimeSpan(frac(begin), frac(end)))
        except (PatternError, ZeroDivisionError, RecursionError):
            return []
        finally:
            state.depth -= 1

    queryArc = query

    def query_strict(self, begin: TimeLike, end: TimeLike) -> list[Hap]:
        """As `query`, but errors raise (Strudel's `pattern.query(state)`)."""
        state = RECORDING
        state.depth += 1
        try:
            return self.query_span(TimeSpan(frac(begin), frac(end)))
        finally:
            state.depth -= 1

    def first_cycle(self) -> list[Hap]:
        return self.query(0, 1)

    firstCycle = first_cycle

    def onsets(self, begin: TimeLike, end: TimeLike) -> list[Hap]:
        """The haps whose onset lies in `[begin, end)`, sorted by onset (what a scheduler plays)."""
        haps = [h for h in self.query(begin, end) if h.has_onset()]
        haps.sort(key=lambda h: h.part.begin)
        return haps

    def __repr__(self) -> str:
        if self.tree is not None:
            return f"Pattern({self.tree!r})"
        return f"Pattern({self.query(0, 1)!r})"

    # -- functor / applicative / monad -----------------------------------

    def with_value(self, func: Callable[[Any], Any]) -> Pattern:
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            return [Hap(h.whole, h.part, func(h.value)) for h in q(span)]

        return Pattern(query, self.tactus)

    withValue = with_value
    fmap = with_value

    def app_whole(
        self,
        whole_func: Callable[[TimeSpan | None, TimeSpan | None], TimeSpan | None],
        pat_val: Pattern,
    ) -> Pattern:
        qf = self.query_span
        qv = pat_val.query_span

        def query(span: TimeSpan) -> list[Hap]:
            hap_funcs = qf(span)
            hap_vals = qv(span)
            out = []
            for hf in hap_funcs:
                for hv in hap_vals:
                    s = hf.part.intersection(hv.part)
                    if s is None:
                        continue
                    out.append(Hap(whole_func(hf.whole, hv.whole), s, hf.value(hv.value)))
            return out

        return Pattern(query)

    def appBoth(self, pat_val: Pattern) -> Pattern:
        """Structure from both sides: wholes are intersected (Tidal's `<*>`)."""

        def whole_func(a: TimeSpan | None, b: TimeSpan | None) -> TimeSpan | None:
            if a is None or b is None:
                return None
            return a.intersection_e(b)

        result = self.app_whole(whole_func, pat_val)
        result.tactus = _flcm([pat_val.tactus, self.tactus])
        return result

    def appLeft(self, pat_val: Pattern) -> Pattern:
        """Structure from the left (this pattern of functions): Tidal's `<*`."""
        qf = self.query_span
        qv = pat_val.query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for hf in qf(span):
                for hv in qv(hf.whole_or_part()):
                    part = hf.part.intersection(hv.part)
                    if part is not None:
                        out.append(Hap(hf.whole, part, hf.value(hv.value)))
            return out

        return Pattern(query, self.tactus)

    def appRight(self, pat_val: Pattern) -> Pattern:
        """Structure from the right (the pattern of values): Tidal's `*>`."""
        qf = self.query_span
        qv = pat_val.query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for hv in qv(span):
                for hf in qf(hv.whole_or_part()):
                    part = hf.part.intersection(hv.part)
                    if part is not None:
                        out.append(Hap(hv.whole, part, hf.value(hv.value)))
            return out

        return Pattern(query, pat_val.tactus)

    def bind_whole(
        self,
        choose_whole: Callable[[TimeSpan | None, TimeSpan | None], TimeSpan | None],
        func: Callable[[Any], Pattern],
    ) -> Pattern:
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for a in q(span):
                for b in func(a.value).query_span(a.part):
                    out.append(Hap(choose_whole(a.whole, b.whole), b.part, b.value))
            return out

        return Pattern(query)

    def bind(self, func: Callable[[Any], Pattern]) -> Pattern:
        def whole_func(a: TimeSpan | None, b: TimeSpan | None) -> TimeSpan | None:
            if a is None or b is None:
                return None
            return a.intersection_e(b)

        return self.bind_whole(whole_func, func)

    def join(self) -> Pattern:
        return self.bind(_identity)

    def outerBind(self, func: Callable[[Any], Pattern]) -> Pattern:
        result = self.bind_whole(lambda a, _b: a, func)
        result.tactus = self.tactus
        return result

    def outerJoin(self) -> Pattern:
        return self.outerBind(_identity)

    def innerBind(self, func: Callable[[Any], Pattern]) -> Pattern:
        return self.bind_whole(lambda _a, b: b, func)

    def innerJoin(self) -> Pattern:
        """Flatten a pattern of patterns; wholes come from the inner patterns."""
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for a in q(span):
                out.extend(a.value.query_span(a.part))
            return out

        return Pattern(query)

    def resetJoin(self, restart: bool = False) -> Pattern:
        q = self.discreteOnly().query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for outer in q(span):
                assert outer.whole is not None
                shift = outer.whole.begin if restart else cycle_pos(outer.whole.begin)
                for inner in outer.value._late(shift).query_span(span):
                    whole = None if inner.whole is None else inner.whole.intersection(outer.whole)
                    part = inner.part.intersection(outer.part)
                    if part is not None:
                        out.append(Hap(whole, part, inner.value))
            return out

        return Pattern(query)

    def restartJoin(self) -> Pattern:
        return self.resetJoin(True)

    def squeezeJoin(self) -> Pattern:
        """Flatten a pattern of patterns, fitting a whole cycle of each inner pattern into its outer hap."""
        q = self.discreteOnly().query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for outer in q(span):
                inner_pat = outer.value._focusSpan(outer.whole_or_part())
                for inner in inner_pat.query_span(outer.part):
                    whole = None
                    if inner.whole is not None and outer.whole is not None:
                        whole = inner.whole.intersection(outer.whole)
                        if whole is None:
                            continue
                    part = inner.part.intersection(outer.part)
                    if part is None:
                        continue
                    out.append(Hap(whole, part, inner.value))
            return out

        return Pattern(query)

    def squeezeBind(self, func: Callable[[Any], Pattern]) -> Pattern:
        return self.fmap(func).squeezeJoin()

    # -- utilities --------------------------------------------------------

    def splitQueries(self) -> Pattern:
        """Cut every query at cycle boundaries."""
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            b, e = span.begin, span.end
            if _fsam(b) == _fsam(e) or _feq(b, e):
                return q(span)
            out: list[Hap] = []
            for sub in span.span_cycles():
                out.extend(q(sub))
            return out

        return Pattern(query)

    def withQuerySpan(self, func: Callable[[TimeSpan], TimeSpan]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: q(func(span)))

    def withQuerySpanMaybe(self, func: Callable[[TimeSpan], TimeSpan | None]) -> Pattern:
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            new = func(span)
            return [] if new is None else q(new)

        return Pattern(query)

    def withQueryTime(self, func: Callable[[Fraction], Fraction]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: q(TimeSpan(func(span.begin), func(span.end))))

    def withHapSpan(self, func: Callable[[TimeSpan], TimeSpan]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: [h.with_span(func) for h in q(span)])

    def withHapTime(self, func: Callable[[Fraction], Fraction]) -> Pattern:
        return self.withHapSpan(lambda s: TimeSpan(func(s.begin), func(s.end)))

    def withHaps(self, func: Callable[[list[Hap]], list[Hap]]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: func(q(span)), self.tactus)

    def withHap(self, func: Callable[[Hap], Hap]) -> Pattern:
        return self.withHaps(lambda haps: [func(h) for h in haps])

    def filterHaps(self, test: Callable[[Hap], bool]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: [h for h in q(span) if test(h)])

    def filterValues(self, test: Callable[[Any], bool]) -> Pattern:
        q = self.query_span
        return Pattern(lambda span: [h for h in q(span) if test(h.value)], self.tactus)

    def removeUndefineds(self) -> Pattern:
        return self.filterValues(lambda v: v is not None)

    def onsetsOnly(self) -> Pattern:
        return self.filterHaps(lambda h: h.has_onset())

    def discreteOnly(self) -> Pattern:
        return self.filterHaps(lambda h: h.whole is not None)

    def setTactus(self, tactus: Any) -> Pattern:
        """This pattern with another step count (a copy: patterns are shared, e.g. `silence`)."""
        t = None if tactus is None else frac(tactus)
        if t == self.tactus:
            return self
        p = Pattern(self.query_span, t)
        p._pure = self._pure
        p.weight = self.weight
        p.signal_of = self.signal_of
        return p

    # -- the plain (unpatterned) transformations, Strudel's `_name` --------

    def _fast(self, factor: Any) -> Pattern:
        if _is_zero(factor):
            return silence
        f = frac(factor)
        q = self.query_span
        if f == 1:
            return Pattern(q, self.tactus)
        fn = f.numerator
        fd = f.denominator
        if fd == 1 and fn > 0 and self._pure is not None:
            return _pure_grid(self._pure, fn, self.tactus)
        if fd == 1 and fn > 0:

            def query(span: TimeSpan) -> list[Hap]:
                return _retimed(q(TimeSpan(_fmul_int(span.begin, fn), _fmul_int(span.end, fn))), _fdiv_int, fn)

            return Pattern(query, self.tactus)
        inv = 1 / f

        def query_frac(span: TimeSpan) -> list[Hap]:
            return _retimed(q(TimeSpan(_fmul(span.begin, f), _fmul(span.end, f))), _fmul, inv)

        return Pattern(query_frac, self.tactus)

    def _slow(self, factor: Any) -> Pattern:
        if _is_zero(factor):
            return silence
        return self._fast(1 / frac(factor))

    def _early(self, offset: Any) -> Pattern:
        o = frac(offset)
        q = self.query_span
        if o == 0:
            return Pattern(q, self.tactus)
        if self.signal_of is not None:
            # the shifted query's part maps back to the query itself, exactly: sample at midpoint + o
            func, before = self.signal_of
            return make_signal(func, before + o)

        def query(span: TimeSpan) -> list[Hap]:
            return _retimed(q(TimeSpan(_fadd(span.begin, o), _fadd(span.end, o))), _fsub, o)

        return Pattern(query, self.tactus)

    def _late(self, offset: Any) -> Pattern:
        return self._early(-frac(offset))

    def _fastGap(self, factor: Any) -> Pattern:
        """Squeeze each cycle into its first 1/factor, leaving a gap (Strudel's fastGap)."""
        f = frac(factor)
        if f <= 0:
            return silence
        return self._gapped(f, _ifrac(0))

    def _gapped(self, f: Fraction, shift: Fraction) -> Pattern:
        """`_fastGap(f)._late(shift)` in one query (the hot path of `timecat`, i.e. of `@`).

        Strudel's fastGap is `withQuerySpanMaybe(qf).withHap(ef).splitQueries()`;
        this does the same arithmetic per cycle of the shifted frame, so the
        fragments are the same, without the intermediate haps.
        """
        inv = 1 / f
        if self._pure is not None and f >= 1:
            return _pure_slot(self._pure, inv, shift)
        one = _ifrac(1)
        q = self.query_span
        zero_shift = shift == 0

        p_inv = inv.numerator
        q_inv = inv.denominator
        contracting = f >= 1  # then a part never reaches past the gap, so no clamping (checked below)

        def query_cycle(s0: Fraction, s1: Fraction, out: list[Hap]) -> None:
            n0 = s0._numerator  # type: ignore[attr-defined]
            d0 = s0._denominator  # type: ignore[attr-defined]
            ci = n0 // d0
            # (s0 - cycle) * f >= 1, i.e. the query starts after this cycle's slot: nothing (integers only)
            if (n0 - ci * d0) * q_inv >= p_inv * d0:
                return
            cycle = _ifrac(ci)
            bpos = _fmul(_fsub(s0, cycle), f)
            epos = _fmul(_fsub(s1, cycle), f)
            if _flt(one, epos):
                epos = one
            base = _fadd(cycle, shift)
            bn = base._numerator  # type: ignore[attr-defined]
            bd = base._denominator  # type: ignore[attr-defined]

            def affine(t: Fraction) -> Fraction:
                # cycle + shift + (t - cycle) / f, as one normalised fraction
                n = t._numerator  # type: ignore[attr-defined]
                d = t._denominator  # type: ignore[attr-defined]
                dq = d * q_inv
                num = bn * dq + (n - ci * d) * p_inv * bd
                den = bd * dq
                g = _gcd(num, den)
                return _mk(num // g, den // g)

            for h in q(TimeSpan(_fadd(cycle, bpos), _fadd(cycle, epos))):
                begin = h.part.begin
                end = h.part.end
                w = h.whole
                if contracting and _fsam(begin) == ci and (_fsam(end) == ci or (end._denominator == 1 and end._numerator == ci + 1)):  # type: ignore[attr-defined]
                    part = TimeSpan(affine(begin), affine(end))
                    out.append(Hap(None if w is None else TimeSpan(affine(w.begin), affine(w.end)), part, h.value))
                    continue
                c = _ifrac(_fsam(begin))
                begin_pos = _fmul(_fsub(begin, c), inv)
                if _flt(one, begin_pos):
                    begin_pos = one
                end_pos = _fmul(_fsub(end, c), inv)
                if _flt(one, end_pos):
                    end_pos = one
                nb = _fadd(c, begin_pos)
                ne = _fadd(c, end_pos)
                if w is None:
                    new_whole = None
                else:
                    wb = _fsub(nb, _fmul(_fsub(begin, w.begin), inv))
                    we = _fadd(ne, _fmul(_fsub(w.end, end), inv))
                    new_whole = TimeSpan(wb, we) if zero_shift else TimeSpan(_fadd(wb, shift), _fadd(we, shift))
                part = TimeSpan(nb, ne) if zero_shift else TimeSpan(_fadd(nb, shift), _fadd(ne, shift))
                out.append(Hap(new_whole, part, h.value))

        def query(span: TimeSpan) -> list[Hap]:
            out: list[Hap] = []
            b = span.begin if zero_shift else _fsub(span.begin, shift)
            e = span.end if zero_shift else _fsub(span.end, shift)
            bs = _fsam(b)
            es = _fsam(e)
            if bs == es or _feq(b, e):
                query_cycle(b, e, out)
                return out
            if es < bs:
                return out  # a reversed span over cycles: Strudel's spanCycles is empty
            if es - bs > MAX_SPAN_CYCLES:
                raise PatternError(f"a query over more than {MAX_SPAN_CYCLES} cycles")
            query_cycle(b, _ifrac(bs + 1), out)
            for c in range(bs + 1, es):
                query_cycle(_ifrac(c), _ifrac(c + 1), out)
            if e._denominator != 1:  # type: ignore[attr-defined]
                query_cycle(_ifrac(es), e, out)
            return out

        return Pattern(query)

    def _compress(self, b: Any, e: Any) -> Pattern:
        b = frac(b)
        e = frac(e)
        if b > e or b > 1 or e > 1 or b < 0 or e < 0:
            return silence
        if b == e:
            # Strudel divides by zero here (its query then fails); nothing plays
            return nothing
        return self._gapped(1 / (e - b), b)

    def _compressSpan(self, span: TimeSpan) -> Pattern:
        return self._compress(span.begin, span.end)

    def _focus(self, b: Any, e: Any) -> Pattern:
        b = frac(b)
        e = frac(e)
        return self._fast(1 / (e - b))._late(cycle_pos(b))

    def _focusSpan(self, span: TimeSpan) -> Pattern:
        return self._focus(span.begin, span.end)

    def _zoom(self, s: Any, e: Any) -> Pattern:
        s = frac(s)
        e = frac(e)
        if s >= e:
            return nothing
        d = e - s
        tactus = None if self.tactus is None else self.tactus * d
        result = (
            self.withQuerySpan(lambda span: span.with_cycle(lambda t: t * d + s))
            .withHapSpan(lambda span: span.with_cycle(lambda t: (t - s) / d))
            .splitQueries()
        )
        result.tactus = tactus
        return result

    def _ply(self, factor: Any) -> Pattern:
        result = self.fmap(lambda x: pure(x)._fast(factor)).squeezeJoin()
        result.tactus = None if self.tactus is None else frac(factor) * self.tactus
        return result

    def _segment(self, rate: Any) -> Pattern:
        return self.struct(pure(True)._fast(rate)).setTactus(frac(rate))

    def _range(self, lo: Any, hi: Any) -> Pattern:
        return self.mul(_js_sub(hi, lo)).add(lo)

    def _rangex(self, lo: Any, hi: Any) -> Pattern:
        return self._range(math.log(lo), math.log(hi)).fmap(math.exp)

    def _range2(self, lo: Any, hi: Any) -> Pattern:
        return self.fromBipolar()._range(lo, hi)

    def _repeatCycles(self, n: Any) -> Pattern:
        q = self.query_span
        nf = frac(n)

        def query(span: TimeSpan) -> list[Hap]:
            cycle = sam(span.begin)
            source_cycle = sam(cycle / nf)
            delta = cycle - source_cycle
            haps = q(TimeSpan(span.begin - delta, span.end - delta))
            return [h.with_span(lambda s: TimeSpan(s.begin + delta, s.end + delta)) for h in haps]

        return Pattern(query, self.tactus).splitQueries().setTactus(self.tactus)

    def _iter(self, times: Any, back: bool = False) -> Pattern:
        t = frac(times)
        count = math.floor(t - 1) + 1  # listRange(0, times - 1)
        if count > MAX_COUNT:
            raise PatternError(f"iter: {count} is more than {MAX_COUNT}")
        pats = [
            self._late(_ifrac(i) / t) if back else self._early(_ifrac(i) / t) for i in range(max(count, 0))
        ]
        return slowcat(*pats).setTactus(self.tactus)

    def _iterBack(self, times: Any) -> Pattern:
        return self._iter(times, True)

    def _linger(self, t: Any) -> Pattern:
        if _is_zero(t):
            return silence
        tf = frac(t)
        if tf < 0:
            return self._zoom(tf + 1, 1)._slow(tf).setTactus(self.tactus)
        return self._zoom(0, tf)._slow(tf).setTactus(self.tactus)

    def _degradeByWith(self, with_pat: Pattern, x: Any) -> Pattern:
        """Keep the haps where `with_pat` is above `x` (Strudel: `fmap(a => _ => a).appLeft(filterValues(v > x))`)."""
        q = self.query_span
        qr = with_pat.query_span

        def query(span: TimeSpan) -> list[Hap]:
            out = []
            for h in q(span):
                for r in qr(h.whole_or_part()):
                    if r.value > x:
                        part = h.part.intersection(r.part)
                        if part is not None:
                            out.append(Hap(h.whole, part, h.value))
            return out

        return Pattern(query, self.tactus)

    def _degradeBy(self, x: Any) -> Pattern:
        from vtkernel.engine.patterns.signals import rand

        return self._degradeByWith(rand, x)

    def _undegradeBy(self, x: Any) -> Pattern:
        from vtkernel.engine.patterns.signals import rand

        return self._degradeByWith(rand.fmap(lambda r: 1 - r), x)

    def _sometimesBy(self, x: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        # Strudel's sometimesBy reifies x again and inner-joins over it, even when it is a plain number
        return (
            reify(x)
            .fmap(lambda v: stack(self._degradeBy(v), func(self._undegradeBy(_js_sub(1, v)))))
            .innerJoin()
        )

    def _someCyclesBy(self, x: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        from vtkernel.engine.patterns.signals import rand

        def both(v: Any) -> Pattern:
            return stack(
                self._degradeByWith(rand._segment(1), v),
                func(self._degradeByWith(rand.fmap(lambda r: 1 - r)._segment(1), _js_sub(1, v))),
            )

        return reify(x).fmap(both).innerJoin()

    def _euclidRot(self, pulses: Any, steps: Any, rotation: Any) -> Pattern:
        return self.struct(_euclid_rot(pulses, steps, rotation))

    def _euclid(self, pulses: Any, steps: Any) -> Pattern:
        return self.struct(_euclid_rot(pulses, steps, 0))

    def _euclidLegatoRot(self, pulses: Any, steps: Any, rotation: Any) -> Pattern:
        if js_number(pulses) < 1:
            return silence
        bits = _euclid_rot(pulses, steps, rotation)
        text = "".join(str(b) for b in bits)
        gapless = [(_ifrac(len(s) + 1), True) for s in text.split("1")[1:]]
        return self.struct(timecat(*gapless))

    def _euclidLegato(self, pulses: Any, steps: Any) -> Pattern:
        return self._euclidLegatoRot(pulses, steps, 0)

    def _firstOf(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        count = _js_array_len(js_number(n) - 1)
        pats = [func(self)] + [self] * count
        return slowcat_prime(*pats)

    _every = _firstOf

    def _lastOf(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        count = _js_array_len(js_number(n) - 1)
        pats = [self] * count + [func(self)]
        return slowcat_prime(*pats)

    def _off(self, time: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return stack(self, func(self.late(time)))

    def _chunk(self, n: Any, func: Callable[[Pattern], Pattern], back: bool = False, fast: bool = False) -> Pattern:
        count = _js_array_len(js_number(n) - 1)
        binary = [True] + [False] * count
        binary_pat = sequence(*binary)._iter(n, not back)
        pat = self if fast else self._repeatCycles(n)
        return pat.when(binary_pat, func)

    def _chunkBack(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._chunk(n, func, True)

    def _fastChunk(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._chunk(n, func, False, True)

    def _inside(self, factor: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return func(self._slow(factor))._fast(factor)

    def _outside(self, factor: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return func(self._fast(factor))._slow(factor)

    def _when(self, on: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return func(self) if _js_truthy(on) else self

    def _hurry(self, r: Any) -> Pattern:
        return self._fast(r).mul(pure({"speed": r}))

    def _swingBy(self, swing: Any, n: Any) -> Pattern:
        return self._inside(n, lambda p: p.late(seq(0, _js_div(swing, 2))))

    def _swing(self, n: Any) -> Pattern:
        return self._swingBy(1 / 3, n)

    def _echoWith(self, times: Any, time: Any, func: Callable[[Pattern, int], Pattern]) -> Pattern:
        count = _js_array_len(js_number(times))
        t = frac(time)
        return stack(*[func(self.late(t * i), i) for i in range(count)])

    def _echo(self, times: Any, time: Any, feedback: Any) -> Pattern:
        return self._echoWith(times, time, lambda p, i: p.set(pure(math.pow(feedback, i)).fmap(_gain_control)))

    def _stut(self, times: Any, feedback: Any, time: Any) -> Pattern:
        return self._echo(times, time, feedback)

    def _pressBy(self, r: Any) -> Pattern:
        return self.fmap(lambda x: pure(x).compress(r, 1)).squeezeJoin()

    def _chop(self, n: Any) -> Pattern:
        count = _js_array_len(js_number(n))

        def func(o: Any) -> Pattern:
            base = _js_assign_source(o)
            return sequence(
                *[{**base, "begin": _js_div(i, n), "end": _js_div(i + 1, n)} for i in range(count)]
            )

        return self.squeezeBind(func)

    def _striate(self, n: Any) -> Pattern:
        count = _js_array_len(js_number(n))
        slices = [{"begin": _js_div(i, n), "end": _js_div(i + 1, n)} for i in range(count)]
        return self.set(slowcat(*slices))._fast(n)

    def _steps(self, target: Any) -> Pattern:
        if self.tactus is None:
            return self
        if self.tactus == 0:
            return nothing
        return self.fast(frac(target) / self.tactus)

    # -- methods taking patterns (Strudel's patternified versions) ---------

    def _patternify(self, raw: Callable[..., Pattern], args: Sequence[Any], preserve_tactus: bool = False) -> Pattern:
        result = patternify(raw, args, self)
        return result.setTactus(self.tactus) if preserve_tactus else result

    def fast(self, factor: Any) -> Pattern:
        """Speed up by `factor` (patternable: `fast("<1 2>")`)."""
        return self._patternify(Pattern._fast, [factor], True)

    density = fast

    def slow(self, factor: Any) -> Pattern:
        """Slow down by `factor` (patternable)."""
        return self._patternify(Pattern._slow, [factor])

    sparsity = slow

    def early(self, offset: Any) -> Pattern:
        """Shift earlier by `offset` cycles (Tidal's `<~`)."""
        return self._patternify(Pattern._early, [offset], True)

    def late(self, offset: Any) -> Pattern:
        """Shift later by `offset` cycles (Tidal's `~>`)."""
        return self._patternify(Pattern._late, [offset], True)

    def fastGap(self, factor: Any) -> Pattern:
        return self._patternify(Pattern._fastGap, [factor])

    fastgap = fastGap

    def compress(self, b: Any, e: Any) -> Pattern:
        return self._patternify(Pattern._compress, [b, e])

    def focus(self, b: Any, e: Any) -> Pattern:
        return self._patternify(Pattern._focus, [b, e])

    def zoom(self, s: Any, e: Any) -> Pattern:
        return self._patternify(Pattern._zoom, [s, e])

    def ply(self, factor: Any) -> Pattern:
        """Repeat each event `factor` times inside its own span."""
        return self._patternify(Pattern._ply, [factor])

    def segment(self, rate: Any) -> Pattern:
        """Sample the pattern `rate` times per cycle (a continuous signal becomes discrete)."""
        return self._patternify(Pattern._segment, [rate])

    seg = segment

    def range(self, lo: Any, hi: Any) -> Pattern:
        """Scale unipolar values (0..1) to `lo..hi`."""
        return self._patternify(Pattern._range, [lo, hi])

    def rangex(self, lo: Any, hi: Any) -> Pattern:
        return self._patternify(Pattern._rangex, [lo, hi])

    def range2(self, lo: Any, hi: Any) -> Pattern:
        return self._patternify(Pattern._range2, [lo, hi])

    def repeatCycles(self, n: Any) -> Pattern:
        return self._patternify(Pattern._repeatCycles, [n], True)

    def iter(self, times: Any) -> Pattern:
        """Play the `times` subdivisions in order, starting one later each cycle."""
        return self._patternify(Pattern._iter, [times], True)

    def iterBack(self, times: Any) -> Pattern:
        return self._patternify(Pattern._iterBack, [times], True)

    iterback = iterBack

    def linger(self, t: Any) -> Pattern:
        """Repeat the first `t` of each cycle (the last `-t` when negative) to fill it."""
        return self._patternify(Pattern._linger, [t], True)

    def degradeByWith(self, with_pat: Any, x: Any) -> Pattern:
        return self._patternify(Pattern._degradeByWith, [with_pat, x])

    def degradeBy(self, x: Any) -> Pattern:
        """Drop each event with probability `x`, with Strudel's time-seeded random numbers."""
        return self._patternify(Pattern._degradeBy, [x])

    def degrade(self) -> Pattern:
        return self._degradeBy(0.5)

    def undegradeBy(self, x: Any) -> Pattern:
        return self._patternify(Pattern._undegradeBy, [x])

    def undegrade(self) -> Pattern:
        return self._undegradeBy(0.5)

    def sometimesBy(self, x: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        """Apply `func` to each event with probability `x`."""
        return self._patternify(Pattern._sometimesBy, [x, func])

    def sometimes(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._sometimesBy(0.5, func)

    def often(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self.sometimesBy(0.75, func)

    def rarely(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self.sometimesBy(0.25, func)

    def almostNever(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self.sometimesBy(0.1, func)

    def almostAlways(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self.sometimesBy(0.9, func)

    def always(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return func(self)

    def never(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self

    def someCyclesBy(self, x: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._someCyclesBy, [x, func])

    def someCycles(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._someCyclesBy(0.5, func)

    def euclid(self, pulses: Any, steps: Any) -> Pattern:
        """Euclidean rhythm: `pulses` onsets spread over `steps` (Strudel's Bjorklund)."""
        return self._patternify(Pattern._euclid, [pulses, steps])

    def euclidRot(self, pulses: Any, steps: Any, rotation: Any) -> Pattern:
        """As `euclid`, rotated by `rotation` steps the way Strudel rotates (`(3,8,2)` hits steps 0, 2, 5)."""
        return self._patternify(Pattern._euclidRot, [pulses, steps, rotation])

    euclidrot = euclidRot

    def euclidLegato(self, pulses: Any, steps: Any) -> Pattern:
        return self._patternify(Pattern._euclidLegato, [pulses, steps])

    def euclidLegatoRot(self, pulses: Any, steps: Any, rotation: Any) -> Pattern:
        return self._patternify(Pattern._euclidLegatoRot, [pulses, steps, rotation])

    def firstOf(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        """Apply `func` in the first of every `n` cycles."""
        return self._patternify(Pattern._firstOf, [n, func])

    every = firstOf

    def lastOf(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        """Apply `func` in the last of every `n` cycles."""
        return self._patternify(Pattern._lastOf, [n, func])

    def off(self, time: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        """Stack `func` of this pattern shifted later by `time`."""
        return self._patternify(Pattern._off, [time, func])

    def chunk(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        """Divide into `n` parts and apply `func` to one part per cycle, in turn."""
        return self._patternify(Pattern._chunk, [n, func])

    slowChunk = chunk
    slowchunk = chunk

    def chunkBack(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._chunkBack, [n, func])

    chunkback = chunkBack

    def fastChunk(self, n: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._fastChunk, [n, func])

    fastchunk = fastChunk

    def inside(self, factor: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._inside, [factor, func])

    def outside(self, factor: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._outside, [factor, func])

    def when(self, on: Any, func: Callable[[Pattern], Pattern]) -> Pattern:
        return self._patternify(Pattern._when, [on, func])

    def hurry(self, r: Any) -> Pattern:
        return self._patternify(Pattern._hurry, [r])

    def swingBy(self, swing: Any, n: Any) -> Pattern:
        return self._patternify(Pattern._swingBy, [swing, n])

    def swing(self, n: Any) -> Pattern:
        return self._patternify(Pattern._swing, [n])

    def echoWith(self, times: Any, time: Any, func: Callable[[Pattern, int], Pattern]) -> Pattern:
        return self._patternify(Pattern._echoWith, [times, time, func])

    stutWith = echoWith
    echowith = echoWith
    stutwith = echoWith

    def echo(self, times: Any, time: Any, feedback: Any) -> Pattern:
        return self._patternify(Pattern._echo, [times, time, feedback])

    def stut(self, times: Any, feedback: Any, time: Any) -> Pattern:
        return self._patternify(Pattern._stut, [times, feedback, time])

    def pressBy(self, r: Any) -> Pattern:
        return self._patternify(Pattern._pressBy, [r])

    def press(self) -> Pattern:
        return self._pressBy(0.5)

    def chop(self, n: Any) -> Pattern:
        return self._patternify(Pattern._chop, [n])

    def striate(self, n: Any) -> Pattern:
        return self._patternify(Pattern._striate, [n])

    def steps(self, target: Any) -> Pattern:
        return self._patternify(Pattern._steps, [target])

    def scale(self, name: Any) -> Pattern:
        """Scale degrees (numbers, or the `n` of mappings) to note names in `name`, e.g. `"C:minor"` (tonal.py)."""
        from vtkernel.engine.patterns.tonal import _scale

        return self._patternify(_scale, [name], True)

    def apply(self, func: Callable[[Pattern], Pattern]) -> Pattern:
        return func(self)

    def layer(self, *funcs: Callable[[Pattern], Pattern]) -> Pattern:
        return stack(*[f(self) for f in funcs])

    def superimpose(self, *funcs: Callable[[Pattern], Pattern]) -> Pattern:
        """Stack this pattern with each `func(self)`."""
        return stack(self, *[f(self) for f in funcs])

    def stack(self, *pats: Any) -> Pattern:
        return stack(self, *pats)

    def seq(self, *pats: Any) -> Pattern:
        return sequence(self, *pats)

    sequence = seq
    fastcat = seq

    def cat(self, *pats: Any) -> Pattern:
        return cat(self, *pats)

    slowcat = cat

    def hush(self) -> Pattern:
        return silence

    # -- unpatterned one-argument methods --------------------------------

    def rev(self) -> Pattern:
        """Reverse each cycle."""
        q = self.query_span

        def query(span: TimeSpan) -> list[Hap]:
            cycle = sam(span.begin)
            nxt = next_sam(span.begin)

            def reflect(s: TimeSpan) -> TimeSpan:
                return TimeSpan(cycle + (nxt - s.end), cycle + (nxt - s.begin))

            return [h.with_span(reflect) for h in q(reflect(span))]

        return Pattern(query).splitQueries().setTactus(self.tactus)

    def palindrome(self) -> Pattern:
        """Alternate forwards and backwards, cycle by cycle."""
        return self._lastOf(2, Pattern.rev).setTactus(self.tactus)

    def invert(self) -> Pattern:
        return self.fmap(lambda x: not _js_truthy(x)).setTactus(self.tactus)

    inv = invert

    def brak(self) -> Pattern:
        return self.when(slowcat(False, True), lambda x: fastcat(x, silence)._late(0.25))

    def round(self) -> Pattern:
        return self.asNumber().fmap(_js_round)

    def floor(self) -> Pattern:
        return self.asNumber().fmap(lambda v: _int_if_whole(math.floor(v)))

    def ceil(self) -> Pattern:
        return self.asNumber().fmap(lambda v: _int_if_whole(math.ceil(v)))

    def toBipolar(self) -> Pattern:
        return self.fmap(lambda x: x * 2 - 1)

    def fromBipolar(self) -> Pattern:
        return self.fmap(lambda x: (x + 1) / 2)

    def asNumber(self) -> Pattern:
        return self.fmap(parse_numeral)

    def ratio(self) -> Pattern:
        def r(v: Any) -> Any:
            if not isinstance(v, list):
                return v
            acc = v[0]
            for x in v[1:]:
                acc = _js_div(acc, x)
            return acc

        return self.fmap(r)

    def collect(self) -> Pattern:
        def group(haps: list[Hap]) -> list[Hap]:
            groups: list[list[Hap]] = []
            for h in haps:
                for g in groups:
                    if h.span_equals(g[0]):
                        g.append(h)
                        break
                else:
                    groups.append([h])
            return [Hap(g[0].whole, g[0].part, g) for g in groups]

        return self.withHaps(group)

    def arpWith(self, func: Callable[[list[Hap]], Any]) -> Pattern:
        inner = self.collect().fmap(lambda v: reify(func(v))).innerJoin()
        return inner.withHap(lambda h: Hap(h.whole, h.part, h.value.value))

    def arp(self, pat: Any) -> Pattern:
        p = reify(pat)
        return self.arpWith(lambda haps: p.fmap(lambda i: haps[int(_num_mod(i, len(haps)))]))

    # -- operators on values (Strudel's composers) ------------------------
    # Each `pat.add(x)` is `pat.add.in_(x)`: structure from the left. The other
    # structures are `pat.add.out(x)`, `.mix`, `.squeeze`, `.squeezeout`,
    # `.reset`, `.restart`, reached through `Pattern.op(name, how, *args)`.

    def op(self, what: str, how: str, *args: Any) -> Pattern:
        """Strudel's `pat[what][how](...args)`, e.g. `op("add", "out", 3)` is `pat.add.out(3)`."""
        if what not in _COMPOSERS:
            raise PatternError(f"unknown operator {what!r}")
        how = how.lower()
        if how not in _HOWS:
            raise PatternError(f"unknown structure {how!r}; use one of {', '.join(_HOWS)}")
        func, numeral = _COMPOSERS[what]
        other = sequence(*args)
        this: Pattern = self
        if numeral:
            this = this.fmap(_numeral_or_self)
            other = other.fmap(_numeral_or_self)
        if what == "keepif":
            return _HOWS[how](this, other, lambda a: lambda b: func(a, b)).removeUndefineds()
        return _HOWS[how](this, other, lambda a: lambda b: _compose_op(a, b, func))

    def set(self, *args: Any) -> Pattern:
        return self.op("set", "in", *args)

    def keep(self, *args: Any) -> Pattern:
        return self.op("keep", "in", *args)

    def keepif(self, *args: Any) -> Pattern:
        return self.op("keepif", "in", *args)

    def add(self, *args: Any) -> Pattern:
        """Add (numbers; note names count as midi numbers), structure from the left."""
        return self.op("add", "in", *args)

    def sub(self, *args: Any) -> Pattern:
        return self.op("sub", "in", *args)

    def mul(self, *args: Any) -> Pattern:
        return self.op("mul", "in", *args)

    def div(self, *args: Any) -> Pattern:
        return self.op("div", "in", *args)

    def mod(self, *args: Any) -> Pattern:
        return self.op("mod", "in", *args)

    def pow(self, *args: Any) -> Pattern:
        return self.op("pow", "in", *args)

    def lt(self, *args: Any) -> Pattern:
        return self.op("lt", "in", *args)

    def gt(self, *args: Any) -> Pattern:
        return self.op("gt", "in", *args)

    def lte(self, *args: Any) -> Pattern:
        return self.op("lte", "in", *args)

    def gte(self, *args: Any) -> Pattern:
        return self.op("gte", "in", *args)

    def eq(self, *args: Any) -> Pattern:
        return self.op("eq", "in", *args)

    def ne(self, *args: Any) -> Pattern:
        return self.op("ne", "in", *args)

    def struct(self, *args: Any) -> Pattern:
        """Take the structure (onsets) from a boolean pattern: `struct("t ~ t t")`."""
        return self.op("keepif", "out", *args)

    def structAll(self, *args: Any) -> Pattern:
        return self.op("keep", "out", *args)

    def mask(self, *args: Any) -> Pattern:
        """Silence where the boolean pattern is false or a rest; structure stays this pattern's."""
        return self.op("keepif", "in", *args)

    def maskAll(self, *args: Any) -> Pattern:
        return self.op("keep", "in", *args)

    def reset(self, *args: Any) -> Pattern:
        return self.op("keepif", "reset", *args)

    def restart(self, *args: Any) -> Pattern:
        return self.op("keepif", "restart", *args)

    def __add__(self, other: Any) -> Pattern:
        return self.add(other)

    def __radd__(self, other: Any) -> Pattern:
        return _lift(other).add(self)

    def __sub__(self, other: Any) -> Pattern:
        return self.sub(other)

    def __rsub__(self, other: Any) -> Pattern:
        return _lift(other).sub(self)

    def __mul__(self, other: Any) -> Pattern:
        return self.mul(other)

    def __rmul__(self, other: Any) -> Pattern:
        return _lift(other).mul(self)

    def __truediv__(self, other: Any) -> Pattern:
        return self.div(other)

    def __rtruediv__(self, other: Any) -> Pattern:
        return _lift(other).div(self)


class _BoundComposer:
    """`pat.add` in Strudel: callable (structure from the left, `in`) with the other structures as methods."""

    __slots__ = ("_fn", "_pat", "_what")

    def __init__(self, pat: Pattern, what: str, fn: Callable[..., Pattern]) -> None:
        self._pat = pat
        self._what = what
        self._fn = fn

    def __call__(self, *args: Any) -> Pattern:
        return self._fn(self._pat, *args)

    def in_(self, *args: Any) -> Pattern:
        return self._fn(self._pat, *args)

    def out(self, *args: Any) -> Pattern:
        """Structure from the argument (Tidal's `|+`)."""
        return self._pat.op(self._what, "out", *args)

    def mix(self, *args: Any) -> Pattern:
        """Structure from both sides (Tidal's `|+|`)."""
        return self._pat.op(self._what, "mix", *args)

    def squeeze(self, *args: Any) -> Pattern:
        return self._pat.op(self._what, "squeeze", *args)

    squeezein = squeeze

    def squeezeout(self, *args: Any) -> Pattern:
        return self._pat.op(self._what, "squeezeout", *args)

    def reset(self, *args: Any) -> Pattern:
        return self._pat.op(self._what, "reset", *args)

    def restart(self, *args: Any) -> Pattern:
        return self._pat.op(self._what, "restart", *args)


class Composer:
    """The descriptor behind `pat.add`, `pat.set`, ...: `pat.add(x)`, `pat.add.out(x)`, `pat.add.squeeze(x)`."""

    def __init__(self, what: str, fn: Callable[..., Pattern]) -> None:
        self.what = what
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Pattern | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return _BoundComposer(obj, self.what, self.fn)


COMPOSER_NAMES = ("set", "keep", "keepif", "add", "sub", "mul", "div", "mod", "pow", "lt", "gt", "lte", "gte", "eq", "ne")
COMPOSER_HOWS = ("out", "mix", "squeeze", "squeezein", "squeezeout", "reset", "restart")

for _what in COMPOSER_NAMES:
    setattr(Pattern, _what, Composer(_what, Pattern.__dict__[_what]))


def _js_assign_source(o: Any) -> dict[str, Any]:
    """What `Object.assign({}, o)` copies: a mapping's keys, a string's or array's items by index, else nothing."""
    if isinstance(o, dict):
        return o
    if isinstance(o, str | list):
        return {str(i): x for i, x in enumerate(o)}
    return {}


def _lift(x: Any) -> Pattern:
    """The left operand of `1 + pat`: a mini string, a pattern, or `pure(x)` (recorded, so it can be stored)."""
    return reify(x) if isinstance(x, str | Pattern) else pure(x)


def _gain_control(v: Any) -> dict[str, Any]:
    return {"gain": v}


def _identity(x: Any) -> Any:
    return x


def _is_zero(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float | Fraction) and x == 0


def _js_truthy(x: Any) -> bool:
    if isinstance(x, float) and math.isnan(x):
        return False
    return bool(x) if not isinstance(x, dict | list) else True


MAX_COUNT = 1024
"""Largest count a transformation expands eagerly (`iter`, `every`, `echo`, `chop`, ...): hostile input stays cheap."""

MAX_SPAN_CYCLES = 100_000
"""Most cycles one query may be cut into (a query of a pattern sped up 1e12 times fails instead of hanging)."""


def _js_array_len(n: float | int) -> int:
    """`Array(n)` in JavaScript: a non-negative integer length, else a RangeError (and at most MAX_COUNT)."""
    if isinstance(n, float):
        if not n.is_integer():
            raise PatternError(f"invalid count {n}")
        n = int(n)
    if n < 0:
        raise PatternError(f"invalid count {n}")
    if n > MAX_COUNT:
        raise PatternError(f"a count of {n} is more than {MAX_COUNT}")
    return n


def _int_if_whole(v: float | int) -> float | int:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _js_round(v: Any) -> Any:
    if isinstance(v, int):
        return v
    return _int_if_whole(math.floor(v + 0.5))


def _js_sub(a: Any, b: Any) -> Any:
    return a - b


def _js_div(a: Any, b: Any) -> Any:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        if b == 0:
            if a == 0 or (isinstance(a, float) and math.isnan(a)):
                return math.nan
            return math.copysign(math.inf, a) * (1 if math.copysign(1, b) > 0 else -1)
        r = a / b
        return _int_if_whole(r)
    return a / b


# ---------------------------------------------------------------------------
# Patternifying (Strudel's `register`)


def patternify(raw: Callable[..., Pattern], args: Sequence[Any], pat: Pattern) -> Pattern:
    """Apply `raw(*values, pat)` with each arg turned into a pattern, as Strudel's `register` does.

    When every argument is a pure value, `raw` gets the values directly; else
    the argument patterns are combined with `appLeft` (structure from the
    first) and the resulting pattern of patterns is inner-joined.
    """
    pats = [reify(a) for a in args]
    if all(p._pure is not None for p in pats):
        return raw(pat, *[p._pure for p in pats])
    left, *right = pats
    acc = left.fmap(lambda a: (a,))
    for p in right:
        acc = acc.fmap(lambda t: lambda b: (*t, b)).appLeft(p)
    return acc.fmap(lambda t: raw(pat, *t)).innerJoin()


# ---------------------------------------------------------------------------
# Operators


def parse_numeral(x: Any) -> Any:
    """Strudel's `parseNumeral`: a number, or a note name as its midi number."""
    n = js_number(x)
    if not (isinstance(n, float) and math.isnan(n)):
        return n
    if isinstance(x, str):
        from vtkernel.engine.patterns.tonal import is_note, note_to_midi

        if is_note(x):
            return note_to_midi(x)
    raise PatternError(f'cannot parse as numeral: "{x}"')


def _numeral_or_self(x: Any) -> Any:
    if isinstance(x, dict):
        return x
    return parse_numeral(x)


def _js_add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        return _js_str(a) + _js_str(b)
    return a + b


def _js_str(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _js_mul(a: Any, b: Any) -> Any:
    return a * b


def _js_pow(a: Any, b: Any) -> Any:
    try:
        return _int_if_whole(math.pow(a, b)) if isinstance(a, int) and isinstance(b, int) and b >= 0 else math.pow(a, b)
    except (ValueError, OverflowError):
        return math.nan


def _numeric_args(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def wrapped(a: Any, b: Any) -> Any:
        return func(parse_numeral(a), parse_numeral(b))

    return wrapped


_COMPOSERS: dict[str, tuple[Callable[[Any, Any], Any], bool]] = {
    "set": (lambda a, b: b, False),
    "keep": (lambda a, b: a, False),
    "keepif": (lambda a, b: a if _js_truthy(b) else None, False),
    "add": (_numeric_args(_js_add), False),
    "sub": (_numeric_args(lambda a, b: a - b), False),
    "mul": (_numeric_args(_js_mul), False),
    "div": (_numeric_args(_js_div), False),
    "mod": (_numeric_args(_num_mod), False),
    "pow": (_numeric_args(_js_pow), False),
    "lt": (lambda a, b: a < b, False),
    "gt": (lambda a, b: a > b, False),
    "lte": (lambda a, b: a <= b, False),
    "gte": (lambda a, b: a >= b, False),
    "eq": (lambda a, b: a == b, False),
    "ne": (lambda a, b: a != b, False),
    "and": (lambda a, b: b if _js_truthy(a) else a, False),
    "or": (lambda a, b: a if _js_truthy(a) else b, False),
}


def _compose_op(a: Any, b: Any, func: Callable[[Any, Any], Any]) -> Any:
    """Strudel's `_composeOp`: mappings combine key by key; a plain value is `{"value": v}`."""
    a_obj = isinstance(a, dict)
    b_obj = isinstance(b, dict)
    if a_obj or b_obj:
        if not a_obj:
            a = {"value": a}
        if not b_obj:
            b = {"value": b}
        return union_with(a, b, func)
    return func(a, b)


def union_with(a: dict[str, Any], b: dict[str, Any], func: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """Strudel's `unionWithObj`: b's keys over a's, common keys combined with `func`."""
    if b.get("value") is not None and len(b) == 1:
        # Strudel: "Can't do arithmetic on control pattern" (it keeps a)
        return a
    out = {**a, **b}
    for k in a:
        if k in b:
            out[k] = func(a[k], b[k])
    return out


def _op_in(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return this.fmap(func).appLeft(other)


def _op_out(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return this.fmap(func).appRight(other)


def _op_mix(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return this.fmap(func).appBoth(other)


def _op_squeeze(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return this.fmap(lambda a: other.fmap(lambda b: func(a)(b))).squeezeJoin()


def _op_squeeze_out(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return other.fmap(lambda a: this.fmap(lambda b: func(b)(a))).squeezeJoin()


def _op_reset(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return other.fmap(lambda b: this.fmap(lambda a: func(a)(b))).resetJoin()


def _op_restart(this: Pattern, other: Pattern, func: Callable[[Any], Any]) -> Pattern:
    return other.fmap(lambda b: this.fmap(lambda a: func(a)(b))).restartJoin()


_HOWS: dict[str, Callable[[Pattern, Pattern, Callable[[Any], Any]], Pattern]] = {
    "in": _op_in,
    "out": _op_out,
    "mix": _op_mix,
    "squeeze": _op_squeeze,
    "squeezein": _op_squeeze,
    "squeezeout": _op_squeeze_out,
    "reset": _op_reset,
    "restart": _op_restart,
}


# ---------------------------------------------------------------------------
# Elementary patterns and combinators


def gap(tactus: Any = 1) -> Pattern:
    """Silence with a step count (`~@n`)."""
    return Pattern(lambda _span: [], frac(tactus))


silence = gap(1)
nothing = gap(0)


def pure(value: Any) -> Pattern:
    """A value repeating once per cycle (one hap per cycle)."""

    def query(span: TimeSpan) -> list[Hap]:
        b = span.begin
        e = span.end
        bs = _fsam(b)
        if bs == _fsam(e) or _feq(b, e):
            return [Hap(TimeSpan(_ifrac(bs), _ifrac(bs + 1)), span, value)]
        return [Hap(whole_cycle(s.begin), s, value) for s in span.span_cycles()]

    result = Pattern(query, _ifrac(1))
    result._pure = value
    return result


def make_signal(func: Callable[[float], Any], offset: Fraction | None = None) -> Pattern:
    """A continuous pattern: `func` of the part's midpoint (+ offset), as a double like JS's `valueOf`."""
    o = _ifrac(0) if offset is None else offset
    on = o._numerator  # type: ignore[attr-defined]
    od = o._denominator  # type: ignore[attr-defined]

    def query(span: TimeSpan) -> list[Hap]:
        b = span.begin
        e = span.end
        bd = b._denominator  # type: ignore[attr-defined]
        ed = e._denominator  # type: ignore[attr-defined]
        # the exact midpoint (plus offset), rounded once to a double: int / int rounds correctly, as JS's n / d
        den = 2 * bd * ed
        num = b._numerator * ed + e._numerator * bd  # type: ignore[attr-defined]
        if on:
            num = num * od + on * den
            den *= od
        return [Hap(None, span, func(num / den))]

    p = Pattern(query)
    p.signal_of = (func, o)
    return p


def _pure_grid(value: Any, k: int, tactus: Fraction | None) -> Pattern:
    """`pure(value)._fast(k)` in one query: the same haps, fragment for fragment (the hot path of `a*4`)."""

    def step(c: int) -> Fraction:
        g = _gcd(c, k)
        return _mk(c // g, k // g)

    def query(span: TimeSpan) -> list[Hap]:
        b = span.begin
        e = span.end
        bs = (b._numerator * k) // b._denominator  # type: ignore[attr-defined]
        en = e._numerator * k  # type: ignore[attr-defined]
        ed = e._denominator  # type: ignore[attr-defined]
        es = en // ed
        if bs == es or _feq(b, e):
            return [Hap(TimeSpan(step(bs), step(bs + 1)), span, value)]
        if es < bs:
            return []
        if es - bs > MAX_SPAN_CYCLES:
            raise PatternError(f"a query over more than {MAX_SPAN_CYCLES} cycles")
        last = es if en % ed == 0 else es + 1  # the scaled end is a cycle boundary, or inside cycle es
        out = []
        lo = step(bs)
        for c in range(bs, last):
            hi = step(c + 1)
            out.append(Hap(TimeSpan(lo, hi), TimeSpan(b if c == bs else lo, e if c == last - 1 else hi), value))
            lo = hi
        return out

    return Pattern(query, tactus)


def _pure_slot(value: Any, width: Fraction, shift: Fraction) -> Pattern:
    """`pure(value)._gapped(1/width, shift)`: the value in `[c + shift, c + shift + width)` of each cycle c.

    The hot path of a sequence step (`timecat` compresses every step). Worked
    out from the general `_gapped` for a pure inner pattern: the query is cut at
    `c + shift`, a piece starting at or after its slot's end has nothing, any
    other piece is one hap whose part is the piece clipped to the slot.
    """
    sn = shift._numerator  # type: ignore[attr-defined]
    sd = shift._denominator  # type: ignore[attr-defined]
    wn = width._numerator  # type: ignore[attr-defined]
    wd = width._denominator  # type: ignore[attr-defined]

    def piece(p0: Fraction, p1: Fraction, ci: int, out: list[Hap]) -> None:
        # p0 - (ci + shift) >= width: the piece starts after the slot (integers only)
        n0 = p0._numerator  # type: ignore[attr-defined]
        d0 = p0._denominator  # type: ignore[attr-defined]
        if ((n0 - ci * d0) * sd - sn * d0) * wd >= wn * d0 * sd:
            return
        slot_begin = _fadd(_ifrac(ci), shift)
        slot_end = _fadd(slot_begin, width)
        end = slot_end if _flt(slot_end, p1) else p1
        out.append(Hap(TimeSpan(slot_begin, slot_end), TimeSpan(p0, end), value))

    def query(span: TimeSpan) -> list[Hap]:
        qb = span.begin
        qe = span.end
        # cycle numbers of the query's ends in the shifted frame (t - shift)
        bs = (qb._numerator * sd - sn * qb._denominator) // (qb._denominator * sd)  # type: ignore[attr-defined]
        en = qe._numerator * sd - sn * qe._denominator  # type: ignore[attr-defined]
        ed = qe._denominator * sd  # type: ignore[attr-defined]
        es = en // ed
        out: list[Hap] = []
        if bs == es or _feq(qb, qe):
            piece(qb, qe, bs, out)
            return out
        if es < bs:
            return out
        if es - bs > MAX_SPAN_CYCLES:
            raise PatternError(f"a query over more than {MAX_SPAN_CYCLES} cycles")
        cut = _fadd(_ifrac(bs + 1), shift)
        piece(qb, cut, bs, out)
        for c in range(bs + 1, es):
            nxt = _fadd(_ifrac(c + 1), shift)
            piece(cut, nxt, c, out)
            cut = nxt
        if en % ed != 0:
            piece(cut, qe, es, out)
        return out

    return Pattern(query)


def steady(value: Any) -> Pattern:
    """A continuous constant value."""
    return Pattern(lambda span: [Hap(None, span, value)])


def is_pattern(x: Any) -> bool:
    return isinstance(x, Pattern)


def reify(thing: Any) -> Pattern:
    """A pattern from anything: a Pattern passes, a str is mini-notation, a list a sequence, else `pure`."""
    if isinstance(thing, Pattern):
        return thing
    if isinstance(thing, str):
        from vtkernel.engine.patterns.mini import mini

        state = RECORDING
        state.depth += 1
        try:
            parsed = mini(thing)
        finally:
            state.depth -= 1
        return parsed.with_tree(thing)
    return pure(thing)


def _seq_or_reify(x: Any) -> Pattern:
    return sequence(*x) if isinstance(x, list | tuple) else reify(x)


def stack(*pats: Any) -> Pattern:
    """Play the patterns at the same time."""
    ps = [_seq_or_reify(p) for p in pats]
    queries = [p.query_span for p in ps]

    def query(span: TimeSpan) -> list[Hap]:
        out: list[Hap] = []
        for q in queries:
            out.extend(q(span))
        return out

    return Pattern(query, _flcm(p.tactus for p in ps))


polyrhythm = stack
pr = stack


def slowcat(*pats: Any) -> Pattern:
    """One pattern per cycle, in turn (mini-notation's `< >`); no cycle of a constituent is skipped."""
    ps = [fastcat(*p) if isinstance(p, list | tuple) else reify(p) for p in pats]
    if len(ps) == 1:
        return ps[0]
    n = len(ps)
    queries = [p.query_span for p in ps]

    def query(span: TimeSpan) -> list[Hap]:
        if n == 0:
            return []
        b = span.begin
        cyc = _fsam(b)
        q = queries[cyc % n]
        shift = cyc - b._numerator // (b._denominator * n)  # type: ignore[attr-defined]
        if shift == 0:
            return q(span)
        offset = _ifrac(shift)
        return _retimed(q(TimeSpan(_fsub(b, offset), _fsub(span.end, offset))), _fadd, offset)

    result = Pattern(query).splitQueries()
    result.tactus = _flcm(p.tactus for p in ps)
    return result


def cat(*pats: Any) -> Pattern:
    """`slowcat`: one pattern per cycle."""
    return slowcat(*pats)


def slowcat_prime(*pats: Any) -> Pattern:
    """Strudel's `slowcatPrime`: pattern `cycle % n` plays cycle `cycle` (cycles are skipped)."""
    ps = [reify(p) for p in pats]
    n = len(ps)
    queries = [p.query_span for p in ps]

    def query(span: TimeSpan) -> list[Hap]:
        if n == 0:
            return []
        b = span.begin
        i = math.fmod(math.floor(b), n)  # JS `%`: negative cycles pick nothing
        if i < 0:
            return []
        return queries[int(i)](span)

    return Pattern(query).splitQueries()


slowcatPrime = slowcat_prime


def fastcat(*pats: Any) -> Pattern:
    """All patterns squeezed into one cycle (mini-notation's sequence)."""
    result = slowcat(*pats)
    if len(pats) > 1:
        result = result._fast(len(pats))
        result.tactus = _ifrac(len(pats))
    return result


def sequence(*pats: Any) -> Pattern:
    return fastcat(*pats)


seq = sequence


def timecat(*timepats: Any) -> Pattern:
    """Steps with relative lengths: `timecat((3, "e3"), (1, "g3"))` is `"e3@3 g3"`.

    A bare pattern (not a pair) counts its own step count (tactus).
    """
    if len(timepats) == 0:
        return nothing
    pairs: list[list[Any]] = [
        [p[0], p[1]] if isinstance(p, list | tuple) else [reify(p).tactus, reify(p)] for p in timepats
    ]
    if any(p[0] is None for p in pairs):
        times = [p[0] for p in pairs if p[0] is not None]
        if not times:
            return fastcat(*[p[1] for p in pairs])
        if len(times) == len(pairs):
            return nothing
        avg = sum((frac(t) for t in times), _ifrac(0)) / len(times)
        for p in pairs:
            if p[0] is None:
                p[0] = avg
    if len(pairs) == 1:
        only = reify(pairs[0][1])
        result = Pattern(only.query_span, frac(pairs[0][0]))
        result._pure = only._pure
        return result
    total = sum((frac(p[0]) for p in pairs), _ifrac(0))
    begin = _ifrac(0)
    parts = []
    for time, pat in pairs:
        t = frac(time)
        if t == 0:
            continue
        end = begin + t
        parts.append(reify(pat)._compress(begin / total, end / total))
        begin = end
    result = stack(*parts)
    result.tactus = total
    return result


timeCat = timecat
s_cat = timecat


def arrange(*sections: tuple[Any, Any]) -> Pattern:
    total = sum(js_number(c) for c, _ in sections)
    return timecat(*[(c, reify(p).fast(c)) for c, p in sections]).slow(total)


def s_polymeter(*pats: Any) -> Pattern:
    """Polymeter (`{a b c, d e}`): every pattern at the step rate of the first (by tactus)."""
    ps = [_seq_or_reify(p) for p in pats]
    ps = [p for p in ps if p.tactus is not None]
    if not ps:
        return silence
    tactus = ps[0].tactus
    assert tactus is not None
    if tactus == 0:
        return nothing
    head, *tail = ps
    result = stack(head, *[p._slow(p.tactus / tactus) for p in tail if p.tactus is not None])
    result.tactus = tactus
    return result


def s_polymeterSteps(steps: Any, *pats: Any) -> Pattern:
    """Polymeter with `steps` steps per cycle (`{a b c}%4`)."""
    if not pats:
        return silence
    return s_polymeter(*pats).steps(steps)


polymeter = s_polymeter
polymeterSteps = s_polymeterSteps
pm = s_polymeter


def _choose_with(pat: Pattern, xs: Sequence[Any]) -> Pattern | None:
    ps = [reify(x) for x in xs]
    if not ps:
        return None
    n = len(ps)

    def pick(i: Any) -> Pattern:
        key: int = min(max(math.floor(i), 0), n - 1)
        return ps[key]

    return pat.range(0, n).fmap(pick)


def chooseWith(pat: Any, xs: Sequence[Any]) -> Pattern:
    """Choose among `xs` by a pattern of numbers in 0..1; structure from the chooser."""
    chosen = _choose_with(reify(pat), xs)
    return silence if chosen is None else chosen.outerJoin()


def chooseInWith(pat: Any, xs: Sequence[Any]) -> Pattern:
    """Choose among `xs` by a pattern of numbers in 0..1; structure from the chosen patterns (`|`)."""
    chosen = _choose_with(reify(pat), xs)
    return silence if chosen is None else chosen.innerJoin()


def choose(*xs: Any) -> Pattern:
    from vtkernel.engine.patterns.signals import rand

    return chooseWith(rand, xs)


def chooseCycles(*xs: Any) -> Pattern:
    """One of `xs` per cycle, at random (Strudel's `randcat`)."""
    from vtkernel.engine.patterns.signals import rand

    return chooseInWith(rand.segment(1), xs)


randcat = chooseCycles


# ---------------------------------------------------------------------------
# Euclidean rhythms (Strudel's Bjorklund, after Rohan Drape's Haskell)


def bjork(ons: int, steps: int) -> list[int]:
    """Strudel's `bjork`: `ons` ones spread over `steps`; negative `ons` inverts."""
    inverted = ons < 0
    ons = abs(ons)
    offs = steps - ons
    if offs < 0 or steps > MAX_COUNT:
        raise PatternError(f"a Euclidean rhythm needs 0 <= pulses <= steps <= {MAX_COUNT}, got ({ons},{steps})")
    counts = (ons, offs)
    xs: list[list[int]] = [[1] for _ in range(ons)]
    ys: list[list[int]] = [[0] for _ in range(offs)]
    while min(counts) > 1:
        o, f = counts
        if o > f:
            head, rest = xs[:f], xs[f:]
            counts = (f, o - f)
            xs, ys = [a + b for a, b in zip(head, ys, strict=False)], rest
        else:
            head, rest = ys[:o], ys[o:]
            counts = (o, f - o)
            xs, ys = [a + b for a, b in zip(xs, head, strict=False)], rest
    result = [x for group in xs for x in group] + [y for group in ys for y in group]
    if inverted:
        return [1 - x for x in result]
    return result


def _js_slice_index(i: int, n: int) -> int:
    if i < 0:
        return max(n + i, 0)
    return min(i, n)


def _rotate(arr: list[int], n: int) -> list[int]:
    """Strudel's `rotate(arr, n)`: `arr.slice(n).concat(arr.slice(0, n))` with JS slice semantics."""
    size = len(arr)
    i = _js_slice_index(n, size)
    return arr[i:] + arr[:i]


def _euclid_int(x: Any, what: str) -> int:
    v = js_number(x)
    if isinstance(v, float):
        if not v.is_integer():
            raise PatternError(f"Euclid {what} must be a whole number, got {x!r}")
        v = int(v)
    return v


def _euclid_rot(pulses: Any, steps: Any, rotation: Any) -> list[int]:
    b = bjork(_euclid_int(pulses, "pulses"), _euclid_int(steps, "steps"))
    r = js_number(rotation)
    if isinstance(r, float) and math.isnan(r):
        r = 0
    r = math.trunc(r)
    if r:
        return _rotate(b, -r)
    return b


# ---------------------------------------------------------------------------
# Top-level functions with Strudel's argument order (pattern last)


def _method(name: str, arity: int) -> Callable[..., Any]:
    """Strudel's curried top-level form: `fast(2, pat)` is `pat.fast(2)`, and `fast(2)` a function of a pattern."""

    def function(*args: Any) -> Any:
        if len(args) == arity:
            front = args

            def partial(pat: Any) -> Pattern:
                method: Callable[..., Pattern] = getattr(reify(pat), name)
                return method(*front)

            partial.__name__ = f"{name}({', '.join(map(repr, front))})"
            return partial
        if len(args) != arity + 1:
            raise TypeError(f"{name}() takes {arity} argument(s) and then a pattern, got {len(args)}")
        *given, pat = args
        bound: Callable[..., Pattern] = getattr(reify(pat), name)
        return bound(*given)

    function.__name__ = name
    function.__doc__ = f"`{name}(..., pat)` is `pat.{name}(...)`; with the pattern left out, a function of one."
    return function


fast = _method("fast", 1)
slow = _method("slow", 1)
early = _method("early", 1)
late = _method("late", 1)
rev = _method("rev", 0)
ply = _method("ply", 1)
iter = _method("iter", 1)
iterBack = _method("iterBack", 1)
palindrome = _method("palindrome", 0)
firstOf = _method("firstOf", 2)
every = _method("every", 2)
lastOf = _method("lastOf", 2)
off = _method("off", 2)
degradeBy = _method("degradeBy", 1)
degrade = _method("degrade", 0)
undegradeBy = _method("undegradeBy", 1)
sometimesBy = _method("sometimesBy", 2)
sometimes = _method("sometimes", 1)
often = _method("often", 1)
rarely = _method("rarely", 1)
almostNever = _method("almostNever", 1)
almostAlways = _method("almostAlways", 1)
someCyclesBy = _method("someCyclesBy", 2)
someCycles = _method("someCycles", 1)
struct = _method("struct", 1)
mask = _method("mask", 1)
euclid = _method("euclid", 2)
euclidRot = _method("euclidRot", 3)
euclidLegato = _method("euclidLegato", 2)
euclidLegatoRot = _method("euclidLegatoRot", 3)
segment = _method("segment", 1)
range_ = _method("range", 2)
add = _method("add", 1)
sub = _method("sub", 1)
mul = _method("mul", 1)
div = _method("div", 1)
chunk = _method("chunk", 2)
chunkBack = _method("chunkBack", 2)
fastChunk = _method("fastChunk", 2)
linger = _method("linger", 1)
zoom = _method("zoom", 2)
compress = _method("compress", 2)
fastGap = _method("fastGap", 1)
inside = _method("inside", 2)
outside = _method("outside", 2)
when = _method("when", 2)
invert = _method("invert", 0)
brak = _method("brak", 0)
press = _method("press", 0)
pressBy = _method("pressBy", 1)
hurry = _method("hurry", 1)
swingBy = _method("swingBy", 2)
swing = _method("swing", 1)
echo = _method("echo", 3)
echoWith = _method("echoWith", 3)
stut = _method("stut", 3)
chop = _method("chop", 1)
striate = _method("striate", 1)
repeatCycles = _method("repeatCycles", 1)
set_ = _method("set", 1)
keep = _method("keep", 1)
keepif = _method("keepif", 1)


def superimpose(*args: Any) -> Pattern:
    """`superimpose(f, ..., pat)`."""
    *funcs, pat = args
    return reify(pat).superimpose(*funcs)
