"""`document_to_script`: the canonical script rebuilds the document on a fresh engine."""

from __future__ import annotations

import re
from typing import ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtkernel.api import VT
from vtkernel.engine import Engine, default_registry, validate_document
from vtkernel.engine.document import Document
from vtkernel.engine.schema import ModuleType, ParamSpec
from vtkernel.engine.script import document_to_script

REGISTRY = default_registry()
BUILTINS = ("lfo", "seq", "osc_out", "recorder")


def param_values(spec: ParamSpec) -> st.SearchStrategy:
    if spec.kind == "float":
        lo = spec.min if spec.min is not None else -1e6
        hi = spec.max if spec.max is not None else 1e6
        return st.floats(lo, hi, exclude_min=spec.min_exclusive, allow_nan=False, allow_infinity=False)
    if spec.kind == "int":
        return st.integers(
            int(spec.min if spec.min is not None else -(10**6)), int(spec.max if spec.max is not None else 10**6)
        )
    if spec.kind == "enum":
        return st.sampled_from(spec.choices)
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "string":
        if spec.pattern is not None:
            return st.from_regex(re.compile(spec.pattern), fullmatch=True).filter(lambda s: len(s) <= 64)
        return st.text(max_size=24)
    if spec.kind == "pattern":  # mini-notation (the JSON form of a pattern may be a plain string)
        return st.sampled_from(["bd*2 [~ sd]", "<0 3> 5", "c4 e4 g4", "hh*8?", "{a b, c d e}%4"])
    if spec.kind == "list":
        atom = st.integers(-100, 100) | st.sampled_from(["freq", "{freq}", "amp"]) | st.floats(-1, 1, allow_nan=False)
        return st.lists(atom, max_size=6)
    assert spec.kind == "steps", spec.kind
    step = st.none() | st.integers(-200, 200) | st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
    return st.lists(step, min_size=1, max_size=12)


@st.composite
def module_json(draw, type_name: str) -> dict:
    specs = REGISTRY.get(type_name).params
    chosen = draw(st.lists(st.sampled_from(sorted(specs)), unique=True))
    return {"type": type_name, "params": {p: draw(param_values(specs[p])) for p in chosen}}


@st.composite
def documents(draw) -> Document:
    names = draw(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), unique=True, max_size=6))
    modules = {name: draw(module_json(draw(st.sampled_from(BUILTINS)))) for name in names}
    outs = [f"{n}.out" for n, m in modules.items() if REGISTRY.get(m["type"]).outputs]
    ins = [f"{n}.{port}" for n, m in modules.items() for port in REGISTRY.get(m["type"]).input_ports()]
    connections = []
    if outs and ins:
        pairs = draw(st.lists(st.tuples(st.sampled_from(outs), st.sampled_from(ins)), unique=True, max_size=6))
        connections = [{"src": s, "dst": d} for s, d in pairs]
    bpm = draw(st.floats(20, 999, allow_nan=False))
    meter = draw(st.integers(1, 64))
    data = {"clock": {"bpm": bpm, "meter": meter}, "modules": modules, "connections": connections}
    return validate_document(data, REGISTRY)


def rebuild(script: str, registry=None) -> Document:
    engine = Engine(registry).start()
    try:
        vt = VT(engine)
        exec(compile(script, "<script>", "exec"), {"vt": vt})
        vt.flush()
        return engine.snapshot.doc
    finally:
        engine.stop()


def same_patch(a: Document, b: Document) -> bool:
    def norm(doc: Document):
        return (
            doc.clock.bpm,
            doc.clock.meter,
            {n: (m.type, {k: (type(v), v) for k, v in m.params.items()}) for n, m in doc.modules.items()},
            set(doc.connections.keys()),
        )

    return norm(a) == norm(b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_running_the_script_on_a_fresh_engine_rebuilds_the_document(doc):
    script = document_to_script(doc)
    rebuilt = rebuild(script)
    assert same_patch(rebuilt, doc)
    assert document_to_script(rebuilt) == script  # canonical: equal documents, equal text


def test_the_script_is_sorted_readable_python():
    data = {
        "clock": {"bpm": 128},
        "modules": {
            "lfo2": {"type": "lfo", "params": {"rate": 0.5, "shape": "saw"}},
            "lfo1": {"type": "lfo", "params": {"rate": 2}},
            "seq1": {"type": "seq", "params": {"steps": [60, None, 62.5]}},
        },
        "connections": [{"src": "lfo1.out", "dst": "lfo2.rate"}, {"src": "lfo1.out", "dst": "lfo2.depth"}],
    }
    script = document_to_script(validate_document(data, REGISTRY))
    assert script.splitlines()[1:] == [
        "vt.bpm(128.0)",
        "vt.meter(4)",
        "",
        'vt.module("lfo1", "lfo", depth=1.0, rate=2.0, shape="sine")',
        'vt.module("lfo2", "lfo", depth=1.0, rate=0.5, shape="saw")',
        'vt.module("seq1", "seq", division=4, steps=[60, None, 62.5])',
        "",
        'vt.connect("lfo1.out", "lfo2.depth")',
        'vt.connect("lfo1.out", "lfo2.rate")',
    ]


def test_floats_and_awkward_strings_survive():
    data = {"modules": {"o": {"type": "osc_out", "params": {"host": "a\"b'c\\\n", "address": "/x"}}}}
    doc = validate_document(data, REGISTRY)
    assert same_patch(rebuild(document_to_script(doc)), doc)
    third = validate_document({"modules": {"l": {"type": "lfo", "params": {"rate": 1 / 3}}}}, REGISTRY)
    assert rebuild(document_to_script(third)).modules["l"].params["rate"] == 1 / 3


class Awkward(ModuleType):
    type_name = "awkward"
    params: ClassVar[dict[str, ParamSpec]] = {
        "type": ParamSpec("int", 1, min=0, max=9),
        "class": ParamSpec("bool", False),
        "gain": ParamSpec("float", 0.5, min=0, max=1),
    }


def test_params_that_cannot_be_keywords_are_passed_as_a_dict():
    registry = default_registry()
    registry.register(Awkward)
    doc = validate_document({"modules": {"w": {"type": "awkward", "params": {"type": 3, "class": True}}}}, registry)
    script = document_to_script(doc)
    assert 'vt.module("w", "awkward", gain=0.5, **{"class": True})\nvt.set("w.type", 3)\n' in script
    assert same_patch(rebuild(script, registry), doc)
