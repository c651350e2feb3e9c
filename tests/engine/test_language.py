"""The command language: one parser for %vt, the terminal and comm `text` (SPEC §4)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.language import ShellAction, help_text, parse_line
from vtkernel.protocol import AddModule, Connect, SetBpm, SetParam, VTError
from vtkernel.verbs import VERBS, Verb


def test_values_are_json_literals_and_bare_words_are_strings() -> None:
    assert parse_line("set lfo1.rate 3") == SetParam(module="lfo1", param="rate", value=3)
    assert parse_line("set lfo1.shape saw") == SetParam(module="lfo1", param="shape", value="saw")
    assert parse_line('set s.steps [60, null, 62]') == SetParam(module="s", param="steps", value=[60, None, 62])
    assert parse_line('set s.steps "60 ~ 62"') == SetParam(module="s", param="steps", value="60 ~ 62")


def test_add_takes_param_assignments() -> None:
    cmd = parse_line("add s seq steps=[1,null] division=2")
    assert cmd == AddModule(name="s", type="seq", params={"steps": [1, None], "division": 2})


def test_other_verbs() -> None:
    assert parse_line("connect a.out b.rate") == Connect(src="a.out", dst="b.rate")
    assert parse_line("bpm 140") == SetBpm(bpm=140)
    assert parse_line("state") == ShellAction("state")
    assert parse_line("save") == ShellAction("save")
    assert parse_line("open /tmp/x.vtsession") == ShellAction("open", ("/tmp/x.vtsession",))
    assert parse_line("# a comment") is None
    assert parse_line("   ") is None


def test_quantization_suffix() -> None:
    assert parse_line("set a.rate 2 @bar") == SetParam(module="a", param="rate", value=2, quantize="bar")
    with pytest.raises(VTError, match="@bar"):
        parse_line("set a.rate 2 @week")
    with pytest.raises(VTError):
        parse_line("undo @bar")


@pytest.mark.parametrize(
    "line", ["frobnicate", "set a.rate", "set arate 3", "add onlyname", "add a lfo rate", "connect a.out", "rm", "bpm", "set a.b.c 1", "get", 'add a "unterminated']
)
def test_bad_lines_are_one_line_invalid_command(line: str) -> None:
    with pytest.raises(VTError) as info:
        parse_line(line)
    assert info.value.code == "invalid_command"
    assert "\n" not in info.value.message


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_the_parser_never_raises_anything_but_vterror(line: str) -> None:
    try:
        result = parse_line(line)
    except VTError as exc:
        assert exc.code == "invalid_command" and "\n" not in exc.message
    else:
        assert result is None or isinstance(result, ShellAction) or hasattr(result, "op")


def test_help_lists_every_verb_from_one_table() -> None:
    text = help_text()
    for name, verb in VERBS.items():
        assert verb.usage in text and verb.summary in text, name
        assert help_text(name) == f"{verb.usage}  -- {verb.summary}"
    assert {"close", "panel", "meter"} <= set(VERBS)
    assert len(text.splitlines()) == len(VERBS) + 1  # one line per verb, one footnote


def test_the_parser_takes_its_verbs_and_argument_counts_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    minimal = {"add": "a lfo", "rm": "a", "set": "a.rate 2", "get": "a.rate", "connect": "a.out b.rate",
               "disconnect": "a.out b.rate", "bpm": "90", "meter": "3", "link": "on", "open": "x", "load": "x", "watch": "x",
               "unwatch": "x"}
    for name, verb in VERBS.items():
        parsed = parse_line(f"{name} {minimal.get(name, '')}")
        assert isinstance(parsed, ShellAction) == (verb.kind == "kernel"), name
        if verb.max_args < 8 and name != "set":
            with pytest.raises(VTError, match="usage: " + re.escape(verb.usage)):
                parse_line(name + " x" * (verb.max_args + 1))
    # A verb added to the table is parsed and listed with no other edit.
    monkeypatch.setitem(VERBS, "doctor", Verb("doctor", "doctor [PART]", "check the setup", 0, 1))
    assert parse_line("doctor osc") == ShellAction("doctor", ("osc",))
    assert "doctor [PART]" in help_text() and help_text("doctor").endswith("check the setup")
    with pytest.raises(VTError, match="usage: doctor"):
        parse_line("doctor a b")


def test_kernel_verbs_answer_clearly_until_the_kernel_provides_them() -> None:
    engine = Engine().start()
    try:
        vt = VT(engine)  # no services: a bare engine, as in a plain Python process
        for name, verb in VERBS.items():
            if verb.kind == "kernel" and verb.thread != "inline" and name != "help":
                with pytest.raises(VTError) as info:
                    vt.run(f"{name} x" if verb.min_args else name)
                assert info.value.message == f"'{name}' is not available in this kernel yet", name
    finally:
        engine.stop()


def test_a_comment_ends_every_verb_but_not_a_quoted_value() -> None:
    assert parse_line("set lfo1.rate 3  # faster") == SetParam(module="lfo1", param="rate", value=3)
    assert parse_line("set lfo1.rate 3 @bar # on the bar") == SetParam(module="lfo1", param="rate", value=3, quantize="bar")
    assert parse_line("set s.steps [60, null] # two steps") == SetParam(module="s", param="steps", value=[60, None])
    assert parse_line('set d.pattern "bd # x"') == SetParam(module="d", param="pattern", value="bd # x")
    assert parse_line('set d.pattern "bd \\" # x" # y') == SetParam(module="d", param="pattern", value='bd " # x')
    assert parse_line('set a.label "#1"') == SetParam(module="a", param="label", value="#1")
    assert parse_line("set a.label bd#x") == SetParam(module="a", param="label", value="bd#x")
    assert parse_line("add l lfo rate=2 # slow") == AddModule(name="l", type="lfo", params={"rate": 2})
    assert parse_line("connect a.out b.rate # mod") == Connect(src="a.out", dst="b.rate")
    assert parse_line("bpm 90 # slower") == SetBpm(bpm=90)
    assert parse_line("state # all of it") == ShellAction("state")
    assert parse_line("   # only a comment") is None


def test_a_vt_cell_with_comments_is_one_batch() -> None:
    engine = Engine().start()
    try:
        vt = VT(engine)
        vt.run("# the patch\nadd lfo1 lfo  # a slow one\nset lfo1.rate 3  # faster\n\nset lfo1.shape saw # edgy")
        params = vt.snapshot()["modules"]["lfo1"]["params"]
        assert (params["rate"], params["shape"]) == (3.0, "saw")
    finally:
        engine.stop()
