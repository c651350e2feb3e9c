"""Watched files and the code shell on a real kernel (SPEC §6, `script`/`get_script` of §5)."""

from __future__ import annotations

import json
import os
import re
import time
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



def test_a_file_error_between_cells_reaches_every_client_and_the_next_cell(kernel: Kernel, tmp_path: Path) -> None:
    """Issue 12 #11: between cells a file's error went only to a widget, which console and papermill never show."""
    patch = tmp_path / "patch.py"
    patch.write_text(PATCH)
    kernel.ok(f"%vt watch {patch}")
    client = kernel.client(shell="terminal")
    patch.write_text(PATCH + "x = (\n")  # no cell runs: the save applies between cells
    assert client.wait_for(lambda: any(m.get("error") for m in client.of_type("report")), timeout=15)
    report = next(m for m in client.of_type("report") if m.get("error"))
    assert report["source"] == "file" and report["path"] == str(patch.resolve())
    assert "patch.py, line 4: SyntaxError" in report["text"]
    result = kernel.execute("1 + 1")
    assert "patch.py, line 4: SyntaxError" in result["stderr"], result
    assert "SyntaxError" not in kernel.execute("2 + 2")["stderr"]  # said once
    client.close()


def test_the_terminal_shell_prints_reports() -> None:
    import io

    from shells.terminal import TerminalShell

    out = io.StringIO()
    shell = TerminalShell(client=None, out=out, err=io.StringIO())
    shell.receive({"type": "report", "source": "file", "text": "patch.py, line 4: SyntaxError: '(' was never closed", "error": True})
    shell.receive({"type": "report", "source": "file", "text": "patch.py: applied v7, ran line 2", "error": False})
    assert out.getvalue().splitlines() == [
        "file: patch.py, line 4: SyntaxError: '(' was never closed",
        "patch.py: applied v7, ran line 2",
    ]


def test_a_watched_file_stuck_in_a_loop_is_stopped_by_the_interrupt_button(kernel: Kernel, tmp_path: Path) -> None:
    """Issue 14 #14: a watched file's run is not an execute request, and ipykernel ignores SIGINT between requests."""
    patch = tmp_path / "patch.py"
    marker = tmp_path / "looping"
    patch.write_text(PATCH)
    kernel.ok(f"%vt watch {patch}")
    before = state(kernel)
    client = kernel.client(shell="terminal")
    patch.write_text(PATCH + f"open({str(marker)!r}, 'w').close()\nwhile True:\n    pass\n")
    deadline = time.monotonic() + 20
    while not marker.exists():  # the loop has started on the main thread
        assert time.monotonic() < deadline, "the watched file never ran"
        time.sleep(0.01)
    kernel.km.interrupt_kernel()
    assert client.wait_for(lambda: any("interrupted" in m.get("text", "") for m in client.of_type("report")), 15)
    report = next(m for m in client.of_type("report") if "interrupted" in m.get("text", ""))
    # the marker exists as soon as line 4's open() has made it, so the interrupt may land there too
    assert report["error"] and re.search(r"patch.py, line [456]: interrupted", report["text"]) and "nothing applied" in report["text"]
    assert kernel.ok("print('cells run again')").strip() == "cells run again"
    assert state(kernel) == before
    client.close()
