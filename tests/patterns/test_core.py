"""The pattern core, controls, tonal and the JSON form, as specifications (pure and fast).

Expected haps were read from Strudel 1.1 itself (`@strudel/core`, `@strudel/mini`,
`@strudel/tonal` under node) for the same construction; the differential tests
(test_differential.py) compare generated patterns against a live Strudel.
"""

from __future__ import annotations

import json
from fractions import Fraction as F
from typing import Any

import pytest

from vtkernel.engine.patterns import core, signals, tree
from vtkernel.engine.patterns.core import Hap, Pattern, TimeSpan, frac
from vtkernel.engine.patterns.tonal import is_note, note_to_midi, scale_step
from vtkernel.patterns import (
    cat,
    fast,
    from_json,
    irand,
    mini,
    n,
    note,
    pure,
    rand,
    s,
    saw,
    seq,
    silence,
    sine,
    stack,
    timecat,
    to_json,
    validate_json,
)


def spans(p: Pattern, b: Any = 0, e: Any = 1) -> list[tuple[str, str, Any]]:
    """(whole, part, value) of each hap, in time order, as short strings."""
    out = []
    for h in sorted(p.query(b, e), key=lambda h: (h.part.begin, h.part.end, repr(h.value))):
        whole = "~" if h.whole is None else f"{h.whole.begin}-{h.whole.end}"
        out.append((whole, f"{h.part.begin}-{h.part.end}", h.value))
    return out


def onsets(p: Pattern, b: Any = 0, e: Any = 1) -> list[tuple[str, Any]]:
    return [(str(h.whole.begin), h.value) for h in p.onsets(b, e) if h.whole is not None]


# --- time, spans and numbers ------------------------------------------------


def test_span_cycles_cuts_at_cycle_boundaries_and_keeps_a_zero_width_span():
    assert TimeSpan(F(1, 2), F(5, 2)).span_cycles() == [
        TimeSpan(F(1, 2), F(1)),
        TimeSpan(F(1), F(2)),
        TimeSpan(F(2), F(5, 2)),
    ]
    assert TimeSpan(F(1, 2), F(2)).span_cycles() == [TimeSpan(F(1, 2), F(1)), TimeSpan(F(1), F(2))]
    assert TimeSpan(F(3), F(3)).span_cycles() == [TimeSpan(F(3), F(3))]


def test_intersection_excludes_a_zero_width_span_at_the_end_of_a_wide_one():
    a = TimeSpan(F(0), F(1))
    assert a.intersection(TimeSpan(F(1), F(1))) is None
    assert a.intersection(TimeSpan(F(0), F(0))) == TimeSpan(F(0), F(0))
    assert a.intersection(TimeSpan(F(1, 2), F(2))) == TimeSpan(F(1, 2), F(1))
    assert a.intersection(TimeSpan(F(2), F(3))) is None


def test_floats_become_fractions_as_fraction_js_reads_them():
    # fraction.js's Farey approximation (denominators up to 1e7), not the float's binary value
    assert frac(0.1) == F(1, 10)
    assert frac(0.0003 * 3) == F(9, 10000)
    assert frac(0.0003 * 7) == F(21, 10000)
    assert frac(1 / 3) == F(1, 3)
    assert frac(2.675) == F(107, 40)
    assert frac(123.456) == F(15432, 125)
    assert frac(-0.3) == F(-3, 10)
    assert frac(1e-9) == 0
    assert frac(F(2, 7)) == F(2, 7) and frac(5) == 5


def test_query_accepts_ints_floats_and_fractions_and_returns_exact_fractions():
    p = mini("a b c")
    assert p.query(0, 1) == p.query(0.0, 1.0) == p.query(F(0), F(1))
    h = p.query(0, 1)[1]
    assert isinstance(h.whole.begin, F) and h.whole == TimeSpan(F(1, 3), F(2, 3))
    assert h.has_onset() and h.value == "b"


