"""The shells' mirror: RFC 6902 deltas by base/version, gaps, and one-line change descriptions."""

from __future__ import annotations

import copy

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shells.mirror import Change, Mirror, PatchError, apply_patch, describe
from shells.terminal import touched_keys

DOC = {
    "clock": {"bpm": 120.0, "playing": False, "meter": 4},
    "modules": {
        "lfo1": {"type": "lfo", "params": {"rate": 2.0, "depth": 1.0, "shape": "sine"}},
        "lfo2": {"type": "lfo", "params": {"rate": 0.5, "depth": 1.0, "shape": "saw"}},
    },
    "connections": [{"src": "lfo1.out", "dst": "lfo2.rate"}],
}


def test_apply_patch_matches_jsonpatch_and_leaves_the_input_alone() -> None:
    ops = [
        {"op": "replace", "path": "/modules/lfo1/params/rate", "value": 3.0},
        {"op": "add", "path": "/modules/s~1q", "value": {"type": "seq", "params": {"steps": [1, None]}}},
        {"op": "remove", "path": "/modules/lfo2"},
        {"op": "add", "path": "/connections/0", "value": {"src": "a.out", "dst": "b.in"}},
        {"op": "replace", "path": "/clock", "value": {"bpm": 90.0, "playing": True, "meter": 3}},
        {"op": "remove", "path": "/connections/1"},
    ]
    before = copy.deepcopy(DOC)
    assert apply_patch(DOC, ops) == jsonpatch.apply_patch(DOC, ops)
    assert before == DOC


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "/modules/nope/params/rate", "value": 1},
        {"op": "remove", "path": "/modules/nope"},
        {"op": "add", "path": "/connections/7", "value": 1},
        {"op": "frob", "path": "/clock"},
        {"op": "replace", "path": "clock", "value": 1},
    ],
)
def test_a_patch_that_does_not_fit_raises(op: dict[str, object]) -> None:
    with pytest.raises(PatchError):
        apply_patch(DOC, [op])


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["lfo1", "lfo2"]),
    st.sampled_from(["rate", "depth"]),
)
def test_replacing_a_param_changes_only_that_param(value: float, module: str, name: str) -> None:
    out = apply_patch(DOC, [{"op": "replace", "path": f"/modules/{module}/params/{name}", "value": value}])
    assert out["modules"][module]["params"][name] == value
    other = "lfo2" if module == "lfo1" else "lfo1"
    assert out["modules"][other] is DOC["modules"][other]  # shared, not copied


def test_the_mirror_applies_deltas_in_order_and_reports_a_gap() -> None:
    m = Mirror()
    assert m.apply({"type": "delta", "base": 1, "version": 2, "ops": []}) is None  # no snapshot yet
    m.load({"type": "snapshot", "version": 5, "state": DOC})
    changes = m.apply(
        {
            "type": "delta",
            "base": 5,
            "version": 7,
            "origin": "editor",
            "ops": [{"op": "replace", "path": "/modules/lfo1/params/rate", "value": 3.0}],
        }
    )
    assert changes == [Change("lfo1.rate", "lfo1.rate = 3.0")]
    assert m.version == 7 and m.doc["modules"]["lfo1"]["params"]["rate"] == 3.0
    assert m.apply({"type": "delta", "base": 8, "version": 9, "ops": []}) is None  # a gap: resync
    bad = {"type": "delta", "base": 7, "version": 8, "ops": [{"op": "remove", "path": "/modules/zz"}]}
    assert m.apply(bad) is None and m.version == 7


def test_describe_says_what_changed_in_command_words() -> None:
    after = copy.deepcopy(DOC)
    after["modules"]["lfo3"] = {"type": "lfo", "params": {"rate": 1.0, "depth": 1.0, "shape": "sine"}}
    del after["modules"]["lfo2"]
    after["connections"] = [{"src": "lfo1.out", "dst": "lfo3.depth"}]
    after["clock"] = {"bpm": 140.0, "playing": True, "meter": 4}
    after["modules"]["lfo1"]["params"]["shape"] = "square"
    ops = [
        {"op": "add", "path": "/modules/lfo3", "value": after["modules"]["lfo3"]},
        {"op": "remove", "path": "/modules/lfo2"},
        {"op": "replace", "path": "/connections", "value": after["connections"]},
        {"op": "replace", "path": "/clock/bpm", "value": 140.0},
        {"op": "replace", "path": "/clock/playing", "value": True},
        {"op": "replace", "path": "/modules/lfo1/params/shape", "value": "square"},
    ]
    assert [c.text for c in describe(DOC, after, ops)] == [
        "add lfo3 lfo",
        "rm lfo2",
        "disconnect lfo1.out lfo2.rate",
        "connect lfo1.out lfo3.depth",
        "bpm = 140.0",
        "play",
        'lfo1.shape = "square"',
    ]


@pytest.mark.parametrize(
    ("line", "keys"),
    [
        ("set lfo1.rate 3", {"lfo1.rate"}),
        ("add lfo3 lfo rate=2", {"lfo3"}),
        ("rm lfo3", {"lfo3"}),
        ("connect a.out b.in", {"connection a.out b.in"}),
        ("bpm 90", {"clock.bpm"}),
        ("play", {"clock.playing"}),
        ("get lfo1.rate", set()),
        ("state", set()),
        ("undo", None),
        ("load x.vt", None),
    ],
)
def test_the_keys_a_command_line_may_touch(line: str, keys: set[str] | None) -> None:
    assert touched_keys(line) == keys


