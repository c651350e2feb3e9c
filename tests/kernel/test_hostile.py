"""Hostile comm input against a real kernel (issue 14, "Comm input"): each attack gets one
clear error line, changes nothing, and never takes another client down.

The attacks are sent as the raw bytes a hostile frontend could put on the wire:
jupyter_client's own packer refuses to encode a lone surrogate, so these tests
sign and send hand-made frames with the connection's key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Kernel, VTClient, start_kernel, stop_kernel


def ascii_json(obj: Any) -> bytes:
    """JSON as a hostile client may write it: `\\udfff` escapes are valid JSON text."""
    return json.dumps(obj, ensure_ascii=True).encode()


def send_frames(c: VTClient, msg_type: str, content: bytes) -> None:
    """Sign and send one shell message whose content frame is exactly `content`."""
    s = c.kc.session
    msg = s.msg(msg_type, {})
    parts = [s.pack(msg["header"]), s.pack(msg["parent_header"]), s.pack(msg["metadata"]), content]
    with c.send_lock:
        c.kc.shell_channel.socket.send_multipart([b"<IDS|MSG>", s.sign(parts), *parts])


def send_data(c: VTClient, data: Any) -> None:
    send_frames(c, "comm_msg", ascii_json({"comm_id": c.comm_id, "data": data}))


def raw_reply(c: VTClient, msg_id: Any) -> dict[str, Any]:
    return c.reply(msg_id, timeout=10)


SURROGATE = "\udfff"


def test_a_lone_surrogate_in_any_string_of_a_command_is_rejected(kernel: Kernel) -> None:
    kernel.ok("vt.module('o', 'osc_out'); vt.module('l', 'lfo')")
    before = kernel.ok("%vt state")
    c = kernel.client(shell="attacker")
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "value": ({"op": "set_param", "module": "o", "param": "host", "value": SURROGATE}, "invalid_value"),
        "nested": (
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [[1, {"k": SURROGATE}]]}},
            "invalid_value",
        ),
        "key": ({"op": "add_module", "name": "s", "type": "seq", "params": {SURROGATE: 1}}, "invalid_value"),
        "name": ({"op": "remove_module", "name": "l" + SURROGATE}, "invalid_command"),
        "type": ({"op": "add_module", "name": "s", "type": "seq" + SURROGATE}, "invalid_command"),
        "batch": (
            {"op": "batch", "commands": [{"op": "set_param", "module": "o", "param": "host", "value": "x" + SURROGATE}]},
            "invalid_value",
        ),
    }
    for i, (what, (command, code)) in enumerate(cases.items()):
        send_data(c, {"type": "command", "id": f"c{i}", "command": command})
        reply = raw_reply(c, f"c{i}")
        assert reply["type"] == "error" and reply["error"]["code"] == code, (what, reply)
        assert "\n" not in reply["error"]["message"], reply
        assert "surrogate" in reply["error"]["message"] or what == "name", reply  # names: letters, digits, _
    send_data(c, {"type": "text", "id": "t", "text": "set o.host " + SURROGATE})
    assert raw_reply(c, "t")["error"]["code"] in ("invalid_value", "invalid_command")
    assert kernel.ok("%vt state") == before
    c.close()


def test_one_clients_surrogate_never_cuts_off_the_others(kernel: Kernel) -> None:
    kernel.ok("vt.module('o', 'osc_out')")
    bystander = kernel.client(shell="bystander")
    attacker = kernel.client(shell="attacker")
    send_data(attacker, {"type": "command", "id": "bad", "command": {"op": "set_param", "module": "o", "param": "host", "value": SURROGATE}})
    assert raw_reply(attacker, "bad")["type"] == "error"
    # The bystander's commands are still acked, and it sees the change it made.
    reply = bystander.call({"op": "set_param", "module": "o", "param": "host", "value": "10.0.0.9"})
    assert reply["type"] == "ack"
    assert bystander.wait_for(lambda: bystander.version >= reply["version"])
    assert bystander.mirror is not None and bystander.mirror["modules"]["o"]["params"]["host"] == "10.0.0.9"
    # A newcomer still gets its snapshot, and the attacker is still served.
    newcomer = kernel.client(shell="newcomer")
    assert newcomer.mirror is not None and newcomer.mirror["modules"]["o"]["params"]["host"] == "10.0.0.9"
    assert attacker.call({"op": "set_bpm", "bpm": 100})["type"] == "ack"
    for c in (bystander, attacker, newcomer):
        c.close()


def test_a_hello_whose_shell_holds_a_lone_surrogate_is_refused_and_not_subscribed(kernel: Kernel) -> None:
    bystander = kernel.client(shell="bystander")
    bad = kernel.client(shell="prober")  # a second comm on this connection carries the bad hello
    comm_id = "bad-hello-comm"
    send_frames(
        bad,
        "comm_open",
        ascii_json({"comm_id": comm_id, "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": "x" + SURROGATE}}),
    )
    seen = bad.others
    assert bad.wait_for(lambda: {"type": "comm_close"} in seen.get(comm_id, [])), seen
    # An error, then the kernel closes the comm: no snapshot, no schema, never subscribed.
    assert [m["type"] for m in seen[comm_id]] == ["error", "comm_close"], seen
    error = seen[comm_id][0]["error"]
    assert error["code"] == "bad_message" and "surrogate" in error["message"] and "\n" not in error["message"]
    assert kernel.ok("print(len(get_ipython().kernel.hub.clients))").strip() == "2"  # bystander, prober
    assert bystander.call({"op": "set_bpm", "bpm": 99})["type"] == "ack"
    bad.close()
    bystander.close()


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived: Any = None  # an asyncio.Event, set on the hub loop at each message

    def send(self, msg: dict[str, Any]) -> None:
        json.dumps(msg, ensure_ascii=False).encode()  # what the comm's packer does
        self.messages.append(msg)
        if self.arrived is not None:
            self.arrived.set()


class _Broken:
    """A transport that has gone away (a closed socket, a closed panel)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def send(self, msg: dict[str, Any]) -> None:
        self.calls += 1
        raise self.exc


