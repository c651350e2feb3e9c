"""`get_haps` through a real kernel: what a source module plays, for the GUI's pianoroll (docs/protocol.md)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from tests.conftest import VTClient

SVG = "{http://www.w3.org/2000/svg}"


def haps_msgs(client: VTClient, module: str, msg_id: Any = None) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == "haps" and m.get("module") == module and m.get("id") == msg_id]


def ask(client: VTClient, msg: dict[str, Any]) -> dict[str, Any]:
    """Send a get_haps and return its reply (a haps or an error with the same id)."""
    msg_id = f"h{len(client.messages)}-{msg.get('module')}"
    client.send({"type": "get_haps", "id": msg_id, **msg})
    found: list[dict[str, Any]] = []

    def answered() -> bool:
        found[:] = [m for m in client.messages if m.get("id") == msg_id and m.get("type") in ("haps", "error")]
        return bool(found)

    assert client.wait_for(answered, 10), f"no reply to {msg}"
    return found[0]


def test_get_haps_gives_what_a_pattern_plays_and_watch_pushes_each_change(client_factory: Callable[..., VTClient]) -> None:
    c = client_factory()
    assert c.call({"op": "add_module", "name": "drums", "type": "pattern", "params": {"pattern": "bd*2 [~ sd]"}})["type"] == "ack"
    assert c.call({"op": "add_module", "name": "lfo1", "type": "lfo"})["type"] == "ack"
    reply = ask(c, {"module": "drums", "cycles": [0, 2], "svg": True, "watch": True})
    assert reply["type"] == "haps", reply
    assert reply["version"] == c.version and reply["cycle_beats"] == 4.0 and reply["cycles"] == [0, 2]
    onsets = [(b, v) for b, _, v in reply["haps"]]
    assert onsets == [(0, "bd"), (0.25, "bd"), (0.75, "sd"), (1, "bd"), (1.25, "bd"), (1.75, "sd")]
    assert [e - b for b, e, _ in reply["haps"]] == [0.25] * 6
    root = ET.fromstring(reply["svg"])
    assert root.get("data-vt-cycles") == "0 2"
    labels = {"".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    assert {"bd", "sd"} <= labels

    # a change elsewhere does not re-send it; a change of the pattern does, with the new haps
    assert c.call({"op": "set_param", "module": "lfo1", "param": "rate", "value": 3})["type"] == "ack"
    ack = c.call({"op": "set_param", "module": "drums", "param": "pattern", "value": "hh*4"})
    assert c.wait_for(lambda: len(haps_msgs(c, "drums")) >= 1, 10)
    pushed = haps_msgs(c, "drums")
    assert len(pushed) == 1  # the lfo edit came first and pushed nothing
    assert pushed[0]["version"] == ack["version"]
    assert [v for _, _, v in pushed[0]["haps"]] == ["hh"] * 8 and "svg" in pushed[0]

    # the meter changes the cycle's length: pushed too
    ack = c.call({"op": "set_meter", "meter": 3})
    assert c.wait_for(lambda: len(haps_msgs(c, "drums")) >= 2, 10)
    assert haps_msgs(c, "drums")[-1]["cycle_beats"] == 3.0

    # watch false stops the updates
    assert ask(c, {"module": "drums", "cycles": [0, 1], "watch": False})["type"] == "haps"
    c.call({"op": "set_param", "module": "drums", "param": "pattern", "value": "bd"})
    ack = c.call({"op": "set_param", "module": "lfo1", "param": "rate", "value": 4})
    assert c.wait_version(ack["version"])
    assert len(haps_msgs(c, "drums")) == 2


def test_get_haps_of_a_seq_and_clear_errors(client_factory: Callable[..., VTClient]) -> None:
    c = client_factory()
    c.call({"op": "add_module", "name": "s1", "type": "seq", "params": {"steps": [60, None, 62, 64], "division": 4}})
    c.call({"op": "add_module", "name": "lfo1", "type": "lfo"})
    reply = ask(c, {"module": "s1", "cycles": [0, 0.25]})
    assert reply["type"] == "haps"
    assert reply["haps"] == [[0, 1 / 16, 60], [2 / 16, 3 / 16, 62], [3 / 16, 4 / 16, 64]]
    assert "svg" not in reply
    err = ask(c, {"module": "lfo1"})
    assert err["error"]["code"] == "invalid_command" and "plays no events" in err["error"]["message"]
    assert ask(c, {"module": "nope"})["error"]["code"] == "unknown_module"
    assert ask(c, {"module": "s1", "cycles": [0, 1000]})["error"]["code"] == "bad_message"
    assert ask(c, {"module": "s1", "cycles": [2, 1]})["error"]["code"] == "bad_message"


def test_a_watched_module_that_is_removed_stops_quietly(client_factory: Callable[..., VTClient]) -> None:
    c = client_factory()
    c.call({"op": "add_module", "name": "drums", "type": "pattern", "params": {"pattern": "bd"}})
    assert ask(c, {"module": "drums", "watch": True})["type"] == "haps"
    c.call({"op": "remove_module", "name": "drums"})
    ack = c.call({"op": "add_module", "name": "drums", "type": "lfo"})
    assert c.wait_version(ack["version"])
    assert haps_msgs(c, "drums") == [] and not [m for m in c.messages if m.get("type") == "error"]


def test_watched_haps_are_sent_at_most_five_times_a_second_and_the_last_change_always(
    client_factory: Callable[..., VTClient],
) -> None:
    c = client_factory()
    c.call({"op": "add_module", "name": "drums", "type": "pattern", "params": {"pattern": "bd"}})
    assert ask(c, {"module": "drums", "cycles": [0, 1], "svg": True, "watch": True})["type"] == "haps"
    start = time.monotonic()
    ids = [c.command({"op": "set_param", "module": "drums", "param": "cycle", "value": 1.0 + i / 10}) for i in range(40)]
    last = c.reply(ids[-1])
    assert c.wait_for(lambda: any(m["version"] == last["version"] for m in haps_msgs(c, "drums")), 10)
    elapsed = time.monotonic() - start
    pushed = haps_msgs(c, "drums")
    assert pushed[-1]["version"] == last["version"] and pushed[-1]["cycle_beats"] == 4.9
    assert len(pushed) <= 2 + elapsed / 0.2, (len(pushed), elapsed)  # not one per edit
