"""The OSC test receiver (`vtkernel.testing.osc`): what it records and how a test waits for it."""

from __future__ import annotations

import threading

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient

from vtkernel.testing.osc import OscReceiver


def message(address: str, *args: object) -> OscMessageBuilder:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b


def test_wait_for_returns_once_the_messages_sent_from_another_thread_arrived() -> None:
    with OscReceiver() as rx:
        client = UDPClient(rx.host, rx.port)
        go = threading.Event()

        def send() -> None:
            go.wait(5)
            for i in range(3):
                client.send(message("/n", i).build())

        sender = threading.Thread(target=send)
        sender.start()
        assert rx.received == []
        go.set()  # the sends start only once we are about to wait
        got = rx.wait_for(3, timeout=10)
        sender.join(5)
    assert [(r.address, r.args, r.timetag) for r in got] == [("/n", (i,), None) for i in range(3)]


def test_a_bundle_is_recorded_with_its_raw_timetag_and_wait_until_takes_a_predicate() -> None:
    with OscReceiver() as rx:
        bundle = OscBundleBuilder(IMMEDIATELY)
        bundle.add_content(message("/a", 1.5).build())
        bundle.add_content(message("/b", "x").build())
        UDPClient(rx.host, rx.port).send(bundle.build())
        got = rx.wait_until(lambda rs: any(r.address == "/b" for r in rs), timeout=10)
    assert [(r.address, r.args, r.timetag) for r in got] == [("/a", (1.5,), 1), ("/b", ("x",), 1)]


def test_wait_for_gives_up_at_its_timeout_with_what_arrived_and_clear_forgets_it() -> None:
    with OscReceiver() as rx:
        UDPClient(rx.host, rx.port).send(message("/only").build())
        assert len(rx.wait_for(1, timeout=10)) == 1
        assert [r.address for r in rx.wait_for(2, timeout=0.05)] == ["/only"]
        rx.clear()
        assert rx.received == [] and rx.wait_for(1, timeout=0.01) == []
