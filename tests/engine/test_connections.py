"""Connection edits cost what they change (issue 12 #5): element deltas, a by-module index, routes only."""

from __future__ import annotations

import json

import jsonpatch as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.timing.test_render import FakeOutputs
from vtkernel.engine.apply import EditState, apply
from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Connections, Document
from vtkernel.engine.schema import BUILTIN_TYPES, default_registry
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.render import Renderer
from vtkernel.jsonpatch import apply_patch
from vtkernel.protocol import AddModule, Batch, Connect, Disconnect, RemoveModule

REG = default_registry()


def patch_of(n: int) -> EditState:
    """`n` lfos, each modulating the next one's rate: n-1 connections (2,000 for n=2001)."""
    state = EditState(Document())
    adds = [AddModule(name=f"m{i}", type="lfo") for i in range(n)]
    conns = [Connect(src=f"m{i}.out", dst=f"m{i + 1}.rate") for i in range(n - 1)]
    state, _ = apply(state, Batch(commands=[*adds, *conns]), REG)
    return state


def test_one_connect_among_2000_is_one_small_element_op() -> None:
    state = patch_of(2001)
    assert len(state.doc.connections) == 2000
    after, paths = apply(state, Connect(src="m5.out", dst="m900.depth"), REG)
    assert paths == [("connections", "m5.out", "m900.depth")]
    ops = render_ops(state.doc, after.doc, paths)
    index = after.doc.sorted_connections().index(("m5.out", "m900.depth"))
    assert ops == [{"op": "add", "path": f"/connections/{index}", "value": {"src": "m5.out", "dst": "m900.depth"}}]
    assert len(json.dumps(ops)) < 120  # the whole list was 82 KiB
    assert apply_patch(state.doc.to_json(), ops) == after.doc.to_json()
    gone, paths = apply(after, Disconnect(src="m5.out", dst="m900.depth"), REG)
    assert render_ops(after.doc, gone.doc, paths) == [{"op": "remove", "path": f"/connections/{index}"}]


def test_removing_a_module_touches_only_its_own_connections() -> None:
    state = patch_of(2001)
    after, paths = apply(state, RemoveModule(name="m10"), REG)
    assert paths == [("modules", "m10"), ("connections", "m10.out", "m11.rate"), ("connections", "m9.out", "m10.rate")]
    assert len(after.doc.connections) == 1998
    assert state.doc.connections.of_module("m10") == [("m10.out", "m11.rate"), ("m9.out", "m10.rate")]
    assert after.doc.connections.of_module("m10") == [] and after.doc.connections.of_module("m9") == [("m8.out", "m9.rate")]
    assert state.doc.connections.of_module("nobody") == []
    ops = render_ops(state.doc, after.doc, paths)
    assert [op["op"] for op in ops] == ["remove", "remove", "remove"]
    assert apply_patch(state.doc.to_json(), ops) == after.doc.to_json()


keys = st.tuples(st.sampled_from([f"m{i}.out" for i in range(6)]), st.sampled_from([f"m{i}.rate" for i in range(6)]))


@settings(max_examples=200, deadline=None)
@given(st.lists(keys, max_size=40), st.lists(st.tuples(st.booleans(), keys), max_size=40))
def test_connections_stay_sorted_and_indexed_through_any_edits(start: list, edits: list) -> None:
    conns = Connections(start)
    model = set(start)
    for add, key in edits:
        conns = conns.add(key) if add else conns.remove(key)
        (model.add if add else model.discard)(key)
        assert list(conns) == sorted(model)
        assert all(conns.index(k) == i for i, k in enumerate(sorted(model)))
        for name in (f"m{i}" for i in range(6)):
            assert conns.of_module(name) == sorted(k for k in model if name in (k[0][:2], k[1][:2]))
    assert conns == Connections(model) and len(conns) == len(model)


