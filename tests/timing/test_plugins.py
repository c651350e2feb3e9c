"""Module classes reach the scheduler: installed plugins by entry point, cell-defined classes by value."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import PLUGIN_TYPE, plugin_site
from tests.timing.conftest import Rig
from vtkernel.engine import Engine
from vtkernel.engine.schema import ENTRY_POINT_GROUP, ModuleType, ParamSpec, default_registry
from vtkernel.runtime import Runtime
from vtkernel.testing.osc import OscReceiver

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "vtkernel-example-plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory):
    """pip-install the example plugin into a private target dir on sys.path (the shared env stays clean)."""
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    if _can_build_wheels_offline():
        pip.append("--no-build-isolation")
    # else: pip fetches a wheel-capable setuptools into an isolated build env (needs the index)
    source = tmp_path_factory.mktemp("src") / PLUGIN.name
    shutil.copytree(PLUGIN, source)  # the build writes next to the sources: keep the repo clean
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("vtkernel_example_plugin")]:
            del sys.modules[name]


def _can_build_wheels_offline() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_an_installed_entry_point_plugin_is_discovered(installed_plugin: Path):
    registry = default_registry()
    assert "transpose" not in registry
    assert registry.load_entry_points() == []
    assert {"transpose", "ramp"} <= set(registry.names())
    assert registry.get("transpose").role() == "process"
    assert registry.get("ramp").schema_json()["params"]["beats"]["min_exclusive"] is True


def test_a_plugin_whose_import_hangs_is_left_out_said_and_registered_when_it_returns(tmp_path: Path):
    """A plugin's import runs its own code: one that blocks must not hold the caller past `wait`."""
    release = tmp_path / "release"
    os.mkfifo(release)  # opening it for reading blocks until the test opens it for writing: a real hang
    site = plugin_site(
        tmp_path / "site",
        {
            "vtp_broken": "raise RuntimeError('no licence server')\n",
            "vtp_hangs": f"open({str(release)!r}).read()\n" + PLUGIN_TYPE.format(name="slowtype"),
            "vtp_after": PLUGIN_TYPE.format(name="aftertype"),
        },
    )
    sys.path.insert(0, str(site))
    late: queue.Queue[tuple[str, bool]] = queue.Queue()
    try:
        names = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]  # other installed plugins come after ours
        after = names[names.index("vtp_hangs") + 1 :]
        registry = default_registry()
        problems = registry.load_entry_points(wait=1.0, late=lambda line, error: late.put((line, error)))
        assert problems == [
            "module plugin 'vtp_broken' (vtp_broken:Type) failed to load: RuntimeError: no licence server",
            "module plugin 'vtp_hangs' (vtp_hangs:Type) is still importing after 1 s: the kernel started without it"
            f" and the {len(after)} plugin{'s' if len(after) > 1 else ''} after it, and registers them as their imports return",
        ]
        assert "slowtype" not in registry and "aftertype" not in registry and late.empty()
        with open(release, "w"):  # the hung import returns
            pass
        lines = [late.get(timeout=30) for _ in range(1 + len(after))]
        assert [line.split("'")[1] for line, _ in lines] == ["vtp_hangs", *after]
        ready = r"module plugin '{}' \({}:Type\) finished importing after \d+\.\d s: type '{}' is ready"
        assert re.fullmatch(ready.format("vtp_hangs", "vtp_hangs", "slowtype"), lines[0][0]), lines[0]
        assert re.fullmatch(ready.format("vtp_after", "vtp_after", "aftertype"), lines[1][0]), lines[1]
        assert not any(error for _, error in lines)
        assert {"slowtype", "aftertype"} <= set(registry.names())
    finally:
        sys.path.remove(str(site))
        for name in ("vtp_broken", "vtp_hangs", "vtp_after"):
            sys.modules.pop(name, None)


def test_without_a_wait_plugins_load_in_the_callers_thread_and_a_broken_one_is_one_line(tmp_path: Path):
    site = plugin_site(tmp_path / "site", {"vtp_exits": "raise SystemExit(3)\n", "vtp_fine": PLUGIN_TYPE.format(name="finetype")})
    sys.path.insert(0, str(site))
    try:
        registry = default_registry()
        assert registry.load_entry_points() == ["module plugin 'vtp_exits' (vtp_exits:Type) failed to load: SystemExit: 3"]
        assert "finetype" in registry
    finally:
        sys.path.remove(str(site))
        for name in ("vtp_exits", "vtp_fine"):
            sys.modules.pop(name, None)


def test_a_plugin_type_plays_in_the_scheduler_process(installed_plugin: Path):
    registry = default_registry()
    registry.load_entry_points()
    engine = Engine(registry).start()
    rx = OscReceiver().start()
    runtime = Runtime(engine).start()
    try:
        rig = Rig(engine, runtime, rx)
        rig.do(
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [60, 62]}},
            {"op": "add_module", "name": "t", "type": "transpose", "params": {"semitones": 7}},
            {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": rx.port}},
            {"op": "connect", "src": "s.out", "dst": "t.in"},
            {"op": "connect", "src": "t.out", "dst": "o.in"},
            {"op": "play"},
        )
        got = rx.wait_for(4)
        assert [r.args[0] for r in got[:4]] == [67, 69, 67, 69]
        assert runtime.reports() == []
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()


def make_octave(direction: int) -> type[ModuleType]:
    """A class as a user would write it in a notebook cell (not importable by the scheduler)."""

    class Octave(ModuleType):
        type_name = "octave"
        doc = "moves events by `by` semitones"
        params = {"by": ParamSpec("int", 12, "semitones", min=-48, max=48)}
        inputs = ("in",)
        outputs = ("out",)

        def process(self, p, beat, value):
            return value + direction * p["by"]

    Octave.__module__ = "__main__"
    return Octave


def test_a_cell_defined_class_reaches_the_scheduler_and_redefining_it_hot_swaps(rig: Rig):
    rig.engine.registry.register(make_octave(+1))
    rig.do(
        {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [60]}},
        {"op": "add_module", "name": "x", "type": "octave", "params": {"by": 5}},
        {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": rig.rx.port}},
        {"op": "connect", "src": "s.out", "dst": "x.in"},
        {"op": "connect", "src": "x.out", "dst": "o.in"},
        {"op": "play"},
    )
    assert [r.args[0] for r in rig.rx.wait_for(2)[:2]] == [65, 65]
    rig.engine.registry.register(make_octave(-1))  # the user edits the class and runs the cell again
    deadline = time.monotonic() + 5
    while not any(r.args[0] == 55 for r in rig.rx.received) and time.monotonic() < deadline:
        time.sleep(0.01)
    values = [r.args[0] for r in rig.rx.received]
    switch = values.index(55)
    assert set(values[:switch]) == {65} and set(values[switch:]) == {55}  # swapped between ticks, `by` kept
    assert rig.engine.snapshot["modules"]["x"]["params"]["by"] == 5
    assert rig.runtime.reports() == []


def test_a_class_the_scheduler_cannot_receive_is_refused_with_one_clear_line(rig: Rig):
    lock = threading.Lock()

    class Locked(ModuleType):
        type_name = "locked"
        outputs = ("out",)

        def signal(self, p, beat, seconds):
            with lock:
                return 0.0

    with pytest.raises(TypeError, match="cannot be sent to the scheduler process") as info:
        rig.engine.registry.register(Locked)
    assert "\n" not in str(info.value)
    assert "locked" not in rig.engine.registry
