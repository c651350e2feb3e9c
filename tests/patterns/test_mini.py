"""Mini-notation on its own: parsing, values, timing and errors (no node needed).

The expected haps here were read off Strudel 1.1 (tests/strudel/reference.mjs); the
differential suite checks the same things against Strudel itself on generated texts.
"""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtkernel.engine.patterns import mini as m
from vtkernel.engine.patterns.mini import MiniError, mini, parse


def onsets(text: str, b: object = 0, e: object = 1) -> list[tuple[F, object]]:
    return sorted((h.whole.begin, h.value) for h in mini(text).query(b, e) if h.has_onset())


def spans(text: str, b: object = 0, e: object = 1) -> list[tuple[F, F, object]]:
    return sorted((h.whole.begin, h.whole.end, h.value) for h in mini(text).query(b, e))


def test_sequence_rests_and_subdivision() -> None:
    assert spans("bd ~ [sd sd] -") == [(F(0), F(1, 4), "bd"), (F(1, 2), F(5, 8), "sd"), (F(5, 8), F(3, 4), "sd")]


def test_alternation_is_periodic() -> None:
    got = [onsets("<a b [c d]>", c, c + 1) for c in range(6)]
    assert [[v for _t, v in o] for o in got] == [["a"], ["b"], ["c", "d"]] * 2


def test_stack_polymeter_and_steps() -> None:
    assert onsets("a, b c") == [(F(0), "a"), (F(0), "b"), (F(1, 2), "c")]
    # {a b c, d e}: both at the first's step rate, 3 steps a cycle
    assert [v for _t, v in onsets("{a b c, d e}")] == ["a", "d", "b", "e", "c", "d"]
    assert [v for _t, v in onsets("{a b c}%4", 0, 1)] == ["a", "b", "c", "a"]


def test_fast_slow_patterned() -> None:
    assert len(onsets("a*<2 3>", 0, 1)) == 2
    assert len(onsets("a*<2 3>", 1, 2)) == 3
    assert spans("a/2", 0, 2) == [(F(0), F(2), "a")]


def test_replicate_and_elongate() -> None:
    assert [t for t, _v in onsets("a!3 b")] == [F(0), F(1, 4), F(1, 2), F(3, 4)]
    assert [t for t, _v in onsets("a ! ! b")] == [F(0), F(1, 4), F(1, 2), F(3, 4)]
    assert spans("a@3 b") == [(F(0), F(3, 4), "a"), (F(3, 4), F(1), "b")]
    assert spans("a _ _ b") == spans("a@3 b")
    # Strudel's odd parses: a@ is a@2, a!2!3 is four copies
    assert spans("a@ b") == [(F(0), F(2, 3), "a"), (F(2, 3), F(1), "b")]
    assert len(onsets("a!2!3")) == 4


def test_euclid_rotates_the_strudel_way() -> None:
    assert [t * 8 for t, _v in onsets("a(3,8,2)")] == [0, 2, 5]
    assert [t * 8 for t, _v in onsets("a(3,8)")] == [0, 3, 6]
    assert [t * 8 for t, _v in onsets("a(3,8 2)")] == [0, 2, 5]  # krill takes a space for the second comma


def test_numbers_words_lists_ranges() -> None:
    assert [v for _t, v in onsets("1e3 0x10 -1 1.5 c4 eb3 f#5 .5")] == [1000, 16, -1, 1.5, "c4", "eb3", "f#5", 0.5]
    assert [v for _t, v in onsets("bd:3 sd:1:2")] == [["bd", 3], ["sd", 1, 2]]
    assert [v for _t, v in onsets("0 .. 3")] == [0, 1, 2, 3]
    assert [v for _t, v in onsets("0..3")] == ["0..3"]  # one word, as in Strudel
    assert [v for _t, v in onsets("3 .. 1")] == [3, 2, 1]


def test_feet_and_choice() -> None:
    assert onsets("a b . c") == [(F(0), "a"), (F(1, 4), "b"), (F(1, 2), "c")]
    cycles = [onsets("a | b | c", c, c + 1) for c in range(40)]
    assert all(len(o) == 1 for o in cycles)
    assert {o[0][1] for o in cycles} == {"a", "b", "c"}


