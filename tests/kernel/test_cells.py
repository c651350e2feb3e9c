"""Cells, `vt` and `%vt` on a real kernel (SPEC §2, §4)."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from tests.conftest import Kernel


def test_the_kernelspec_is_named_vtkernel_and_speaks_python(jupyter_path: str) -> None:
    spec = KernelSpecManager().get_kernel_spec("vtkernel")
    assert spec.language == "python"
    assert spec.argv[1:] == ["-m", "vtkernel", "-f", "{connection_file}"]


def test_vt_is_merged_into_the_namespace_and_never_clobbers_the_users(kernel: Kernel) -> None:
    assert kernel.ok("print(type(vt).__name__, 'np' not in dir())").strip() == "VT True"
    kernel.ok("vt = 'mine'")
    kernel.ok("x = 1")
    assert kernel.ok("print(vt)").strip() == "mine"
    assert kernel.ok("%vt add l lfo\n") == ""  # the magic still reaches the engine


def test_read_your_writes_at_the_end_of_a_cell(kernel: Kernel) -> None:
    kernel.ok("for i in range(500):\n    vt.module(f'm{i}', 'lfo', rate=1 + i % 7)")
    assert kernel.ok("print(len(vt.snapshot()['modules']))").strip() == "500"


def test_declarations_are_idempotent(kernel: Kernel) -> None:
    cell = "vt.module('lfo1', 'lfo', rate=2)\nvt.module('lfo2', 'lfo', shape='saw')\nvt.connect('lfo1.out', 'lfo2.rate')"
    kernel.ok(cell)
    v = json.loads(kernel.ok("%vt state"))["version"]
    kernel.ok(cell)
    assert json.loads(kernel.ok("%vt state"))["version"] == v


def test_magic_get_state_undo_redo(kernel: Kernel) -> None:
    kernel.ok("%vt add lfo1 lfo rate=2")
    kernel.ok("%vt set lfo1.rate 3.5")
    assert kernel.ok("%vt get lfo1.rate").strip() == "3.5"
    kernel.ok("%vt undo")
    assert kernel.ok("%vt get lfo1.rate").strip() == "2.0"
    kernel.ok("%vt redo")
    assert kernel.ok("%vt get lfo1.rate").strip() == "3.5"
    state = json.loads(kernel.ok("%vt state"))
    assert state["modules"]["lfo1"]["params"] == {"rate": 3.5, "depth": 1.0, "shape": "sine"}


def test_an_error_is_one_line_without_traceback_and_fails_the_cell(kernel: Kernel) -> None:
    kernel.ok("%vt add lfo1 lfo")
    for line in ("%vt set lfo1.rate -1", "%vt frobnicate", "vt.set('lfo1.rate', -1)"):
        result = kernel.execute(line)
        assert result["status"] == "error", result
        tb = result["error"]["traceback"]
        assert len(tb) == 1 and "Traceback" not in tb[0], tb
    assert "invalid_value" in kernel.execute("%vt set lfo1.rate -1")["error"]["traceback"][0]


def test_cell_batch_is_atomic(kernel: Kernel) -> None:
    kernel.ok("%%vt\nadd a lfo\nadd b seq steps=[60,null,62]\nconnect a.out b.division")
    state = json.loads(kernel.ok("%vt state"))
    assert set(state["modules"]) == {"a", "b"}
    failed = kernel.execute("%%vt\nset a.rate 9\nset b.division 0")
    assert failed["status"] == "error"
    assert kernel.ok("%vt get a.rate").strip() == "1.0"


def test_session_and_live_verbs_answer_clearly_until_available(kernel: Kernel, tmp_path: Path) -> None:
    """In the kernel every session and live verb is served: it works, or says why in one line with a
    stable code (`vt` without a kernel says "not available": tests/engine/test_language.py)."""
    session, script = tmp_path / "s.vtsession", tmp_path / "live.py"
    script.write_text("vt.module('w', 'lfo')\n")
    expected = [
        ("%vt save", "error", "[invalid_command] no session is open"),
        (f"%vt open {session}", "ok", "created"),
        ("%vt save", "ok", "saved"),
        (f"%vt load {tmp_path / 'missing.vtsession'}", "error", "[io_error]"),
        ("%vt close", "ok", "closed"),
        (f"%vt watch {script}", "ok", "watching"),
        (f"%vt unwatch {script}", "ok", "stopped watching"),
        (f"%vt unwatch {script}", "error", "[invalid_value] not watching"),
    ]
    for line, status, needle in expected:
        result = kernel.execute(line)
        said = result["stdout"] if result["status"] == "ok" else "\n".join(result["error"]["traceback"])
        assert result["status"] == status and needle in said and said.strip().count("\n") == 0, (line, said)
    assert "w" in json.loads(kernel.ok("%vt state"))["modules"]  # the watch ran the file
    assert session.exists()


def test_a_module_type_defined_in_a_cell_is_registered_and_reaches_every_shell(kernel: Kernel) -> None:
    c = kernel.client()
    kernel.ok(
        "from vtkernel.engine.schema import ModuleType, ParamSpec\n"
        "@vt.register\n"
        "class Gain(ModuleType):\n"
        "    type_name = 'gain'\n"
        "    doc = 'multiplies events'\n"
        "    params = {'amount': ParamSpec('float', 1.0, 'factor', min=0.0, max=4.0)}\n"
        "    inputs = ('in',)\n"
        "    outputs = ('out',)\n"
        "    def process(self, p, beat, value):\n"
        "        return value * p['amount']\n"
        "vt.module('g', 'gain', amount=2.0)"
    )
    assert json.loads(kernel.ok("%vt state"))["modules"]["g"] == {"type": "gain", "params": {"amount": 2.0}}
    assert c.wait_for(lambda: any("gain" in m.get("types", {}) for m in c.of_type("schema")))
    assert kernel.execute("vt.set('g.amount', 9)")["status"] == "error"  # its schema validates
    c.close()
