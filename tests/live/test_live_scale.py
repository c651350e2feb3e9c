"""A save of a long watched file costs what changed (issue 14 #15), checked by counting work, not timing it.

The timing figures for 1k, 10k and 100k statements are in
`benchmarks/bench_live_scale.py` (docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live import analysis
from vtkernel.live.runner import LiveFile

N = 12_000  # more statements than the old global analysis cache held (8,192): it thrashed on every save


def long_file(n: int) -> list[str]:
    lines = ["base = 1"]
    for i in range(1, n):
        lines.append(f'vt.module("m{i}", "lfo", rate={1 + i % 50}.0)' if i % 2 else f"y{i} = base + {i}")
    return lines


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements whose text is analysed from scratch (symtable runs), in order."""
    seen: list[str] = []
    real = analysis._scopes_of

    def spy(source: str) -> analysis.Scopes:
        seen.append(source)
        return real(source)

    monkeypatch.setattr(analysis, "_scopes_of", spy)
    return seen


def test_a_two_line_edit_of_a_long_file_analyses_two_statements(tmp_path: Path, counted: list[str]) -> None:
    engine = Engine().start()
    try:
        lines = long_file(N)
        path = tmp_path / "big.py"
        live = LiveFile(str(path), VT(engine, origin="file"))
        assert live.run("\n".join(lines) + "\n").ok
        assert len(counted) == N
        counted.clear()
        lines[N // 2 + 1] = f'vt.module("m{N // 2 + 1}", "lfo", rate=9.5)'
        lines.append('vt.module("extra", "lfo")')
        result = live.run("\n".join(lines) + "\n")
        assert result.ok and result.ran == (N // 2 + 2, N + 1)
        assert len(counted) == 2, counted[:5]
        assert engine.snapshot["modules"][f"m{N // 2 + 1}"]["params"]["rate"] == 9.5
    finally:
        engine.stop()


def test_only_the_edited_middle_goes_through_the_sequence_matcher(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    real = analysis.difflib.SequenceMatcher

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, isjunk, a, b, autojunk=True):  # type: ignore[no-untyped-def]
            sizes.append((len(a), len(b)))
            super().__init__(isjunk, a, b, autojunk)

    monkeypatch.setattr(analysis.difflib, "SequenceMatcher", Spy)
    old = analysis.split_statements("\n".join(long_file(2000)) + "\n")
    lines = long_file(2000)
    lines[1000] = "y1000 = base + 7"
    new = analysis.split_statements("\n".join(lines) + "\n")
    steps = analysis.plan(old, new)
    assert sizes == [(1, 1)]
    assert steps.run == (1000,) and len(steps.matched) == 1999


def test_a_comment_only_edit_still_runs_nothing(tmp_path: Path) -> None:
    """The cheaper key (the unparsed statement) keeps the rule that comments and layout are not changes."""
    engine = Engine().start()
    try:
        live = LiveFile(str(tmp_path / "p.py"), VT(engine, origin="file"))
        assert live.run('vt.module("a", "lfo", rate=2)\nx = 1\n').ok
        result = live.run('vt.module( "a","lfo",  rate=2 )  # faster later\n\n\nx = (1)\n')
        assert result.ok and result.ran == ()
    finally:
        engine.stop()