def test_degrade_is_deterministic_and_partial() -> None:
    a = onsets("hh*16?", 0, 4)
    assert a == onsets("hh*16?", 0, 4)
    assert 16 < len(a) < 48
    assert len(onsets("hh*16?0", 0, 4)) == 64
    assert len(onsets("hh*16?0.9", 0, 4)) < len(a)


def test_seeds_follow_parse_order() -> None:
    # krill numbers a ? when its element is complete and a | or . list when the list is:
    # a? -> 0, b? -> 1, c|d -> 2, the inner | -> 3, e? -> 4, the . -> 5
    ast = parse("[a? | b? [c|d]] . e?")
    assert isinstance(ast, m.Seq) and ast.alignment == "feet" and ast.seed == 5
    inner = ast.children[0].children[0].source
    assert isinstance(inner, m.Seq) and inner.alignment == "rand" and inner.seed == 3
    a = inner.children[0].children[0]
    b, cd = inner.children[1].children
    assert [op.seed for op in a.ops] == [0] and [op.seed for op in b.ops] == [1]
    assert cd.source.seed == 2
    assert [op.seed for op in ast.children[1].children[0].ops] == [4]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("a ]", 3),
        ("[a b", 5),
        ("a b>", 4),
        ("<a . b>", 4),
        ("{a | b}", 4),
        ("a(3,8", 6),
        ("", 1),
        ("^", 2),
    ],
)
def test_errors_are_one_line_with_the_column(text: str, column: int) -> None:
    with pytest.raises(MiniError) as info:
        mini(text)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("mini-notation: ")
    assert f"column {column}" in msg, msg
    assert isinstance(info.value, ValueError)


def test_error_names_the_character() -> None:
    with pytest.raises(MiniError, match=r"unexpected '\]' at column 7"):
        mini("bd sd ]")
    with pytest.raises(MiniError, match="unexpected end of input at column 4"):
        mini("[bd")


def test_hostile_input_is_an_error_not_a_crash() -> None:
    with pytest.raises(MiniError, match="nesting deeper"):
        mini("[" * 5000 + "a" + "]" * 5000)
    with pytest.raises(MiniError, match="nesting deeper"):
        mini("a(" * 3000 + "1,2)" * 3000)
    with pytest.raises(MiniError, match="longer than"):
        mini("a " * m.MAX_LENGTH)
    with pytest.raises(MiniError, match="copies"):
        mini("a!100000000")
    with pytest.raises(MiniError):
        mini("a@-1 b@1")  # weights add up to zero


def test_deepest_allowed_nesting_still_queries() -> None:
    depth = m.MAX_DEPTH - 1
    pat = mini("[" * depth + "a b" + "]" * depth)
    assert [v for _t, v in onsets("[" * depth + "a b" + "]" * depth)] == ["a", "b"]
    assert len(pat.query(0, 3)) == 6
    depth = m.MAX_DEPTH // 2 - 1
    assert len(mini("<" * depth + "a b" + ">" * depth).query(0, 2)) == 2


def test_quotes_and_comments_as_krill_reads_them() -> None:
    assert onsets("a b' // anything") == onsets("a b")
    with pytest.raises(MiniError):
        mini('a"')


def test_non_string_is_an_error() -> None:
    with pytest.raises(MiniError, match="expected a string"):
        mini(3)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(max_size=60) | st.text(alphabet="ab01 ~-_.@!?*/:<>[]{}(),|%^'\"\n\t", max_size=60))
def test_any_text_parses_or_fails_with_one_line(text: str) -> None:
    try:
        pat = mini(text)
    except MiniError as err:
        assert "\n" not in str(err) and str(err).startswith("mini-notation: ")
        return
    pat.query(0, 2)  # querying a parsed text never crashes (Strudel's errors give no haps)


def test_json_form_of_a_mini_pattern_is_its_text() -> None:
    from vtkernel.engine.patterns.tree import from_json

    text = "bd*2 [~ sd] <cp hh>(3,8) hh?"
    pat = mini(text)
    assert pat.tree == text
    assert [(h.whole, h.value) for h in from_json(pat.tree).query(0, 4)] == [(h.whole, h.value) for h in pat.query(0, 4)]
