"""Laws of the pattern core, checked on generated patterns (hypothesis; pure and fast).

- `fast(2).slow(2)` is the identity, `rev(rev(p))` is `p` cycle by cycle;
- `<...>` of one-cycle patterns repeats with its length as period;
- `from_json(p.tree)` is the same pattern (same haps, same tree);
- splitting a query anywhere gives the same onsets as one query (the
  scheduler queries successive windows and relies on it);
- a pattern's cycle `c` does not depend on when it was built: queries are
  pure functions of time.
"""

from __future__ import annotations

import json
from fractions import Fraction
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtkernel.engine.patterns.core import Hap, Pattern
from vtkernel.patterns import (
    cat,
    from_json,
    irand,
    mini,
    n,
    pure,
    rand,
    s,
    saw,
    seq,
    sine,
    stack,
    timecat,
    to_json,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

atoms = st.one_of(st.integers(0, 9), st.sampled_from(["bd", "sd", "hh", "cp"]))
small = st.integers(1, 4)
factors = st.sampled_from([1, 2, 3, Fraction(1, 2), Fraction(3, 2), Fraction(2, 3), 0.25, 1.5])
shifts = st.sampled_from([0, Fraction(1, 4), Fraction(1, 3), 0.125, Fraction(-1, 8), 1])


def _leaf() -> st.SearchStrategy[Pattern]:
    return st.one_of(
        atoms.map(pure),
        st.lists(atoms, min_size=1, max_size=4).map(lambda xs: seq(*xs)),
        st.sampled_from(["bd*2 [~ sd]", "<a b c>", "a(3,8)", "a b? c", "[a|b] c", "{a b c}%4", "a@3 b", "0 .. 3"]).map(
            mini
        ),
        st.just(irand(4).segment(4)),
        st.just(saw.range(0, 4).segment(3)),
    )


def _extend(children: st.SearchStrategy[Pattern]) -> st.SearchStrategy[Pattern]:
    one = children
    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda ps: seq(*ps)),
        st.lists(children, min_size=1, max_size=3).map(lambda ps: cat(*ps)),
        st.lists(children, min_size=1, max_size=3).map(lambda ps: stack(*ps)),
        st.tuples(small, one, small, one).map(lambda t: timecat((t[0], t[1]), (t[2], t[3]))),
        st.tuples(one, factors).map(lambda t: t[0].fast(t[1])),
        st.tuples(one, factors).map(lambda t: t[0].slow(t[1])),
        st.tuples(one, shifts).map(lambda t: t[0].early(t[1])),
        st.tuples(one, shifts).map(lambda t: t[0].late(t[1])),
        one.map(lambda p: p.rev()),
        st.tuples(one, small).map(lambda t: t[0].ply(t[1])),
        st.tuples(one, small).map(lambda t: t[0].iter(t[1])),
        st.tuples(one, small).map(lambda t: t[0].every(t[1], lambda x: x.fast(2))),
        st.tuples(one, shifts).map(lambda t: t[0].off(t[1], lambda x: x.ply(2))),
        st.tuples(one, st.sampled_from([0.25, 0.5, 0.75])).map(lambda t: t[0].degradeBy(t[1])),
        st.tuples(one, st.sampled_from([0.3, 0.6])).map(lambda t: t[0].sometimesBy(t[1], lambda x: x.ply(2))),
        one.map(lambda p: p.struct("t ~ t t")),
        one.map(lambda p: p.mask("<1 [0 1]>")),
        one.map(lambda p: p.euclid(3, 8)),
        st.tuples(one, small).map(lambda t: t[0].chunk(t[1], lambda x: x.fast(2))),
        st.tuples(one, st.sampled_from([0.25, 0.5, 1])).map(lambda t: t[0].linger(t[1])),
        one.map(lambda p: p.palindrome()),
        one.map(lambda p: p.fast("<1 2>")),
        one.map(lambda p: s(p).n("<0 3>")),
    )


patterns = st.recursive(_leaf(), _extend, max_leaves=6)


def normal(haps: list[Hap]) -> list[tuple[Any, ...]]:
    def key(h: Hap) -> tuple[Any, ...]:
        whole = None if h.whole is None else (h.whole.begin, h.whole.end)
        return (whole is None, whole or (0, 0), h.part.begin, h.part.end, json.dumps(h.value, sort_keys=True))

    return sorted(key(h) for h in haps)


def onset_set(p: Pattern, b: Fraction, e: Fraction) -> list[tuple[Any, ...]]:
    """The events starting in [b, e): whole span and value (the fragment's part depends on the query)."""
    return sorted(
        (h.whole.begin, h.whole.end, json.dumps(h.value, sort_keys=True))
        for h in p.query(b, e)
        if h.whole is not None and h.has_onset() and b <= h.whole.begin < e
    )