def test_one_failing_send_drops_only_that_client_and_is_logged(caplog: Any) -> None:
    """Fault injection at the hub's transport: the engine and hub are real, two transports fail."""
    import asyncio
    import logging

    from vtkernel.engine import Engine, default_registry
    from vtkernel.kernel.hub import Hub
    from vtkernel.protocol import SetBpm

    engine = Engine(default_registry()).start()
    loop = asyncio.new_event_loop()
    try:
        hub = Hub(engine, loop)
        good, gone, unencodable = _Recorder(), _Broken(ConnectionError("closed")), _Broken(ValueError("cannot encode"))
        with caplog.at_level(logging.INFO, logger="vtkernel"):
            clients = [hub.add_client(s, {"shell": name}) for s, name in ((gone, "gone"), (unencodable, "bad"), (good, "good"))]
            outcome = engine.call(SetBpm(bpm=133))

            async def settle() -> None:
                good.arrived = asyncio.Event()
                while not any(m["type"] == "delta" and m["version"] >= outcome.version for m in good.messages):
                    await good.arrived.wait()
                    good.arrived.clear()

            loop.run_until_complete(asyncio.wait_for(settle(), 5))
        assert clients[0].closed and not clients[2].closed
        assert not clients[1].closed  # an encoding failure is a bug, not this client's transport: keep it
        assert [m["type"] for m in good.messages[:2]] == ["snapshot", "schema"]
        assert hub.stats["send_errors"] >= 2
        text = caplog.text
        assert "dropped client" in text and "gone" in text and "could not encode" in text and "Traceback" in text
        late = _Recorder()
        hub.add_client(late, {"shell": "late"})
        assert late.messages[0]["type"] == "snapshot" and late.messages[0]["state"]["clock"]["bpm"] == 133.0
    finally:
        hub.close()
        engine.stop()
        loop.close()


def test_names_and_ports_with_a_trailing_newline_are_rejected(kernel: Kernel) -> None:
    kernel.ok("vt.module('lfo', 'lfo'); vt.module('s', 'seq')")
    before = kernel.ok("%vt state")
    c = kernel.client()
    for command in (
        {"op": "add_module", "name": "lfo2\n", "type": "lfo"},
        {"op": "remove_module", "name": "lfo\n"},
        {"op": "set_param", "module": "lfo", "param": "rate\n", "value": 2},
        {"op": "connect", "src": "lfo.out", "dst": "s.division\n"},
        {"op": "connect", "src": "lfo.out\n", "dst": "s.division"},
    ):
        reply = c.call(command)
        assert reply["type"] == "error" and reply["error"]["code"] == "invalid_command", (command, reply)
    # The same rule in a session file the kernel opens (validate_document).
    bad = kernel.execute(
        "import json, tempfile, os\n"
        "from vtkernel.engine.apply import validate_document\n"
        "from vtkernel.engine import default_registry\n"
        "validate_document({'modules': {'x\\n': {'type': 'lfo', 'params': {}}}}, default_registry())"
    )
    assert bad["status"] == "error" and "bad module name" in str(bad["error"]), bad
    assert kernel.ok("%vt state") == before
    c.close()


