"""Problems are reported once per module and per edit, never silently (issue 12 item 2).

Before: `SchedulerOutputs` remembered every `(module, key)` it had reported
for the life of the scheduler, so a module that failed, was fixed, and
failed again after the next edit said nothing the second time; the same for
"nothing listens on host:port". The renderer now makes the outputs forget a
module's reports when its params, its type or its class change.
"""

from __future__ import annotations

import time
from typing import Any

from tests.timing.conftest import free_udp_port
from vtkernel.engine.schema import BUILTIN_TYPES, Event, ModuleType, Outputs, Params, ParamSpec
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.outputs import SchedulerOutputs
from vtkernel.engine.timing.render import Renderer


class Fragile(ModuleType):
    type_name = "fragile"
    params = {"limit": ParamSpec("float", 0.0, "events above this raise")}
    inputs = ("in",)

    def emit(self, p: Params, event: Event, out: Outputs) -> None:
        if float(event.value) > p["limit"]:
            raise ValueError(f"{event.value} is above {p['limit']}")


def live(modules: dict[str, tuple[str, dict[str, Any]]], connections: list[tuple[str, str]]) -> tuple[Renderer, SchedulerOutputs, float]:
    wall = WallClock.now()
    out = SchedulerOutputs(wall)
    types = {cls.type_name: cls for cls in (*BUILTIN_TYPES, Fragile)}
    r = Renderer(types, out, lookahead=0.05, wall=wall)
    now = time.monotonic()
    r.reset(
        {
            "clock": {"bpm": 240.0, "playing": True, "meter": 4},
            "modules": {name: {"type": t, "params": p} for name, (t, p) in modules.items()},
            "connections": [{"src": s, "dst": d} for s, d in connections],
        },
        1,
        now,
    )
    return r, out, now


def set_param(r: Renderer, module: str, param: str, value: Any, version: int, now: float) -> None:
    r.apply([({"op": "replace", "path": f"/modules/{module}/params/{param}", "value": value}, None)], version, now)


def test_a_module_that_fails_again_after_an_edit_is_reported_again():
    r, out, t = live({"s": ("seq", {"steps": [1, 2, 3, 4]}), "f": ("fragile", {"limit": 0.0})}, [("s.out", "f.in")])
    try:
        r.advance(t + 0.2)
        assert [line for line in out.reports if "raised ValueError" in line] == [
            "f: emit() raised ValueError: 1 is above 0.0; the module is muted until it is edited"
        ]
        assert "f" in r.muted
        out.reports.clear()
        set_param(r, "f", "limit", 2.0, 2, t + 0.2)  # the user "fixes" it: still fails at 3
        assert "f" not in r.muted
        r.advance(t + 0.6)
        assert [line for line in out.reports if "raised ValueError" in line] == [
            "f: emit() raised ValueError: 3 is above 2.0; the module is muted until it is edited"
        ]
        out.reports.clear()
        r.advance(t + 1.0)  # muted: no new line until the next edit
        assert out.reports == []
    finally:
        out.close()


def test_a_hot_swapped_class_that_still_fails_is_reported_again():
    r, out, t = live({"s": ("seq", {"steps": [1]}), "f": ("fragile", {"limit": 0.0})}, [("s.out", "f.in")])
    try:
        r.advance(t + 0.2)
        assert sum("raised" in line for line in out.reports) == 1
        out.reports.clear()

        class Fragile2(Fragile):
            type_name = "fragile"

            def emit(self, p: Params, event: Event, out: Outputs) -> None:
                raise RuntimeError("still broken")

        r.set_type(Fragile2)
        r.advance(t + 0.4)
        assert [line for line in out.reports if "raised" in line] == [
            "f: emit() raised RuntimeError: still broken; the module is muted until it is edited"
        ]
    finally:
        out.close()


def refused_reports(out: SchedulerOutputs) -> list[str]:
    return [line for line in out.reports if "nothing listens" in line]


def render_until_refused(r: Renderer, out: SchedulerOutputs, t: float, seconds: float = 3.0) -> float:
    """Render (and send) until a send is refused: Linux returns the ICMP error on a later send."""
    deadline = time.monotonic() + seconds
    while not refused_reports(out) and time.monotonic() < deadline:
        t += 0.05
        r.advance(t)
        time.sleep(0.002)  # the ICMP "port unreachable" has to come back between two sends
    return t


def test_nothing_listens_is_reported_again_after_the_output_is_edited():
    port = free_udp_port()  # nothing listens there
    r, out, t = live({"s": ("seq", {"steps": [60]}), "o": ("osc_out", {"port": port})}, [("s.out", "o.in")])
    try:
        t = render_until_refused(r, out, t)
        assert refused_reports(out) == [
            f"o: nothing listens on 127.0.0.1:{port} (connection refused); events are still sent, the clock keeps running"
        ]
        out.reports.clear()
        t = render_until_refused(r, out, t, seconds=0.5)
        assert refused_reports(out) == []  # once per edit, not once per event
        set_param(r, "o", "address", "/other", 2, t)  # an edit of that output (same receiver)
        t = render_until_refused(r, out, t)
        assert len(refused_reports(out)) == 1
    finally:
        out.close()


def test_editing_one_module_does_not_repeat_another_modules_report():
    port = free_udp_port()
    r, out, t = live(
        {"s": ("seq", {"steps": [60]}), "o": ("osc_out", {"port": port}), "f": ("fragile", {"limit": 0.0})},
        [("s.out", "o.in"), ("s.out", "f.in")],
    )
    try:
        t = render_until_refused(r, out, t)
        out.reports.clear()
        set_param(r, "f", "limit", 100.0, 2, t)
        t = render_until_refused(r, out, t, seconds=0.5)
        assert refused_reports(out) == []
    finally:
        out.close()
