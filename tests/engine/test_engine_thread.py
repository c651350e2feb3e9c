"""The engine thread, the lock-free queue, signals and deltas (no kernel, no sleeps)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtkernel import api
from vtkernel.api import VT, EngineTimeout
from vtkernel.engine import Engine, Mailbox, Signal
from vtkernel.engine.apply import EditState, apply
from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Document
from vtkernel.engine.queue import CommandQueue
from vtkernel.engine.schema import default_registry
from vtkernel.protocol import AddModule, SetParam, VTError, parse_command

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


# ---- read-your-writes under concurrent submitters (issue 12 #1) --------------


class _PausingCounter:
    """Stands in for the engine's sequence counter: the thread named `slow` stops right after it
    takes its number, until `release` is set, so a second submitter can run inside that window."""

    def __init__(self, start: int) -> None:
        self._inner = itertools.count(start)
        self.slow_seq = 0
        self.paused = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> _PausingCounter:
        return self

    def __next__(self) -> int:
        n = next(self._inner)
        if threading.current_thread().name == "slow":
            self.slow_seq = n
            self.paused.set()
            self.release.wait(10)
        return n


def test_applied_mark_never_passes_a_command_not_yet_applied_nor_goes_back(engine: Engine) -> None:
    engine.call(AddModule(name="m", type="lfo"))
    engine.call(AddModule(name="n", type="lfo"))
    counter = _PausingCounter(engine._last_seq + 1)
    engine._seq = counter  # type: ignore[assignment]
    slow_vt = VT(engine, origin="slow")
    seen_after_flush: list[float] = []

    def slow() -> None:
        slow_vt.set("m.rate", 5)
        slow_vt.flush()
        seen_after_flush.append(engine.snapshot.doc.modules["m"].params["rate"])

    fast_seq: list[int] = []
    fast_done = threading.Event()

    def fast() -> None:
        fast_seq.append(engine.call(SetParam(module="n", param="rate", value=7)).seq)
        fast_done.set()

    t_slow = threading.Thread(target=slow, name="slow")
    t_slow.start()
    assert counter.paused.wait(10)
    t_fast = threading.Thread(target=fast, name="fast")
    t_fast.start()
    # With the fix the fast submitter waits for the slow one's enqueue; without it, it goes first.
    fast_done.wait(1.0)
    assert engine.wait_applied(counter.slow_seq, timeout=0) is False  # not even queued yet
    counter.release.set()
    t_slow.join(10)
    t_fast.join(10)
    assert seen_after_flush == [5.0]  # the slow thread's flush saw its own write
    assert engine.wait_applied(fast_seq[0], timeout=5)  # the mark did not go back below a later command
    assert engine.wait_applied(counter.slow_seq, timeout=0)


def test_vt_flush_raises_in_the_cell_when_the_engine_does_not_answer() -> None:
    stalled = Engine()  # never started: nothing is applied
    vt = VT(stalled)
    vt.module("a", "lfo")
    with pytest.raises(EngineTimeout, match="1 of this cell's commands"):
        vt.flush(timeout=0.05)
    timeout = EngineTimeout("x")
    assert isinstance(timeout, VTError) and timeout.code == "internal_error" and len(timeout._render_traceback_()) == 1
    stalled.start()
    try:
        vt.flush(timeout=10)  # still queued: it lands once the engine runs
        assert "a" in stalled.snapshot.doc.modules
    finally:
        stalled.stop()


def test_a_cell_queues_at_most_in_flight_commands_ahead_of_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell setting a param in a tight loop waits for the engine instead of queueing without bound.

    Other shells' commands go into the same queue behind the cell's: unbounded,
    a loop that outran the engine made every panel's ack wait longer and longer.
    """
    monkeypatch.setattr(api, "CATCH_UP_SECONDS", 0.05)
    stalled = Engine()  # never started: nothing is applied
    vt = VT(stalled)
    vt.module("a", "lfo")
    for i in range(api.IN_FLIGHT - 1):
        vt.set("a.rate", 1 + i % 50)
    with pytest.raises(EngineTimeout, match=f"{api.IN_FLIGHT + 1} of this cell's queued commands"):
        vt.set("a.rate", 2)  # one past the bound: the cell waits for the engine, which never answers
    assert len(stalled._queue._items) == api.IN_FLIGHT + 1
    stalled.start()
    try:
        vt.flush(timeout=10)  # nothing was lost: they land once the engine runs
        assert stalled.snapshot.doc.modules["a"].params["rate"] == 2
    finally:
        stalled.stop()