def test_shell_names_and_origins_are_capped_so_outgoing_sizes_stay_bounded(kernel: Kernel) -> None:
    bystander = kernel.client(shell="bystander")
    prober = kernel.client(shell="prober")
    comm_id = "long-shell-comm"
    prober._send_raw("comm_open", {"comm_id": comm_id, "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": "x" * 900_000}})
    assert prober.wait_for(lambda: {"type": "comm_close"} in prober.others.get(comm_id, [])), prober.others
    error = prober.others[comm_id][0]
    assert error["type"] == "error" and error["error"]["code"] == "bad_message" and len(json.dumps(error)) < 300, error
    # The longest shell name accepted travels as the origin, and no origin is longer than that.
    ok = kernel.client(shell="y" * 64)
    reply = ok.call({"op": "set_bpm", "bpm": 101})
    assert bystander.wait_for(lambda: bystander.version >= reply["version"])
    assert bystander.of_type("delta")[-1]["origin"] == "y" * 64
    # Origins from elsewhere (a watched file's name) are capped as well.
    kernel.ok("from vtkernel.api import VT\nw = VT(vt._engine, origin='file:' + 'z' * 300)\nw.bpm(102)\nw.flush()")
    final = json.loads(kernel.ok("%vt state"))["version"]
    assert bystander.wait_for(lambda: bystander.version >= final)
    assert all(len(m["origin"]) <= 64 for m in bystander.of_type("delta"))
    for c in (ok, prober, bystander):
        c.close()


@pytest.fixture
def logged_kernel(jupyter_path: str, tmp_path: Path) -> Iterator[tuple[Kernel, Path]]:
    """A kernel whose process stderr (the kernel log) goes to a file the test reads."""
    log_path = tmp_path / "kernel.log"
    with open(log_path, "w") as log_file:
        k = start_kernel(stderr=log_file)
        try:
            yield k, log_path
        finally:
            stop_kernel(k)


def iopub_stderr(c: VTClient) -> str:
    return "".join(c.stderr)