def test_a_hap_fragment_without_its_start_has_no_onset():
    (h,) = pure("x").slow(2).query(1, 2)
    assert h.whole == TimeSpan(F(0), F(2)) and h.part == TimeSpan(F(1), F(2))
    assert not h.has_onset()


# --- constructors ----------------------------------------------------------


def test_seq_squeezes_and_cat_alternates_without_skipping_cycles():
    assert spans(seq("a", ["b", "c"])) == [
        ("0-1/2", "0-1/2", "a"),
        ("1/2-3/4", "1/2-3/4", "b"),
        ("3/4-1", "3/4-1", "c"),
    ]
    # cycle 3 of cat(x, y, z) is cycle 1 of x (Strudel's slowcat offset)
    p = cat(mini("<a b>"), "c", "d")
    assert [onsets(p, c, c + 1)[0][1] for c in range(6)] == ["a", "c", "d", "b", "c", "d"]


def test_stack_plays_together_and_timecat_weights_steps():
    assert onsets(stack("a b", "c")) == [("0", "a"), ("0", "c"), ("1/2", "b")]
    assert spans(timecat((3, "e3"), (1, "g3"))) == [("0-3/4", "0-3/4", "e3"), ("3/4-1", "3/4-1", "g3")]


def test_a_pure_value_repeats_once_per_cycle_and_silence_has_nothing():
    assert spans(pure(7), 0, 2) == [("0-1", "0-1", 7), ("1-2", "1-2", 7)]
    assert silence.query(0, 10) == []


# --- transformations (expected values from Strudel 1.1) ---------------------


def test_fast_and_slow_take_patterned_factors_with_an_inner_join():
    p = seq("a", ["b", "c"]).fast(cat(1, 2))
    assert onsets(p, 1, 2) == [("1", "a"), ("5/4", "b"), ("11/8", "c"), ("3/2", "a"), ("7/4", "b"), ("15/8", "c")]
    assert onsets(mini("a b").slow(2), 0, 2) == [("0", "a"), ("1", "b")]
    assert mini("a b").fast(0).query(0, 4) == []


def test_every_applies_in_the_first_of_n_cycles_and_off_stacks_a_shifted_copy():
    p = mini("[0 1 2 3]").every(3, lambda x: x.fast(2)).off(0.25, lambda x: x.add(10))
    assert onsets(p, 2, 3) == [
        ("2", 0),
        ("2", 13),
        ("9/4", 1),
        ("9/4", 10),
        ("5/2", 2),
        ("5/2", 11),
        ("11/4", 3),
        ("11/4", 12),
    ]
    assert onsets(mini("0 1").every(2, fast(2)), 0, 1) == [("0", 0), ("1/4", 1), ("1/2", 0), ("3/4", 1)]


def test_rev_reverses_each_cycle_and_palindrome_every_other():
    assert onsets(mini("a [b c] d").rev()) == [("0", "d"), ("1/3", "c"), ("1/2", "b"), ("2/3", "a")]
    p = mini("a b c").palindrome()
    assert [v for _, v in onsets(p, 0, 2)] == ["a", "b", "c", "c", "b", "a"]


def test_euclid_rotation_runs_the_way_strudel_rotates():
    assert [b for b, _ in onsets(mini("x(3,8,2)"))] == ["0", "1/4", "5/8"]
    assert [b for b, _ in onsets(pure("x").euclidRot(3, 8, 2))] == ["0", "1/4", "5/8"]
    assert core.bjork(3, 8) == [1, 0, 0, 1, 0, 0, 1, 0]
    assert core.bjork(5, 8) == [1, 0, 1, 1, 0, 1, 1, 0]
    assert core.bjork(-3, 8) == [0, 1, 1, 0, 1, 1, 0, 1]


def test_an_impossible_euclid_rhythm_fails_where_strudel_throws():
    # plain arguments: at construction, as Strudel's `register` calls bjork at once
    with pytest.raises(core.PatternError, match=r"pulses <= steps"):
        pure("x").euclid(5, 3)
    # patterned arguments: when queried, and `query` (Strudel's queryArc) gives nothing for that query
    p = pure("x").euclid(cat(3, 5), 4)
    assert len(p.query(0, 1)) == 3
    assert p.query(1, 2) == [] and p.query(0, 2) == []
    with pytest.raises(core.PatternError):
        p.query_strict(1, 2)


