"""`benchmarks/run_all.py`: a failing benchmark fails the run and never hides the last good table.

It runs real child processes (two tiny benchmark scripts written here), as it
runs the real benchmarks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

RUN_ALL = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"

GOOD = "print('| figure | value |\\n|---|---|\\n| speed | 2.0x |')\n"
BAD = "import sys\nprint('half a table')\nsys.exit('bench_bad.py: the receiver never answered')\n"


@pytest.fixture
def run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all_under_test", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "bench_good.py").write_text(GOOD)
    (tmp_path / "bench_bad.py").write_text(BAD)
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "DOC", tmp_path / "benchmarks.md")
    monkeypatch.setattr(module, "SECTIONS", {"good": ("Good things", "bench_good.py"), "bad": ("Bad things", "bench_bad.py")})
    return module


def test_a_failed_benchmark_makes_the_run_fail_and_keeps_its_earlier_table(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    doc: Path = run_all.DOC
    doc.write_text(
        "# Benchmarks\n\n## Good things\n\nold good table\n\n## Bad things\n\nCommand: `x`\n\n| last good | 1.5x |\n\nhand note\n"
    )
    assert run_all.main([]) == 1
    text = doc.read_text()
    assert "| speed | 2.0x |" in text and "old good table" not in text  # the passing section is new
    bad = text[text.index("## Bad things") :]
    assert "failed** (bench_bad.py failed: bench_bad.py: the receiver never answered)" in bad
    assert "| last good | 1.5x |" in bad and "hand note" in bad  # the last good figures stay, flagged
    assert "half a table" not in bad  # a failed run's partial output is not taken for a table
    assert "run_all: bench_bad.py failed" in capsys.readouterr().err


def test_re_running_one_section_that_fails_leaves_the_others_alone(run_all: ModuleType) -> None:
    doc: Path = run_all.DOC
    doc.write_text("# Benchmarks\n\n## Good things\n\nold good table\n\n## Bad things\n\n| last good | 1.5x |\n")
    assert run_all.main(["bad"]) == 1
    text = doc.read_text()
    assert "old good table" in text and "| last good | 1.5x |" in text and "failed**" in text
    assert run_all.main(["good"]) == 0
    assert "| speed | 2.0x |" in doc.read_text()


def test_a_section_that_never_ran_before_says_it_failed(run_all: ModuleType) -> None:
    assert run_all.main(["bad"]) == 1
    assert "(no earlier run)" in run_all.DOC.read_text()