def test_deep_nesting_and_huge_integers_get_bad_message_without_a_traceback(logged_kernel: tuple[Kernel, Path]) -> None:
    kernel, log_path = logged_kernel
    kernel.ok("vt.module('l', 'lfo')")
    before = kernel.ok("%vt state")
    c = kernel.client(shell="attacker")
    head = b'{"comm_id": "' + c.comm_id.encode() + b'", "data": {"type": "command", "id": '
    attacks = {
        "deep": head + b'"deep", "command": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        "digits": head + b'"digits", "command": {"op": "set_param", "module": "l", "param": "rate", "value": ' + b"7" * 5001 + b"}}}",
        "unbalanced": head + b'"unbalanced", "command": [[[}}',
        "not-json": head + b'"not-json", "command": {"op" "set_bpm"}}}',
    }
    for msg_id, content in attacks.items():
        send_frames(c, "comm_msg", content)
        reply = c.reply(msg_id)
        assert reply["type"] == "error" and reply["error"]["code"] == "bad_message", reply
        assert "\n" not in reply["error"]["message"]
    # No message id to recover: the error has id null. No comm to answer on: one line in the log.
    send_frames(c, "comm_msg", b'{"comm_id": "' + c.comm_id.encode() + b'", "data": ' + b"{" * 20_000 + b"}" * 20_000 + b"}")
    assert c.wait_for(lambda: any(m["type"] == "error" and m["id"] is None and "unread" in m["error"]["message"] for m in c.messages))
    send_frames(c, "comm_open", b'{"comm_id": "x", "target_name": "vtkernel.state", "data": ' + b"[" * 20_000 + b"]" * 20_000 + b"}")
    assert c.call({"op": "set_bpm", "bpm": 121})["type"] == "ack"
    assert kernel.ok("%vt state") != before  # only the bpm changed
    assert json.loads(kernel.ok("%vt state"))["modules"] == json.loads(before)["modules"]
    c.close()
    kernel.ok("print('sync')")
    log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "refused a comm_open message unread: nested deeper than 100 levels" in log, log[-3000:]
    assert "Traceback" not in iopub_stderr(c)


# ----- internal errors (issue 12 #3, #4): a bug says so, in its own code, with its traceback logged


INJECT_ENGINE_BUG = """
import vtkernel.engine.engine as _E
_orig_apply = _E.apply
def _faulty(edit, command, *args):
    if getattr(command, "op", None) == "set_bpm" and command.bpm == 66:
        raise ZeroDivisionError("injected")
    return _orig_apply(edit, command, *args)
_E.apply = _faulty
"""


def test_bugs_are_internal_error_with_their_traceback_in_the_kernel_log_only(logged_kernel: tuple[Kernel, Path]) -> None:
    kernel, log_path = logged_kernel
    c = kernel.client(shell="victim")
    kernel.ok(INJECT_ENGINE_BUG)
    engine_bug = c.call({"op": "set_bpm", "bpm": 66})
    kernel.ok("get_ipython().kernel.hub.script_text = lambda snap: 1 / 0")
    c.send({"type": "get_script", "id": "script"})
    hub_bug = c.reply("script")
    kernel.ok("get_ipython().kernel.services.fns['script'] = lambda *a: {}['missing']")
    verb_bug = c.reply(c.text("script"))
    for reply, what in ((engine_bug, "ZeroDivisionError: injected"), (hub_bug, "ZeroDivisionError"), (verb_bug, "KeyError")):
        assert reply["type"] == "error" and reply["error"]["code"] == "internal_error", reply
        assert what in reply["error"]["message"] and "\n" not in reply["error"]["message"], reply
    assert c.call({"op": "set_bpm", "bpm": 67})["type"] == "ack"  # the kernel carries on
    kernel.ok("print('sync')")
    log = log_path.read_text()
    assert log.count("Traceback") >= 3, log[-3000:]
    assert "internal error applying SetBpm" in log and "ZeroDivisionError: injected" in log
    assert "Traceback" not in iopub_stderr(c)  # not in any cell's output
    c.close()


class _Telemetry:
    """Stopped transport: the same frame every tick."""

    def __call__(self) -> dict[str, Any]:
        return {"beat": 0.0, "playing": False, "values": {}}


def test_telemetry_reaches_every_subscriber_even_when_the_budget_was_spent() -> None:
    """`_telemetry_seen` used to be marked before the budget check: a skipped client never got the frame."""
    import asyncio

    from vtkernel.engine import Engine, default_registry
    from vtkernel.kernel.hub import BUDGET_BURST, Hub

    engine = Engine(default_registry()).start()
    loop = asyncio.new_event_loop()
    try:
        hub = Hub(engine, loop, telemetry=_Telemetry(), iopub_budget=100.0)
        # Enough subscribers that their snapshots and schemas spend the whole burst.
        recorders = [_Recorder() for _ in range(int(BUDGET_BURST))]
        for r in recorders:
            hub.add_client(r, {"shell": "t", "telemetry": True})

        async def all_have_telemetry() -> None:
            for r in recorders:
                r.arrived = asyncio.Event()
            while not all(any(m["type"] == "telemetry" for m in r.messages) for r in recorders):
                waiting = [r for r in recorders if not any(m["type"] == "telemetry" for m in r.messages)]
                await waiting[0].arrived.wait()
                waiting[0].arrived.clear()

        loop.run_until_complete(asyncio.wait_for(all_have_telemetry(), 10))
    finally:
        hub.close()
        engine.stop()
        loop.close()


# ----- fuzz: no traceback anywhere, whatever a client sends (issue 13) -----------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(max_size=12) | st.sampled_from([SURROGATE, "\ud800", "a\udc80b", "lfo\n", "x" * 70, ""])
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=10)
_commands = st.fixed_dictionaries(
    {"op": st.sampled_from(["add_module", "set_param", "connect", "batch", "set_bpm", "remove_module", "bogus"])},
    optional={k: _values for k in ("name", "type", "module", "param", "value", "src", "dst", "bpm", "commands", "params")},
)
_datas = st.one_of(
    _values,
    st.fixed_dictionaries({"type": st.sampled_from(["command", "text", "resync", "get_script", "script_view", "run_script", "bogus"])}, optional={"id": _values, "command": _values, "text": _values, "on": _values}),
    st.fixed_dictionaries({"type": st.just("command"), "id": st.integers() | _text, "command": _commands}),
)


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


_raw_tails = st.one_of(
    st.integers(1, 20_000).map(_nest),
    st.integers(1, 6000).map(lambda n: b"9" * n),
    st.binary(max_size=40),
    st.sampled_from([b"{", b'{"a" 1}', b"[[[}}", b"nul", b'"\\ud800"', b"1e999999", b"-" * 5]),
)