def test_chunk_hurry_on_plain_values_combines_them_as_mappings():
    p = mini("a b c d").chunk(4, lambda x: x.hurry(2))
    assert [v for _, v in onsets(p, 1, 2)] == ["a", {"value": "c", "speed": 2}, {"value": "d", "speed": 2}, "c", "d"]


def test_ply_iter_linger_segment_range():
    assert [v for _, v in onsets(mini("a b").ply(2))] == ["a", "a", "b", "b"]
    assert [v for _, v in onsets(mini("a b c d").iter(4), 1, 2)] == ["b", "c", "d", "a"]
    assert [v for _, v in onsets(mini("0 1 2 3").linger(0.5))] == [0, 1, 0, 1]
    assert [round(v, 6) for _, v in onsets(saw.segment(4))] == [0.125, 0.375, 0.625, 0.875]
    assert [round(v, 6) for _, v in onsets(saw.range(10, 20).segment(2))] == [12.5, 17.5]


def test_struct_takes_structure_and_mask_keeps_it():
    assert onsets(pure("x").struct("t ~ t t")) == [("0", "x"), ("1/2", "x"), ("3/4", "x")]
    assert onsets(mini("a b c d").mask("1 0 1 1")) == [("0", "a"), ("1/2", "c"), ("3/4", "d")]


def test_arithmetic_counts_note_names_as_midi_numbers():
    assert [v for _, v in onsets(mini("0 1").add(10))] == [10, 11]
    assert [v for _, v in onsets(mini("c4 e4").add(1))] == [61, 65]
    assert [v for _, v in onsets(mini("1 2").mul("<2 3>"), 1, 2)] == [3, 6]
    assert [v for _, v in onsets(n("1 2").add(n(10)))] == [{"n": 11}, {"n": 12}]


# --- randomness --------------------------------------------------------------


def test_rand_is_strudels_time_seeded_xorshift():
    assert [v for _, v in onsets(rand.segment(2), -1, 1)] == [
        0.19579594396054745,
        0.3492536060512066,
        0.36975969187915325,
        0.19582648016512394,
    ]
    assert signals.xorwise(1) == 270369 and signals.xorwise(-5) == 1269915
    assert signals.xorwise(2147483647) == -2147213281  # JavaScript int32 wrap-around
    assert [v for _, v in onsets(irand(8).segment(4))] == [5, 3, 1, 3]


def test_degrade_drops_the_same_hits_as_strudel():
    assert [b for b, _ in onsets(mini("hh*8?"), 0, 2)] == ["0", "1/4", "3/4", "7/8", "1", "11/8", "15/8"]
    assert [v for _, v in onsets(mini("0*4").sometimes(lambda x: x.add(5)))] == [0, 5, 5, 5]


def test_random_choice_picks_once_per_cycle():
    assert [v for _, v in onsets(mini("a b | c d | e"), 0, 4)] == ["a", "b", "c", "d", "c", "d", "c", "d"]


def test_signals_are_continuous():
    (h,) = sine.query(0, F(1, 2))
    assert h.whole is None and not h.has_onset()
    assert h.value == 1.0  # sampled at the part's midpoint, 1/4: (sin(pi/2) + 1) / 2


# --- controls ------------------------------------------------------------------


def test_control_composition_takes_structure_from_the_left():
    p = s("bd*2 sd").n("<0 3>")
    assert onsets(p, 1, 2) == [("1", {"s": "bd", "n": 3}), ("5/4", {"s": "bd", "n": 3}), ("3/2", {"s": "sd", "n": 3})]