def test_engine_errors_taken_while_a_cell_waited_for_the_engine_still_fail_the_cell(engine: Engine) -> None:
    vt = VT(engine)
    vt.module("a", "lfo")
    vt.flush()
    vt.set("a.rate", 2)
    engine.submit(parse_command({"op": "remove_module", "name": "a"}))  # another shell, between the cell's lines
    vt.set("a.rate", 3)  # valid as the cell sees it; the engine refuses it
    engine.submit(parse_command({"op": "add_module", "name": "a", "type": "lfo", "params": {}}))
    for i in range(3 * api.IN_FLIGHT):  # the cell waits for the engine at least twice, taking outcomes
        vt.set("a.rate", 1 + i % 50)
    with pytest.raises(VTError, match="no module named 'a'"):
        vt.flush(timeout=10)
    vt.flush(timeout=10)  # said once


def test_mailbox_wait_for_counts_only_its_own_outcomes(engine: Engine) -> None:
    mine = Mailbox()
    for i in range(50):
        engine.submit(SetParam(module="x", param="rate", value=1.0), reply=mine)  # errors are outcomes too
        engine.submit(parse_command({"op": "set_bpm", "bpm": 100 + i}))  # another submitter's work
    assert mine.wait_for(50, timeout=10)
    assert mine.received == 50 and len(mine.take_all()) == 50
    assert mine.wait_for(51, timeout=0.01) is False


# ---- what %vt undo, %vt state and %vt stats print (issue 12 #19) ----------------


def test_undo_and_redo_say_what_they_changed(engine: Engine) -> None:
    vt = VT(engine)
    vt.run("add lfo1 lfo rate=2")
    vt.run("set lfo1.rate 3")
    v = vt.version
    assert vt.run("undo") == f"undo -> v{v + 1}: lfo1.rate 3.0 -> 2.0"
    assert vt.run("redo") == f"redo -> v{v + 2}: lfo1.rate 2.0 -> 3.0"
    vt.run("bpm 90")
    assert vt.run("undo").endswith(": bpm 90.0 -> 120.0")
    vt.run("add lfo2 lfo")
    vt.run("connect lfo1.out lfo2.rate")
    assert vt.run("undo").endswith(": disconnect lfo1.out lfo2.rate")
    assert vt.run("undo").endswith(": rm lfo2")
    assert vt.run("redo").endswith(": add lfo2 lfo")
    assert vt.run("redo").endswith(": connect lfo1.out lfo2.rate")
    with pytest.raises(VTError, match="nothing to redo"):
        vt.run("redo")


def test_state_lists_params_sorted_whatever_order_they_were_set_in(engine: Engine) -> None:
    import json

    vt = VT(engine)
    vt.module("o", "osc_out", port=9000, host="127.0.0.1", address="/x")
    for p, v in (("port", 9001), ("address", "/y"), ("host", "localhost")):
        vt.set(f"o.{p}", v)
    params = json.loads(vt.run("state"))["modules"]["o"]["params"]
    assert list(params) == sorted(params)


def test_stats_is_a_dict_for_code_and_aligned_text_for_people(engine: Engine) -> None:
    figures = {"engine": engine.stats(), "clock": {"alive": True, "tick_lateness_ms": {"p50": 0.25, "p99": 1.5}, "restarts": 0}}
    vt = VT(engine, services={"stats": lambda: figures})
    assert vt.stats() is figures
    text = vt.run("stats")
    assert "{" not in text and "'" not in text  # no raw dicts
    lines = text.splitlines()
    assert lines[0] == "engine" and "clock" in lines
    assert "  tick_lateness_ms.p99  1.5" in lines and any(line.split() == ["alive", "yes"] for line in lines)
    assert any(line.split()[:1] == ["apply_us_p50"] for line in lines)