@st.composite
def _raw_frames(draw: Any, comm_id: str) -> tuple[str, bytes]:
    """A whole content frame: valid JSON of a hostile shape, or bytes that are not JSON at all."""
    if draw(st.booleans()):
        data = draw(_datas)
        if isinstance(data, dict) and isinstance(data.get("command"), dict):
            data["command"]["zz_unknown_field"] = 1  # never a valid command: nothing may change
        return "comm_msg", ascii_json({"comm_id": comm_id, "data": data})
    kind = draw(st.sampled_from(["comm_msg", "comm_msg", "comm_open", "comm_close", "execute_request"]))
    if kind != "comm_msg":  # a well-formed comm_close of our own comm would end the test's subscription
        comm_id = "fuzz-other"
    head = b'{"comm_id": "' + comm_id.encode() + b'", "target_name": "vtkernel.state", "data": {"type": "command", "id": "raw", "command": '
    return kind, head + draw(_raw_tails) + draw(st.sampled_from([b"}}", b"}", b""]))


def test_hostile_input_fuzz_never_writes_a_traceback_and_changes_nothing(logged_kernel: tuple[Kernel, Path]) -> None:
    kernel, log_path = logged_kernel
    kernel.ok("vt.module('fz', 'lfo'); vt.module('o', 'osc_out')")
    before = kernel.ok("%vt state")
    c = kernel.client(shell="fuzz")
    sent = [0]

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_raw_frames(c.comm_id))
    def attack(frame: tuple[str, bytes]) -> None:
        send_frames(c, frame[0], frame[1])
        sent[0] += 1

    attack()
    assert c.reply(c.text("get fz.rate", msg_id="marker"), timeout=60)["type"] == "ack"
    replies = [m for m in c.messages if m["type"] in ("ack", "error")]
    assert all(m["type"] == "error" for m in replies[:-1]), [m for m in replies if m["type"] == "ack"][:3]
    assert all(set(m["error"]) == {"code", "message"} and "\n" not in m["error"]["message"] for m in replies[:-1])
    assert kernel.ok("%vt state") == before
    kernel.ok("print('sync')")
    assert "Traceback" not in iopub_stderr(c)
    log = log_path.read_text()
    assert "Traceback" not in log, log[-4000:]
    c.close()


def test_a_session_file_holding_a_lone_surrogate_is_invalid() -> None:
    """The other door into the document: a session file may escape `\\udfff` in valid JSON."""
    from vtkernel.engine import default_registry
    from vtkernel.protocol import VTError
    from vtkernel.session.format import FORMAT_TAG, FORMAT_VERSION, canonical, checksum_of, decode

    payload: dict[str, Any] = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "version": 3,
        "saved_at": 1.0,
        "document": {"modules": {"o": {"type": "osc_out", "params": {"host": "x" + SURROGATE}}}, "connections": []},
    }
    payload["checksum"] = checksum_of(payload)
    with pytest.raises(VTError) as err:
        decode(canonical(payload), default_registry())
    assert err.value.code == "session_invalid" and "surrogate" in err.value.message


def test_commands_sent_right_after_comm_open_are_all_acked(kernel: Kernel) -> None:
    """A frontend need not wait for the snapshot: messages that reach the kernel before the comm
    exists must still go to the hub (they used to go to the main shell and be dropped as 'No such comm')."""
    kernel.ok("vt.module('l', 'lfo')")
    probe = kernel.client(shell="probe")  # a connection whose reader is running
    for attempt in range(5):
        comm_id = f"eager-{attempt}"
        probe._send_raw("comm_open", {"comm_id": comm_id, "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": "eager"}})
        for i in range(20):
            probe._send_raw("comm_msg", {"comm_id": comm_id, "data": {"type": "command", "id": i, "command": {"op": "set_param", "module": "l", "param": "rate", "value": 1 + i}}})

        def answered(comm_id: str = comm_id) -> bool:
            return {m.get("id") for m in probe.others.get(comm_id, []) if m.get("type") in ("ack", "error")} >= set(range(20))

        assert probe.wait_for(answered, 10), f"attempt {attempt}: {len([m for m in probe.others.get(comm_id, []) if m.get('type') == 'ack'])} of 20 acked"
    probe.close()


def test_a_hostile_frame_with_a_bad_signature_is_dropped_with_one_log_line(logged_kernel: tuple[Kernel, Path]) -> None:
    kernel, log_path = logged_kernel
    c = kernel.client()
    s = c.kc.session
    msg = s.msg("comm_msg", {})
    parts = [s.pack(msg["header"]), s.pack(msg["parent_header"]), s.pack(msg["metadata"]), b"[" * 50_000 + b"]" * 50_000]
    with c.send_lock:
        c.kc.shell_channel.socket.send_multipart([b"<IDS|MSG>", b"0" * 64, *parts])
    assert c.call({"op": "set_bpm", "bpm": 99})["type"] == "ack"
    kernel.ok("print('sync')")
    log = log_path.read_text()
    assert "bad signature" in log and "Traceback" not in log, log[-2000:]
    c.close()