def test_a_colon_list_spreads_over_the_names_of_s():
    assert [v for _, v in onsets(s("bd:3 sd"))] == [{"s": "bd", "n": 3}, {"s": "sd"}]
    assert [v for _, v in onsets(s("bd").cutoff("800:10"))] == [{"s": "bd", "cutoff": 800, "resonance": 10}]


def test_aliases_set_strudels_key():
    assert [v for _, v in onsets(s("a").legato(0.5).lpf(300).sound("b"))] == [{"s": "b", "clip": 0.5, "cutoff": 300}]
    assert [v for _, v in onsets(note("c4 eb3"))] == [{"note": "c4"}, {"note": "eb3"}]


# --- tonal ---------------------------------------------------------------------


def test_scale_degrees_become_note_names_spelled_as_tonal_spells_them():
    assert [v for _, v in onsets(n("0 2 4 -1").scale("C:minor"))] == [
        {"note": "C3"},
        {"note": "Eb3"},
        {"note": "G3"},
        {"note": "Bb2"},
    ]
    assert [v["note"] for _, v in onsets(n("0# 1b 2##").scale("D4:minor"))] == ["Eb4", "D#4", "G4"]
    assert [v["note"] for _, v in onsets(n("0 1 5").scale("F#:major:pentatonic"))] == ["F#3", "G#3", "F#4"]
    assert scale_step(7, "C major") == "C4" and scale_step(-8, "C major") == "B1"


def test_a_bad_scale_is_silent_as_in_strudel():
    assert n("0 1").scale("C:nonsense").query(0, 1) == []
    assert n("0 1").scale("minor").query(0, 1) == []


def test_note_names_to_midi_numbers():
    assert note_to_midi("c4") == 60 and note_to_midi("eb3") == 51 and note_to_midi("f#5") == 78
    assert note_to_midi("a") == 57  # octave 3 by default
    assert is_note("cs2") and is_note("Bb") and not is_note("bd") and not is_note("c10")


# --- the JSON form -------------------------------------------------------------


def test_a_pattern_built_in_python_carries_its_json_form():
    p = s("bd*2 [~ sd]").n("<0 3>").every(3, lambda x: x.fast(2))
    assert to_json(p) == {
        "op": "every",
        "args": [
            {"op": "n", "args": [{"call": "s", "args": ["bd*2 [~ sd]"]}, "<0 3>"]},
            3,
            {"lambda": ["x1"], "body": {"op": "fast", "args": [{"var": "x1"}, 2]}},
        ],
    }
    json.dumps(to_json(p))  # plain JSON
    assert to_json(mini("a b")) == "a b"


def test_from_json_rebuilds_the_same_pattern_and_the_same_tree():
    p = (
        stack(s("bd(3,8)").gain(sine.range(0.5, 1)), n("0 2 4").scale("C:minor").off(F(1, 8), lambda x: x.add(7)))
        .sometimesBy(0.3, lambda x: x.speed(2))
        .late(0.25)
    )
    q = from_json(json.loads(json.dumps(to_json(p))))
    assert q.tree == p.tree
    assert spans(q, 0, 4) == spans(p, 0, 4)


def test_validate_json_returns_the_canonical_form():
    assert validate_json("bd*2 sd") == "bd*2 sd"
    assert validate_json({"op": "fast", "args": ["a b", {"frac": [4, 2]}]}) == {
        "op": "fast",
        "args": ["a b", {"frac": [2, 1]}],
    }
    assert validate_json(s("a").fast(2)) == {"op": "fast", "args": [{"call": "s", "args": ["a"]}, 2]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "fast", "args": ["a b", "<1"]}, "column"),
        ({"op": "__class__", "args": ["a"]}, "unknown method"),
        ({"call": "eval", "args": ["a"]}, "unknown function"),
        ({"op": "fast", "args": ["a", 1, 2]}, "positional"),
        ({"call": "stack", "args": [{"var": "x9"}]}, "not bound"),
        ({"frac": [1, 0]}, "denominator"),
        ({"op": "fast", "args": ["a", float("nan")]}, "finite"),
        ({"op": "every", "args": ["a", 2, {"lambda": ["x", "y"], "body": "a"}]}, "one named parameter"),
        ({"what": 1}, "unknown node"),
    ],
)
def test_bad_json_forms_are_one_line_errors(data: Any, message: str):
    with pytest.raises(ValueError) as err:
        validate_json(data)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_hostile_json_forms_are_bounded():
    deep: Any = "a"
    for _ in range(200):
        deep = {"op": "fast", "args": [deep, 1]}
    with pytest.raises(ValueError, match="nested more than"):
        validate_json(deep)
    wide = {"call": "stack", "args": ["a"] * (tree.MAX_NODES + 1)}
    with pytest.raises(ValueError, match="nodes"):
        validate_json(wide)
    with pytest.raises(ValueError, match="more than"):
        validate_json({"op": "iter", "args": ["a", 10**9]})
    # a pattern sped up beyond reason fails its query instead of hanging the scheduler
    assert from_json({"op": "fast", "args": ["a b", 10**12]}).query(0, 1) == []


