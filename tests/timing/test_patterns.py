"""Patterns are pure functions of beat position (SPEC §8)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtkernel.engine.patterns import euclid, events_between, parse_mini, step_at

values = st.one_of(st.none(), st.integers(0, 127))
patterns = st.lists(values, min_size=1, max_size=32).map(tuple)
divisions = st.sampled_from([1, 2, 3, 4, 6, 8, 16])
beats = st.integers(0, 4000).map(lambda k: k / 16)  # on a fine grid, like real horizons


@given(patterns, divisions, beats, st.integers(1, 20))
def test_a_pattern_repeats_every_cycle(steps, division, beat, cycles):
    cycle = len(steps) / division
    assert step_at(steps, division, beat) == step_at(steps, division, beat + cycles * cycle)


@given(patterns, divisions, beats, st.floats(0.01, 8), st.lists(st.floats(0, 1), max_size=6))
def test_splitting_a_window_anywhere_renders_the_same_events(steps, division, start, length, cuts):
    end = start + length
    whole = events_between(steps, division, start, end)
    points = sorted({start, end, *(start + c * length for c in cuts)})
    pieces = [e for a, b in itertools.pairwise(points) for e in events_between(steps, division, a, b)]
    assert pieces == whole


@given(patterns, patterns, divisions, beats, st.floats(0.25, 8))
def test_replacing_a_pattern_keeps_its_phase(old, new, division, replaced_at, length):
    """After a replacement at any beat, the new pattern plays exactly as if it had always been there."""
    end = replaced_at + length
    played = events_between(old, division, 0, replaced_at) + events_between(new, division, replaced_at, end)
    assert [e for e in played if e[0] >= replaced_at] == events_between(new, division, 0, end)[
        len(events_between(new, division, 0, replaced_at)) :
    ]


@given(patterns, divisions, beats, st.floats(0.01, 8))
def test_onsets_lie_exactly_on_the_step_grid(steps, division, start, length):
    for beat, value in events_between(steps, division, start, start + length):
        index = round(beat * division)
        assert beat == index / division
        assert value is not None and steps[index % len(steps)] == value


@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n), st.integers(-64, 64))))
def test_euclid_spreads_exactly_k_hits_as_evenly_as_possible(args):
    hits, steps, rotation = args
    pattern = euclid(hits, steps, rotation)
    assert len(pattern) == steps
    assert sum(pattern) == hits
    onsets = [i for i, hit in enumerate(pattern) if hit]
    if hits >= 2:
        gaps = {(b - a) % steps for a, b in zip(onsets, onsets[1:] + onsets[:1], strict=False)}
        assert gaps <= {math.floor(steps / hits), math.ceil(steps / hits)}


def test_euclid_matches_the_known_rhythms():
    x = lambda s: tuple(c == "x" for c in s)  # noqa: E731
    assert euclid(3, 8) == x("x..x..x.")
    assert euclid(5, 8) == x("x.xx.xx.")
    assert euclid(3, 8, 1) == x("..x..x.x")


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("60 ~ 62 64", (60, None, 62, 64)),
        ("60*3 .", (60, 60, 60, None)),
        ("36(3,8)", (36, None, None, 36, None, None, 36, None)),
        ("1.5 -2", (1.5, -2)),
    ],
)
def test_mini_notation(text, steps):
    assert parse_mini(text) == steps


@pytest.mark.parametrize("bad", ["", "60 x", "~(3,8)", "60(9,8)"])
def test_bad_mini_notation_is_one_clear_error(bad):
    with pytest.raises(ValueError) as info:
        parse_mini(bad)
    assert "\n" not in str(info.value)
