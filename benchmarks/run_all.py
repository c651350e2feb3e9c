"""Run every benchmark and rewrite docs/benchmarks.md with their tables.

    python benchmarks/run_all.py                 # all of them (a few minutes)
    python benchmarks/run_all.py spine timing    # some of them

Each `bench_*.py` prints a markdown table of medians and ratios against a
baseline measured in the same run. This script only collects them.
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


def run(name: str) -> str:
    title, script = SECTIONS[name]
    path = HERE / script
    if not path.exists():
        return f"## {title}\n\n(not present)\n"
    print(f"running {script} ...", file=sys.stderr)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=HERE.parent, timeout=1800)
    body = proc.stdout.strip() or f"(failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})"
    return f"## {title}\n\nCommand: `python benchmarks/{script}`\n\n{body}\n"


def main(argv: list[str]) -> int:
    names = argv or list(SECTIONS)
    parts = [run(n) for n in names]
    head = (
        "# Benchmarks\n\n"
        "Made by `python benchmarks/run_all.py` (or one `python benchmarks/bench_*.py`). "
        "Every figure is a median (or percentile) beside a baseline measured in the same run; "
        "these machines are noisy, so read the ratios, not the absolute times.\n\n"
        f"Last run: {datetime.date.today()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}.\n\n"
    )
    if names == list(SECTIONS) or not DOC.exists():
        DOC.write_text(head + "\n".join(parts))
    else:  # replace only the sections that were re-run
        text = DOC.read_text()
        for n, part in zip(names, parts, strict=True):
            title = SECTIONS[n][0]
            start = text.find(f"## {title}")
            if start < 0:
                text += "\n" + part
                continue
            end = text.find("\n## ", start + 1)
            text = text[:start] + part + ("\n" + text[end + 1 :] if end >= 0 else "")
        DOC.write_text(text)
    print(DOC.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