def test_connection_element_ops_from_the_engine_apply_and_read_as_commands() -> None:
    m = Mirror()
    m.load({"type": "snapshot", "version": 1, "state": copy.deepcopy(DOC)})
    ops = [
        {"op": "remove", "path": "/connections/0"},
        {"op": "add", "path": "/connections/0", "value": {"src": "lfo1.out", "dst": "lfo2.depth"}},
        {"op": "add", "path": "/connections/1", "value": {"src": "lfo2.out", "dst": "lfo1.rate"}},
    ]
    changes = m.apply({"type": "delta", "base": 1, "version": 2, "ops": ops, "origin": "editor"})
    assert m.connections() == [("lfo1.out", "lfo2.depth"), ("lfo2.out", "lfo1.rate")]
    assert [c.text for c in changes or []] == [
        "disconnect lfo1.out lfo2.rate",
        "connect lfo1.out lfo2.depth",
        "connect lfo2.out lfo1.rate",
    ]
    assert m.apply({"type": "delta", "base": 2, "version": 3, "ops": [{"op": "remove", "path": "/connections/5"}]}) is None


SCHEMA = {
    "lfo": {
        "params": {"rate": {"kind": "float"}, "shape": {"kind": "enum", "choices": ["sine", "square", "saw", "triangle"]}},
        "inputs": ["rate", "shape"],
        "outputs": ["out"],
    },
    "gate": {"params": {"open": {"kind": "bool"}}, "inputs": ["open"], "outputs": []},
}


def completions(mirror: Mirror, text: str) -> list[str]:
    from prompt_toolkit.document import Document

    from shells.terminal import make_completer

    return [c.text for c in make_completer(mirror).get_completions(Document(text), None)]


def test_the_terminal_completes_every_verb_of_the_table_and_enum_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from vtkernel.verbs import VERBS, Verb

    m = Mirror()
    m.load({"type": "snapshot", "version": 1, "state": copy.deepcopy(DOC)})
    m.schema = SCHEMA
    assert completions(m, "") == sorted(VERBS)  # close, panel, meter included
    assert completions(m, "set lfo1.shape ") == ["saw", "sine", "square", "triangle"]
    assert completions(m, "set lfo1.shape s") == ["saw", "sine", "square"]
    assert completions(m, "add g lfo ") == ["rate=", "shape="]
    assert completions(m, "add g lfo shape=sq") == ["shape=square"]
    assert completions(m, "disconnect lfo1.out ") == ["lfo2.rate"]
    assert completions(m, "help cl") == ["close"]
    monkeypatch.setitem(VERBS, "doctor", Verb("doctor", "doctor", "check the setup"))
    assert "doctor" in completions(m, "d")  # a verb added to the table completes with no other edit


def test_the_panels_javascript_patcher_applies_the_engines_connection_deltas(tmp_path) -> None:
    """Engine-rendered element ops on /connections, through the panel's own applyPatch under node."""
    import json
    import random
    import shutil
    import subprocess
    from pathlib import Path

    from vtkernel.engine.apply import EditState, apply
    from vtkernel.engine.delta import render_ops
    from vtkernel.engine.document import Document
    from vtkernel.engine.schema import default_registry
    from vtkernel.protocol import AddModule, Batch, Connect, Disconnect, RemoveModule

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/test.sh installs it)")
    static = Path(__file__).resolve().parents[2] / "shells" / "static"
    module = next(p for p in (static / "patch.js", static / "panel.js") if p.exists() and "export function applyPatch" in p.read_text())
    reg = default_registry()
    rng = random.Random(7)
    cases = []
    for _ in range(60):
        state, _ = apply(EditState(Document()), Batch(commands=[AddModule(name=f"m{i}", type="lfo") for i in range(8)]), reg)
        docs, steps = [state.doc], []
        for _ in range(rng.randrange(1, 25)):
            src, dst = f"m{rng.randrange(8)}.out", f"m{rng.randrange(8)}.{rng.choice(['rate', 'depth'])}"
            cmd = rng.choice([Connect(src=src, dst=dst), Connect(src=src, dst=dst), Disconnect(src=src, dst=dst)])
            if rng.random() < 0.05:
                cmd = RemoveModule(name=f"m{rng.randrange(8)}") if state.doc.modules else cmd
            try:
                state, paths = apply(state, cmd, reg)
            except Exception:
                continue
            docs.append(state.doc)
            steps.append(paths)
        base = rng.randrange(len(docs))
        ops = render_ops(docs[base], docs[-1], [p for step in steps[base:] for p in step])
        cases.append({"base": docs[base].to_json(), "ops": ops, "want": docs[-1].to_json()})
    runner = tmp_path / "run.mjs"
    runner.write_text(
        f"import {{ applyPatch }} from {json.dumps(module.as_uri())};\n"
        "let text = ''; process.stdin.on('data', (d) => (text += d));\n"
        "process.stdin.on('end', () => {\n"
        "  const out = JSON.parse(text).map((c) => applyPatch(c.base, c.ops));\n"
        "  process.stdout.write(JSON.stringify(out));\n"
        "});\n"
    )
    run = subprocess.run([node, str(runner)], input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert [g for g, c in zip(got, cases, strict=True) if g != c["want"]] == []
    assert any(op["path"].startswith("/connections/") for c in cases for op in c["ops"])
