"""The scheduler's OSC encoder writes exactly the bytes python-osc's builder writes, and python-osc parses them."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from vtkernel.engine.timing import oscwire

scalars = st.one_of(
    st.text(max_size=20).filter(lambda s: "\0" not in s and s.encode("utf-8", "surrogatepass") == s.encode("utf-8", "ignore")),
    st.binary(min_size=1, max_size=20),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(width=32, allow_nan=False),
    st.none(),
    st.tuples(*[st.integers(0, 255)] * 4),
)
args_lists = st.lists(st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12), max_size=12)
addresses = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(lambda s: "/" + s)


def python_osc(address: str, args: list[Any]) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


@settings(max_examples=400, deadline=None)
@given(address=addresses, args=args_lists)
def test_same_bytes_as_python_osc(address: str, args: list[Any]):
    assert oscwire.message(address, args) == python_osc(address, args)


@settings(max_examples=100, deadline=None)
@given(timetag=st.integers(min_value=0, max_value=(1 << 64) - 1), args=args_lists)
def test_bundles_parse_back_with_their_timetag(timetag: int, args: list[Any]):
    data = oscwire.bundle(timetag, "/dirt/play", args)
    assert OscBundle.dgram_is_bundle(data)
    assert struct.unpack(">Q", data[8:16])[0] == timetag
    (msg,) = list(OscBundle(data))
    assert isinstance(msg, OscMessage) and msg.address == "/dirt/play"
    assert len(msg.params) == len(OscMessage(python_osc("/dirt/play", args)).params)


def test_a_dirt_play_message_round_trips():
    args = ["_id_", "drums", "cps", 0.5, "cycle", 1.25, "delta", 0.5, "n", 3.0, "orbit", 0, "s", "bd"]
    msg = OscMessage(oscwire.message("/dirt/play", args))
    assert msg.params == args


def test_an_empty_blob_is_sent_and_what_osc_cannot_carry_raises():
    assert OscMessage(oscwire.message("/b", [b""])).params == [b""]
    with pytest.raises(ValueError):
        oscwire.message("/x", [object()])
    with pytest.raises((OverflowError, struct.error)):
        oscwire.message("/x", [1 << 70])
