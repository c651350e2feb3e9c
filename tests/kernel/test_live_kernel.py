"""Watched files and the code shell on a real kernel (SPEC §6, `script`/`get_script` of §5)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Kernel

PATCH = """\
vt.module("lfo1", "lfo", rate=2.0)
vt.module("lfo2", "lfo", rate=0.5, shape="saw")
vt.connect("lfo1.out", "lfo2.rate")
"""


def state(kernel: Kernel) -> dict:
    return json.loads(kernel.ok("%vt state"))


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_watch_runs_the_file_and_applies_each_save(kernel: Kernel, tmp_path: Path) -> None:
    patch = tmp_path / "patch.py"
    patch.write_text(PATCH)
    out = kernel.ok(f"%vt watch {patch}")
    assert "watching" in out
    assert state(kernel)["modules"]["lfo1"]["params"]["rate"] == 2.0
    kernel.ok("%vt add cellmade lfo")
    atomic_write(patch, PATCH.replace("rate=2.0", "rate=3.0").replace('vt.connect("lfo1.out", "lfo2.rate")\n', ""))
    assert "applied" in kernel.ok("print(vt.sync(5))")
    doc = state(kernel)
    assert doc["modules"]["lfo1"]["params"]["rate"] == 3.0
    assert doc["connections"] == []  # no longer declared: removed
    assert "cellmade" in doc["modules"]  # made elsewhere: left alone


def test_an_error_in_the_file_names_its_line_and_keeps_the_last_good_state(kernel: Kernel, tmp_path: Path) -> None:
    patch = tmp_path / "patch.py"
    patch.write_text(PATCH)
    kernel.ok(f"vt.watch({str(patch)!r})")
    before = state(kernel)
    patch.write_text(PATCH + "vt.module('bad', 'lfo', rate=-1)\n")
    result = kernel.execute("print(vt.sync(5))")
    assert "line 4" in result["stderr"] and "invalid_value" in result["stderr"], result
    assert state(kernel) == before
    patch.write_text(PATCH + "x = (\n")
    result = kernel.execute("print(vt.sync(5))")
    assert "line 4" in result["stderr"] and "SyntaxError" in result["stderr"], result
    assert state(kernel) == before


def test_a_save_during_a_long_cell_applies_when_the_cell_ends(kernel: Kernel, tmp_path: Path) -> None:
    patch = tmp_path / "patch.py"
    patch.write_text(PATCH)
    kernel.ok(f"vt.watch({str(patch)!r})")
    c = kernel.client()
    kernel.kc.execute(f"import time, pathlib\npathlib.Path({str(patch)!r}).write_text({PATCH.replace('2.0', '4.0')!r})\ntime.sleep(1.5)")
    # Applied on the kernel's main thread after the cell, never concurrently with it.
    assert c.wait_for(lambda: c.mirror["modules"]["lfo1"]["params"]["rate"] == 4.0, 10)
    c.close()


def test_get_script_returns_the_canonical_script_that_rebuilds_the_document(kernel: Kernel) -> None:
    kernel.ok("vt.module('a', 'lfo', rate=3); vt.module('s', 'seq', steps=[60, None]); vt.connect('a.out', 's.division'); vt.bpm(90)")
    c = kernel.client()
    c.send({"type": "get_script"})
    assert c.wait_for(lambda: bool(c.of_type("script")))
    script = c.of_type("script")[0]
    assert script["version"] == c.version
    fresh_doc = state(kernel)
    kernel.ok("%vt rm a\n")
    kernel.ok("%vt rm s\n")
    kernel.ok(script["text"])
    rebuilt = state(kernel)
    assert {k: rebuilt[k] for k in ("modules", "connections", "clock")} == {k: fresh_doc[k] for k in ("modules", "connections", "clock")}
    c.close()


def test_view_mode_follows_changes_and_edit_mode_applies_incrementally(kernel: Kernel) -> None:
    kernel.ok("vt.module('a', 'lfo', rate=3); vt.module('b', 'lfo')")
    c = kernel.client(shell="code", script=True)
    assert c.wait_for(lambda: bool(c.of_type("script")))
    kernel.ok("vt.set('a.rate', 5)")  # VIEW: the script follows every change
    assert c.wait_for(lambda: "rate=5.0" in c.of_type("script")[-1]["text"])
    edited = c.of_type("script")[-1]["text"].replace("rate=5.0", "rate=6.0")
    edited = "\n".join(line for line in edited.splitlines() if "'b'" not in line and '"b"' not in line)
    c.send({"type": "run_script", "id": "apply-1", "text": edited})
    reply = c.reply("apply-1")
    assert reply["type"] == "ack", reply
    doc = state(kernel)
    assert doc["modules"]["a"]["params"]["rate"] == 6.0
    assert "b" not in doc["modules"]  # the line the user deleted removed its module
    c.close()