@SETTINGS
@given(patterns)
def test_fast_2_then_slow_2_is_the_identity(p: Pattern):
    assert normal(p.fast(2).slow(2).query(0, 4)) == normal(p.query(0, 4))


@SETTINGS
@given(patterns, st.integers(-2, 5))
def test_rev_of_rev_is_the_pattern_cycle_by_cycle(p: Pattern, c: int):
    assert normal(p.rev().rev().query(c, c + 1)) == normal(p.query(c, c + 1))


@SETTINGS
@given(st.lists(st.lists(atoms, min_size=1, max_size=3), min_size=1, max_size=5), st.integers(-3, 6))
def test_alternation_repeats_with_its_length_as_period(steps: list[list[Any]], c: int):
    text = "<" + " ".join("[" + " ".join(map(str, xs)) + "]" for xs in steps) + ">"
    p = mini(text)
    k = len(steps)
    here = [(h.whole.begin - c, h.value) for h in p.query(c, c + 1)]
    there = [(h.whole.begin - c - k, h.value) for h in p.query(c + k, c + k + 1)]
    assert here == there
    assert [v for _, v in here] == steps[c % k]


@SETTINGS
@given(patterns)
def test_from_json_of_the_tree_is_the_same_pattern(p: Pattern):
    data = json.loads(json.dumps(to_json(p)))
    q = from_json(data)
    assert q.tree == p.tree
    assert normal(q.query(0, 4)) == normal(p.query(0, 4))


@SETTINGS
@given(patterns, st.fractions(min_value=0, max_value=4, max_denominator=24))
def test_splitting_a_query_keeps_the_same_onsets(p: Pattern, t: Fraction):
    zero, four = Fraction(0), Fraction(4)
    assert sorted(onset_set(p, zero, t) + onset_set(p, t, four)) == onset_set(p, zero, four)


@SETTINGS
@given(patterns, st.lists(st.fractions(min_value=0, max_value=3, max_denominator=16), min_size=1, max_size=5))
def test_many_small_windows_tile_the_onsets_of_one_big_one(p: Pattern, cuts: list[Fraction]):
    edges = sorted({Fraction(0), Fraction(3), *cuts})
    tiled = []
    for b, e in pairwise(edges):
        tiled.extend(onset_set(p, b, e))
    assert sorted(tiled) == onset_set(p, Fraction(0), Fraction(3))


@SETTINGS
@given(st.integers(-50, 50), st.sampled_from([rand, sine, saw]))
def test_signals_are_functions_of_time(c: int, sig: Pattern):
    assert sig.segment(8).query(c, c + 1) == sig.segment(8).query(c, c + 1)
    (h,) = sig.query(c, c + 1)
    assert h.whole is None


def test_control_patterns_keep_the_structure_of_the_left_side():
    p = n("0 1 2 3").s("<a b>")
    assert [h.whole for h in p.query(0, 1)] == [h.whole for h in n("0 1 2 3").query(0, 1)]


@SETTINGS
@given(
    st.integers(1, 12),
    st.fractions(min_value=-3, max_value=3, max_denominator=12),
    st.fractions(min_value=0, max_value=3, max_denominator=12),
)
def test_the_fast_path_of_a_repeated_value_gives_the_general_paths_haps(k: int, b: Fraction, width: Fraction):
    # pure(v)._fast(k) has its own query (the hot path of `a*k`); fmap hides purity, forcing the general one
    fast_path = pure("x")._fast(k)
    general = pure("x").fmap(lambda v: v)._fast(k)
    assert normal(fast_path.query(b, b + width)) == normal(general.query(b, b + width))
    assert normal(fast_path.query(b + width, b)) == normal(general.query(b + width, b))  # reversed spans too


@SETTINGS
@given(
    st.fractions(min_value=0, max_value=1, max_denominator=12),
    st.fractions(min_value=0, max_value=1, max_denominator=12),
    st.fractions(min_value=-3, max_value=3, max_denominator=24),
    st.fractions(min_value=0, max_value=3, max_denominator=24),
)
def test_the_fast_path_of_a_sequence_step_gives_the_general_paths_haps(
    x: Fraction, y: Fraction, b: Fraction, width: Fraction
):
    lo, hi = min(x, y), max(x, y)
    fast_path = pure("x").compress(lo, hi)  # one step of a timecat: its own query
    general = pure("x").fmap(lambda v: v).compress(lo, hi)
    assert normal(fast_path.query(b, b + width)) == normal(general.query(b, b + width))
    assert normal(fast_path.query(b + width, b)) == normal(general.query(b + width, b))