def test_chunks_split_and_merge_beyond_one_chunk() -> None:
    conns = Connections()
    wanted = [(f"a{i:04}.out", f"b{i:04}.rate") for i in range(700)]
    for key in reversed(wanted):  # inserting at the front splits the first chunk again and again
        conns = conns.add(key)
    assert list(conns) == wanted and conns.index(wanted[333]) == 333
    conns = conns.remove_all(wanted[100:650])
    assert list(conns) == wanted[:100] + wanted[650:] and conns.index(wanted[690]) == 140


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), keys), max_size=30), st.integers(0, 30))
def test_coalesced_connection_deltas_take_any_base_to_the_newest(edits: list, split: int) -> None:
    state = EditState(Document())
    state, _ = apply(state, Batch(commands=[AddModule(name=f"m{i}", type="lfo") for i in range(6)]), REG)
    docs, steps = [state.doc], []
    for add, (src, dst) in edits:
        state, paths = apply(state, (Connect if add else Disconnect)(src=src, dst=dst), REG)
        docs.append(state.doc)
        steps.append(paths)
    i = min(split, len(docs) - 1)
    ops = render_ops(docs[i], docs[-1], [p for step in steps[i:] for p in step])
    assert reference.apply_patch(docs[i].to_json(), ops) == docs[-1].to_json()  # an independent RFC 6902
    assert apply_patch(docs[i].to_json(), ops) == docs[-1].to_json()


def test_the_scheduler_rebuilds_only_routes_on_a_connection_edit() -> None:
    state = EditState(Document())
    state, _ = apply(
        state,
        Batch(commands=[AddModule(name="s", type="seq", params={"steps": [60, 62]}), AddModule(name="r", type="recorder"),
                        AddModule(name="l", type="lfo")]),
        REG,
    )
    out = FakeOutputs()
    r = Renderer({cls.type_name: cls for cls in BUILTIN_TYPES}, out, lookahead=0.05, wall=WallClock(1e9))
    r.reset(state.doc.to_json(), 1, now=0.0)
    params = r._params("s")
    instance = r._instance("s")
    assert r.routes().events_to == {}
    after, paths = apply(state, Connect(src="s.out", dst="r.in"), REG)
    r.apply([(op, None) for op in render_ops(state.doc, after.doc, paths)], 2, now=0.0)
    assert r.routes().events_to == {"s": ["r"]}  # routes rebuilt
    assert r._params("s") is params and r._instance("s") is instance  # nothing else dropped
    assert r.live["connections"] == r.target["connections"] == after.doc.to_json()["connections"]
    gone, paths = apply(after, RemoveModule(name="s"), REG)
    r.apply([(op, None) for op in render_ops(after.doc, gone.doc, paths)], 3, now=0.0)
    assert r.live == {k: v for k, v in gone.doc.to_json().items()} and r.routes().events_to == {}


def test_a_quantized_connect_still_waits_for_its_bar() -> None:
    from vtkernel.engine.timing.quantize import quantized_paths
    from vtkernel.runtime.host import _quantize_of

    state = EditState(Document())
    state, _ = apply(
        state,
        Batch(commands=[AddModule(name="s", type="seq", params={"steps": [60] * 4}), AddModule(name="r", type="recorder")]),
        REG,
    )
    connect = Connect(src="s.out", dst="r.in", quantize="bar")
    after, paths = apply(state, connect, REG)
    assert quantized_paths(connect, paths) == [(("connections", "s.out", "r.in"), "bar")]
    ops = render_ops(state.doc, after.doc, paths)
    latest = {p: (0, q) for p, q in quantized_paths(connect, paths)}
    assert [_quantize_of(op["path"], latest) for op in ops] == ["bar"]
    out = FakeOutputs()
    r = Renderer({cls.type_name: cls for cls in BUILTIN_TYPES}, out, lookahead=0.05, wall=WallClock(1e9))
    playing = state.doc.to_json()
    playing["clock"]["playing"] = True
    r.reset(playing, 1, now=0.0)
    r.advance(0.0)
    r.advance(0.3)  # beat ~0.7 at 120 bpm: inside the first bar
    r.apply([(op, "bar") for op in ops], 2, now=0.3)
    assert r.target["connections"] == [{"src": "s.out", "dst": "r.in"}] and r.live["connections"] == []
    t = 0.3
    while t < 2.5:  # past beat 4, the next bar
        t += 0.01
        r.advance(t)
    assert r.live["connections"] == r.target["connections"]
    assert out.recorded and min(beat for _, beat, _ in out.recorded) == 4.0  # the first event routed is on the bar
