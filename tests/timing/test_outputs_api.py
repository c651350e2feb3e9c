"""`vt.superdirt()`: one call declares the output and connects the patterns; calling it again changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.protocol import VTError


@pytest.fixture
def vt() -> Iterator[VT]:
    engine = Engine().start()
    try:
        yield VT(engine)
    finally:
        engine.stop()


def connections(vt: VT) -> list[tuple[str, str]]:
    return vt.snapshot().doc.sorted_connections()


def test_superdirt_declares_its_defaults_and_connects_every_pattern_whose_output_goes_nowhere(vt: VT):
    vt.module("drums", "pattern", pattern="bd*2 [~ sd]")
    vt.module("bass", "pattern", pattern="c2 eb2")
    vt.module("wired", "pattern", pattern="hh*4")
    vt.module("rec", "recorder")
    vt.connect("wired.out", "rec.in")
    vt.module("lfo1", "lfo")  # a control signal is not an event source
    assert vt.superdirt() == "superdirt"
    snap = vt.snapshot()
    assert snap.doc.modules["superdirt"].type == "superdirt"
    assert dict(snap.doc.modules["superdirt"].params) == {"host": "127.0.0.1", "port": 57120, "orbit": 0}
    assert connections(vt) == [("bass.out", "superdirt.in"), ("drums.out", "superdirt.in"), ("wired.out", "rec.in")]
    version = vt.version
    vt.superdirt()  # idempotent
    assert vt.version == version
    vt.module("keys", "pattern", pattern="c4 e4")
    vt.superdirt()  # a pattern declared since then is connected; nothing else changes
    assert ("keys.out", "superdirt.in") in connections(vt) and len(connections(vt)) == 4


def test_superdirt_with_params_and_explicit_sources(vt: VT):
    vt.module("a", "pattern", pattern="bd")
    vt.module("b", "pattern", pattern="sd")
    vt.superdirt("dirt2", connect="b", port=57121, orbit=2)
    assert connections(vt) == [("b.out", "dirt2.in")]
    assert vt.snapshot().doc.modules["dirt2"].params["orbit"] == 2
    with pytest.raises(VTError) as err:
        vt.superdirt("dirt3", orbit=-1)
    assert err.value.code == "invalid_value"
    assert "dirt3" not in vt.snapshot().doc.modules  # nothing half-applied