def test_a_pattern_using_python_code_cannot_be_stored_and_says_why():
    p = s("a").every(2, lambda x: x.fmap(str))
    assert p.query(0, 1)  # it plays
    with pytest.raises(ValueError, match="every: a function argument must use only"):
        to_json(p)
    with pytest.raises(ValueError, match="cannot be stored"):
        to_json(mini("a").withValue(lambda v: v))


def test_recording_does_not_mutate_shared_patterns():
    before = silence.tree
    _ = mini("a").fast(0)  # returns the shared silence internally
    _ = stack(silence).late(1)
    assert silence.tree == before == {"call": "silence", "args": []}
    assert rand.tree == {"call": "rand", "args": []}


def test_old_step_sequencer_names_stay_importable():
    from vtkernel.engine.patterns import euclid, events_between, lfo_value, parse_mini, step_at

    assert parse_mini("60 ~ 62") == (60, None, 62)
    assert callable(euclid) and callable(events_between) and callable(lfo_value) and callable(step_at)


def test_hap_repr_and_equality_are_by_value():
    a = Hap(TimeSpan(F(0), F(1)), TimeSpan(F(0), F(1)), {"s": "bd"})
    b = Hap(TimeSpan(F(0), F(1)), TimeSpan(F(0), F(1)), {"s": "bd"})
    assert a == b and "bd" in repr(a)


def test_operators_take_structure_from_either_side_as_strudels_do():
    left = n("0 1").add(n("10 20 30"))
    out = n("0 1").add.out(n("10 20 30"))
    mix = n("0 1").add.mix(n("10 20 30"))
    assert [h.whole.end for h in left.query(0, 1)] == [F(1, 2), F(1, 2), F(1), F(1)]
    assert [h.value["n"] for h in out.onsets(0, 1)] == [10, 20, 31]
    assert [str(h.whole.begin) for h in mix.onsets(0, 1)] == ["0", "1/3", "1/2", "2/3"]
    assert [h.value["n"] for h in n("0 1").add.squeeze(n("10 20")).onsets(0, 1)] == [10, 20, 11, 21]
    assert from_json(to_json(out)).tree == {"op": "add.out", "args": [{"call": "n", "args": ["0 1"]}, {"call": "n", "args": ["10 20 30"]}]}


def test_time_is_the_cycle_position_as_a_fraction():
    assert [h.value for h in signals.time.segment(4).query(0, 1)] == [F(1, 8), F(3, 8), F(5, 8), F(7, 8)]


def test_the_facade_exports_strudels_names_without_shadowing_builtins():
    import builtins

    import vtkernel.patterns as facade
    from vtkernel.api import VT

    for name in facade.__all__:
        assert getattr(facade, name) is not None, name
        assert not hasattr(builtins, name), f"{name} would shadow a builtin on `import *`"
    assert facade.lpq is not None and facade.iter is not None  # reachable as attributes
    assert VT.p("a b").tree == "a b"
    assert [h.value for h in VT.p("a b").query(0, 1)] == ["a", "b"]
