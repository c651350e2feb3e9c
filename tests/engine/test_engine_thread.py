"""The engine thread, the lock-free queue, signals and deltas (no kernel, no sleeps)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtkernel.api import VT
from vtkernel.engine import Engine, Mailbox, Signal
from vtkernel.engine.apply import EditState, apply
from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Document
from vtkernel.engine.queue import CommandQueue
from vtkernel.engine.schema import default_registry
from vtkernel.protocol import SetParam, VTError, parse_command

REG = default_registry()


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine().start()
    yield e
    e.stop()


def test_many_producers_lose_nothing_and_keep_each_producers_order() -> None:
    q: CommandQueue[tuple[int, int]] = CommandQueue()
    got: list[tuple[int, int]] = []
    total = 4 * 5000
    done = threading.Event()

    def consume() -> None:
        while len(got) < total:
            q.wait(None)
            got.extend(q.drain(1000))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    producers = [threading.Thread(target=lambda p=p: [q.put((p, i)) for i in range(5000)]) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    assert done.wait(30)
    for p in range(4):
        assert [i for (pp, i) in got if pp == p] == list(range(5000))


def test_versions_are_monotonic_and_a_noop_creates_none(engine: Engine) -> None:
    a = engine.call(parse_command({"op": "add_module", "name": "l", "type": "lfo"}))
    b = engine.call(parse_command({"op": "set_param", "module": "l", "param": "rate", "value": 1.0}))
    assert a.error is None and b.error is None
    assert b.version == a.version == engine.version  # unchanged value: acked with the current version
    c = engine.call(parse_command({"op": "undo"}))
    assert c.version == a.version + 1  # undo publishes a new version: versions never go back


def test_each_version_carries_the_changes_that_made_it(engine: Engine) -> None:
    engine.call(parse_command({"op": "add_module", "name": "l", "type": "lfo"}), origin="cell")
    out = engine.call(parse_command({"op": "set_param", "module": "l", "param": "rate", "value": 4}), origin="editor")
    snap = engine.at(out.version)
    assert snap.change is not None
    assert snap.change.paths == (("modules", "l", "params", "rate"),)
    assert snap.change.origin == "editor"


def test_errors_come_back_with_their_code_and_change_nothing(engine: Engine) -> None:
    before = engine.snapshot
    out = engine.call(parse_command({"op": "remove_module", "name": "ghost"}))
    assert out.error is not None and out.error.code == "unknown_module"
    assert engine.snapshot is before


def test_snapshots_held_by_readers_never_change(engine: Engine) -> None:
    engine.call(parse_command({"op": "add_module", "name": "l", "type": "lfo"}))
    held = engine.snapshot
    engine.call(parse_command({"op": "set_param", "module": "l", "param": "rate", "value": 9}))
    assert held["modules"]["l"]["params"]["rate"] == 1.0
    assert engine.snapshot["modules"]["l"]["params"]["rate"] == 9.0


def test_signals_run_on_the_subscribers_loop_never_on_the_engine_thread(engine: Engine) -> None:
    loop = asyncio.new_event_loop()
    seen: list[str] = []
    fired = threading.Event()

    def callback() -> None:
        seen.append(threading.current_thread().name)
        fired.set()

    engine.add_signal(Signal(callback, loop.call_soon_threadsafe))
    thread = threading.Thread(target=loop.run_forever, name="subscriber", daemon=True)
    thread.start()
    for i in range(200):
        engine.submit(parse_command({"op": "set_bpm", "bpm": 60 + i}))
    engine.wait_applied()
    assert fired.wait(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    assert set(seen) == {"subscriber"}
    assert len(seen) < 200  # coalesced: many publishes, few callbacks


def test_mailbox_gets_one_outcome_per_command_with_the_submitters_token(engine: Engine) -> None:
    box = Mailbox()
    for i in range(10):
        engine.submit(parse_command({"op": "set_bpm", "bpm": 100 + i}), reply=box, token=i)
    engine.wait_applied()
    outcomes = box.take_all()
    assert [o.token for o in outcomes] == list(range(10))
    assert outcomes[-1].version == engine.version


def test_vt_checks_at_the_call_site_and_reads_its_own_writes(engine: Engine) -> None:
    vt = VT(engine)
    vt.module("lfo1", "lfo", rate=2)
    vt.set("lfo1.rate", 3)  # sees its own pending add
    assert vt.snapshot()["modules"]["lfo1"]["params"]["rate"] == 3.0
    with pytest.raises(VTError) as info:
        vt.set("lfo1.rate", -1)
    assert info.value.code == "invalid_value"
    vt.module("lfo1", "lfo", rate=5, shape="saw")  # declarative: updates in place
    assert vt.get("lfo1.shape") == "saw"
    before = vt.version
    vt.module("lfo1", "lfo", rate=5, shape="saw")  # idempotent: nothing changes
    assert vt.version == before


def test_vt_batch_is_atomic(engine: Engine) -> None:
    vt = VT(engine)
    with pytest.raises(VTError):
        with vt.batch():
            vt.module("a", "lfo")
            vt.module("b", "lfo", depth=3)
    assert "a" not in vt.snapshot()["modules"]
    with vt.batch():
        vt.module("a", "lfo")
        vt.module("b", "seq", steps="60 ~ 62(3,8)")
    assert set(vt.snapshot()["modules"]) == {"a", "b"}


def test_history_allows_time_travel(engine: Engine) -> None:
    vt = VT(engine)
    vt.module("a", "lfo", rate=1)
    v1 = vt.version
    vt.set("a.rate", 2)
    assert vt.at(v1)["modules"]["a"]["params"]["rate"] == 1.0
    with pytest.raises(VTError):
        vt.at(10_000)


# ---- deltas: any sequence of commands, rendered from paths, takes base to new exactly --

names = st.sampled_from(["a", "b", "c"])
commands = st.one_of(
    st.builds(lambda n, t: {"op": "add_module", "name": n, "type": t}, names, st.sampled_from(["lfo", "seq"])),
    st.builds(lambda n: {"op": "remove_module", "name": n}, names),
    st.builds(lambda n, v: {"op": "set_param", "module": n, "param": "rate", "value": v}, names, st.floats(0.01, 100)),
    st.builds(lambda n, v: {"op": "set_param", "module": n, "param": "steps", "value": v}, names,
              st.lists(st.one_of(st.none(), st.integers(0, 127)), min_size=1, max_size=5)),
    st.builds(lambda a, b: {"op": "connect", "src": f"{a}.out", "dst": f"{b}.depth"}, names, names),
    st.builds(lambda a, b: {"op": "disconnect", "src": f"{a}.out", "dst": f"{b}.depth"}, names, names),
    st.builds(lambda b: {"op": "set_bpm", "bpm": b}, st.floats(20, 999)),
    st.sampled_from([{"op": "play"}, {"op": "stop"}, {"op": "undo"}, {"op": "redo"}]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=30), st.integers(0, 30))
def test_rendered_deltas_take_any_base_to_the_newest_document(cmds: list[dict], split: int) -> None:
    state = EditState(Document())
    docs = [state.doc]
    paths_per_step = []
    for data in cmds:
        try:
            state, paths = apply(state, parse_command(data), REG)
        except VTError:
            continue
        docs.append(state.doc)
        paths_per_step.append(paths)
    base_index = min(split, len(docs) - 1)
    base, new = docs[base_index], docs[-1]
    paths = [p for step in paths_per_step[base_index:] for p in step]
    patched = jsonpatch.apply_patch(base.to_json(), render_ops(base, new, paths))
    assert patched == new.to_json()


def test_publishing_costs_what_the_change_costs() -> None:
    """Structural sharing: a set_param on a 10k-module document shares the other modules."""
    state = EditState(Document())
    big = parse_command({"op": "batch", "commands": [{"op": "add_module", "name": f"m{i}", "type": "lfo"} for i in range(10_000)]})
    state, _ = apply(state, big, REG)
    after, _ = apply(state, SetParam(module="m5", param="rate", value=2.0), REG)
    assert after.doc.modules["m6"] is state.doc.modules["m6"]
    assert after.doc.connections is state.doc.connections
