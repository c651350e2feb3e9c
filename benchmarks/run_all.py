"""Run every benchmark and rewrite docs/benchmarks.md with their tables.

    python benchmarks/run_all.py                 # all of them (a few minutes)
    python benchmarks/run_all.py spine timing    # some of them

Each `bench_*.py` prints a markdown table of medians and ratios against a
baseline measured in the same run. This script only collects them. It exits
1 when a benchmark failed; the doc then keeps that section's earlier table
under a line saying so.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"

SECTIONS = {
    "spine": ("The spine: queue, snapshots, kernel, comm hub (issue 2)", "bench_spine.py"),
    "sessions": ("Sessions: saving without stalling the engine (issue 3)", "bench_sessions.py"),
    "history": ("History ring memory with structural sharing (issue 3)", "bench_history.py"),
    "live": ("Live files: save -> engine changed (issue 4)", "bench_live.py"),
    "live_scale": ("Live files at scale: 1k, 10k and 100k statements (issue 14 #15)", "bench_live_scale.py"),
    "timing": ("Timing: the scheduler process under load, cold starts and MIDI (issues 5, 11)", "bench_timing.py"),
    "reliability": ("Reliability: misbehaving user code and a dying scheduler (issue 14 #7-#10)", "bench_reliability.py"),
    "soak": ("Soak: 10 minutes playing with 50 changes/s (issue 14 #17)", "bench_soak.py"),
    "gui": ("GUI panel latency (issue 6)", "bench_gui.py"),
    "patterns": ("Patterns: query cost against Strudel 1.1 (issue 15)", "bench_patterns.py"),
    "outputs": ("Outputs: playing patterns and building bundles in the scheduler (issue 11)", "bench_outputs.py"),
    "scsynth": ("At a real scsynth: where each note lands while the kernel or the machine is busy (issue 11)", "bench_scsynth.py"),
    "script": ("Code shell scripts while a slider is dragged (issue 12 #6)", "bench_script.py"),
    "comm_reliability": ("Reliability: hostile comm input and lost acks under load (issue 14 #1-#4, #6)", "bench_comm_attacks.py"),
    "link": ("Ableton Link: phase error between two vtkernels (issue 10)", "bench_link.py"),
    "pianoroll": ("The panel's pianoroll: haps replies and a drag on a watched pattern (issue 15)", "bench_pianoroll.py"),
}


def section(text: str, title: str) -> str | None:
    """The section of `text` headed `## title`, up to the next section, or None."""
    start = text.find(f"## {title}")
    if start < 0:
        return None
    end = text.find("\n## ", start + 1)
    return text[start : end + 1] if end >= 0 else text[start:]


def run(name: str, old: str) -> tuple[str, str | None]:
    """The section's new text, and why it failed (None if it did not).

    A benchmark that fails (a non-zero exit, or no table) leaves its previous
    table in the doc under a line that says the re-run failed, so neither the
    failure nor the last good figures go unseen.
    """
    title, script = SECTIONS[name]
    path = HERE / script
    if not path.exists():
        return f"## {title}\n\n(not present)\n", f"{script} is not present"
    print(f"running {script} ...", file=sys.stderr)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=HERE.parent, timeout=1800)
    body = proc.stdout.strip()
    if proc.returncode == 0 and body:
        return f"## {title}\n\nCommand: `python benchmarks/{script}`\n\n{body}\n", None
    err = proc.stderr.strip().splitlines()
    why = f"{script} failed: {err[-1] if err else f'exit status {proc.returncode}, no table'}"
    previous = section(old, title)
    flag = f"**The re-run of {datetime.date.today()} failed** ({why}); what follows is from an earlier run.\n\n"
    if previous is None:
        return f"## {title}\n\n{flag}(no earlier run)\n", why
    heading, _, rest = previous.partition("\n\n")
    return f"{heading}\n\n{flag}{rest}", why


def main(argv: list[str]) -> int:
    names = argv or list(SECTIONS)
    old = DOC.read_text() if DOC.exists() else ""
    results = [run(n, old) for n in names]
    parts = [part for part, _ in results]
    head = (
        "# Benchmarks\n\n"
        "Made by `python benchmarks/run_all.py` (or one `python benchmarks/bench_*.py`). "
        "Every figure is a median (or percentile) beside a baseline measured in the same run; "
        "these machines are noisy, so read the ratios, not the absolute times.\n\n"
        f"Last run: {datetime.date.today()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}.\n\n"
    )
    if names == list(SECTIONS) or not old:
        DOC.write_text(head + "\n".join(parts))
    else:  # replace only the sections that were re-run
        text = old
        for n, part in zip(names, parts, strict=True):
            previous = section(text, SECTIONS[n][0])
            text = text.replace(previous, part, 1) if previous is not None else text + "\n" + part
        DOC.write_text(text)
    print(DOC.read_text())
    failed = [why for _, why in results if why is not None]
    for why in failed:
        print(f"run_all: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
