"""What the runtime sends the scheduler: only what changed, with each op's quantization."""

from __future__ import annotations

import socket

from tests.timing.conftest import QuantizedChange
from vtkernel.engine import Engine
from vtkernel.engine.timing.quantize import quantized_paths
from vtkernel.engine.timing.wire import recv_frame
from vtkernel.protocol import parse_command
from vtkernel.runtime import Runtime


def feed(engine: Engine, before, snaps):
    """Run the feeder's coalescing step for `snaps` on top of `before`; return the message sent."""
    runtime = Runtime(engine)
    runtime._sent = before
    a, b = socket.socketpair()
    with a, b:
        runtime._send_snaps(a, snaps)
        return recv_frame(b)


def test_one_param_edit_in_a_big_patch_sends_one_op():
    engine = Engine().start()
    try:
        engine.call(
            parse_command(
                {"op": "batch", "commands": [{"op": "add_module", "name": f"m{i}", "type": "lfo"} for i in range(2000)]}
            )
        )
        before = engine.snapshot
        engine.call(parse_command({"op": "set_param", "module": "m7", "param": "rate", "value": 3.0}))
        message = feed(engine, before, [engine.snapshot])
    finally:
        engine.stop()
    assert message == (
        "patch",
        before.version + 1,
        [({"op": "replace", "path": "/modules/m7/params/rate", "value": 3.0}, None)],
    )


def test_queued_versions_are_coalesced_and_keep_each_ops_quantization():
    engine = Engine().start()
    try:
        engine.call(parse_command({"op": "add_module", "name": "s", "type": "seq"}))
        before = engine.snapshot
        snaps = []
        for data in (
            {"op": "set_param", "module": "s", "param": "steps", "value": [1], "quantize": "bar"},
            {"op": "set_param", "module": "s", "param": "division", "value": 2},
            {"op": "set_param", "module": "s", "param": "steps", "value": [2], "quantize": "beat"},
        ):
            cmd = parse_command(data)
            engine.call(cmd)
            snap = engine.snapshot
            quantize = tuple(quantized_paths(cmd, snap.change.paths))
            snaps.append(type(snap)(snap.version, snap.doc, QuantizedChange(*vars_of(snap.change), quantize=quantize)))
        message = feed(engine, before, snaps)
    finally:
        engine.stop()
    kind, version, ops = message
    assert (kind, version) == ("patch", snaps[-1].version)
    assert sorted((op["path"], op["value"], q) for op, q in ops) == [
        ("/modules/s/params/division", 2, None),
        ("/modules/s/params/steps", [2], "beat"),  # the latest edit of a path decides
    ]


def vars_of(change):
    return (change.version, change.paths, change.origin, change.time)


def test_quantized_paths_attribute_each_sub_command_of_a_batch():
    cmd = parse_command(
        {
            "op": "batch",
            "commands": [
                {"op": "set_param", "module": "a", "param": "rate", "value": 1, "quantize": "bar"},
                {"op": "set_param", "module": "b", "param": "rate", "value": 1},
                {"op": "stop", "quantize": "beat"},
            ],
        }
    )
    paths = [("modules", "a", "params", "rate"), ("modules", "b", "params", "rate"), ("clock", "playing")]
    assert quantized_paths(cmd, paths) == [(paths[0], "bar"), (paths[2], "beat")]
    assert quantized_paths(parse_command({"op": "play", "quantize": "now"}), [("clock", "playing")]) == []


def test_when_the_history_ring_lost_the_childs_version_the_feeder_sends_the_whole_patch_once():
    from tests.timing.test_render import renderer
    from vtkernel.jsonpatch import apply_patch

    engine = Engine(history=3).start()
    try:
        engine.call(parse_command({"op": "add_module", "name": "a", "type": "lfo"}))
        before = engine.snapshot
        for i in range(5):  # more versions than the ring keeps
            engine.call(parse_command({"op": "set_param", "module": "a", "param": "rate", "value": 2.0 + i}))
        engine.call(parse_command({"op": "add_module", "name": "b", "type": "seq"}))
        engine.call(parse_command({"op": "add_module", "name": "o", "type": "osc_out"}))
        engine.call(parse_command({"op": "connect", "src": "b.out", "dst": "o.in"}))
        assert engine.history_since(before.version) is None
        kind, version, annotated = feed(engine, before, None)
    finally:
        engine.stop()
    assert (kind, version) == ("patch", engine.snapshot.version)
    assert all(q is None for _, q in annotated)
    state = apply_patch(before.doc.to_json(), [op for op, _ in annotated])
    assert state == engine.snapshot.doc.to_json()
    child, _ = renderer(before.doc.to_json())  # the scheduler's own copy takes the same ops
    child.apply(annotated, version, now=0.0)
    assert child.target == child.live == state
