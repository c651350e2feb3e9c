"""Sessions on real kernels (SPEC §7): real files, real processes, real `kill -9`.

Every kernel here is started through jupyter_client from the installed
kernelspec, binds a session file in `tmp_path` and is stopped cleanly or
killed with SIGKILL. Files are checked from the outside with the same
`decode` the kernel uses.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import immutables
import pytest

from tests.conftest import ROOT, Kernel, start_kernel
from vtkernel.engine import default_registry
from vtkernel.engine.document import Clock, Document, Module, Snapshot
from vtkernel.session import ENV_SESSION, ENV_SESSION_DIR, decode, encode

REGISTRY = default_registry()
AUTOSAVE_WINDOW = 1.2  # the 1 s autosave delay, its 50 ms settle and one write, with a little margin
READER = ROOT / "tests" / "session" / "_reader.py"
ARTIFACTS = ROOT / "test-artifacts"


# ----- helpers -------------------------------------------------------------------


@pytest.fixture
def kernels(jupyter_path: str) -> Iterator[Callable[..., Kernel]]:
    """Start kernels that resume no session unless told to; every one is stopped (or reaped) at the end."""
    started: list[Kernel] = []

    def start(**env: str) -> Kernel:
        k = start_kernel(env={ENV_SESSION: "", ENV_SESSION_DIR: "", **env})
        started.append(k)
        return k

    yield start
    for k in started:
        finish(k)


def finish(k: Kernel) -> None:
    """Shut a kernel down cleanly if it still runs; reap and clean up after it if it was killed."""
    try:
        k.kc.stop_channels()
        if k.km.is_alive():
            k.km.shutdown_kernel(now=False)
        k.km.cleanup_resources()
    except Exception:
        pass


def pid_of(k: Kernel) -> int:
    return int(k.km.provisioner.pid)


def kill_9(k: Kernel, *, reap: bool = True) -> int:
    """SIGKILL the kernel. With `reap`, wait for it as its parent would (jupyter_server polls it)."""
    pid = pid_of(k)
    os.kill(pid, signal.SIGKILL)
    if reap:
        k.km.provisioner.process.wait(10)
    return pid


def proc_state(pid: int) -> str | None:
    """The state letter in /proc/PID/stat ("Z": a zombie, dead but not reaped), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def read_session(path: Path) -> dict[str, Any]:
    """The raw JSON of a session file, after checking it decodes and validates."""
    data = path.read_bytes()
    decode(data, REGISTRY)
    return json.loads(data)


def file_version(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_bytes())["version"])
    except (OSError, ValueError, KeyError):
        return None


def session_files(path: Path) -> list[Path]:
    """The main file and its existing backups, newest first."""
    candidates = [path, *(path.with_name(f"{path.name}.{i}") for i in (1, 2, 3))]
    return [p for p in candidates if p.exists()]


def state(k: Kernel) -> dict[str, Any]:
    return json.loads(k.ok("%vt state"))


def patch_of(doc: dict[str, Any]) -> dict[str, Any]:
    """What a session keeps: modules, connections, bpm and meter (not the transport)."""
    clock = doc["clock"]
    return {"modules": doc["modules"], "connections": doc["connections"], "bpm": clock["bpm"], "meter": clock["meter"]}


def engine_version(k: Kernel) -> int:
    return int(k.ok("print(vt.version)"))


def one_line_error(result: dict[str, Any]) -> str:
    """The error a failed cell showed: exactly one line, no traceback."""
    assert result["status"] == "error", result
    lines = result["error"]["traceback"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    return str(lines[0])


def session_reports(k: Kernel) -> str:
    """What the kernel reported about its sessions so far (the resume-at-start line among them)."""
    return k.ok("print('\\n'.join(get_ipython().kernel.services.session_reports))")


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> float | None:
    """Poll `predicate` (a file on disk: nothing to await) until true; seconds it took, or None."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)


def write_session(path: Path, version: int, modules: dict[str, Module]) -> None:
    doc = Document(Clock(), immutables.Map(modules), immutables.Map())
    path.write_bytes(encode(Snapshot(version, doc)))


def lfo(rate: float) -> Module:
    return Module("lfo", immutables.Map({"rate": rate, "depth": 1.0, "shape": "sine"}))


# ----- open, save, autosave ---------------------------------------------------------------


def test_save_is_durable_and_a_fresh_kernel_continues_from_the_saved_version(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    path = tmp_path / "show.vtsession"
    k1 = kernels()
    assert "created" in k1.ok(f"%vt open {path}")
    k1.ok("%vt add lfo1 lfo rate=2")
    k1.ok("%vt add s seq steps=[60,null,62]")
    k1.ok("%vt connect lfo1.out s.division")
    k1.ok("%vt bpm 96")
    saved = state(k1)
    out = k1.ok("%vt save")
    assert f"version {saved['version']}" in out, out
    kill_9(k1)  # at once: only `save` can have put it there

    raw = read_session(path)
    assert raw["format"] == "vtkernel.session"
    assert raw["format_version"] == 1
    assert raw["checksum"].startswith("sha256:") and len(raw["checksum"]) == 71
    assert raw["version"] == saved["version"]
    assert patch_of(raw["document"]) == patch_of(saved)

    k2 = kernels()
    out = k2.ok(f"print(vt.open({str(path)!r}))")
    assert f"version {saved['version']}" in out, out
    reopened = state(k2)
    assert reopened["version"] >= saved["version"]
    assert patch_of(reopened) == patch_of(saved)
    k2.ok("%vt set lfo1.rate 3")
    assert engine_version(k2) > saved["version"]  # versions never go back across restarts


def test_an_edit_reaches_the_file_without_a_save_within_the_autosave_window(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    path = tmp_path / "auto.vtsession"
    k = kernels()
    k.ok(f"%vt open {path}")
    k.ok("%vt add lfo1 lfo")
    assert wait_until(lambda: file_version(path) == 1, 1.5) is not None
    time.sleep(1.0)  # a quiet spell, longer than the autosave delay
    delays = []
    for rate in (2, 3, 4):  # back to back: the later ones wait out the 1 s between two writes
        k.ok(f"%vt set lfo1.rate {rate}")
        version = engine_version(k)
        took = wait_until(lambda v=version: (file_version(path) or -1) >= v, 1.5)
        assert took is not None, f"v{version} not on disk within 1.5 s (file has v{file_version(path)})"
        delays.append(took)
        assert read_session(path)["document"]["modules"]["lfo1"]["params"]["rate"] == rate
    assert delays[0] < 0.5, delays  # the first change after a quiet spell goes out after a short settle


# ----- one kernel per session -----------------------------------------------------------


def test_a_second_kernel_is_refused_and_takes_over_after_the_first_is_killed(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    path = tmp_path / "duo.vtsession"
    k1, k2 = kernels(), kernels()
    k1.ok(f"%vt open {path}")
    k1.ok("vt.module('lead', 'lfo', rate=5, shape='saw'); vt.module('bass', 'lfo', rate=0.5)")
    k1.ok("%vt connect lead.out bass.rate")
    k1.ok("%vt save")
    before = state(k1)

    line = one_line_error(k2.execute(f"%vt open {path}"))
    assert "[session_locked]" in line and f"pid {pid_of(k1)}" in line, line
    assert state(k2)["modules"] == {}  # nothing was loaded

    pid1 = kill_9(k1)
    out = k2.ok(f"%vt open {path}")
    assert f"recovered from crash: version {before['version']}" in out, out
    assert f"pid {pid1}" in out, out
    assert patch_of(state(k2)) == patch_of(before)


def test_a_killed_kernel_its_parent_has_not_reaped_yet_is_still_called_a_crash(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    """A kernel killed by SIGKILL is a zombie until its parent waits for it (jupyter_server
    polls every few seconds; a notebook that started it may never). It holds no lock and
    will never run again, so taking over its session is recovering from a crash."""
    path = tmp_path / "zombie.vtsession"
    k1, k2 = kernels(), kernels()
    k1.ok(f"%vt open {path}")
    k1.ok("%vt add lead lfo rate=5")
    k1.ok("%vt save")
    pid = kill_9(k1, reap=False)
    assert wait_until(lambda: proc_state(pid) == "Z", 5) is not None  # dead, its threads still exiting or gone
    out = k2.ok(f"%vt open {path}")
    assert f"recovered from crash: version {engine_version(k2)}" in out, out


# ----- load and open -------------------------------------------------------------------


def test_load_is_one_undoable_version_and_open_is_not_undoable(kernels: Callable[..., Kernel], tmp_path: Path) -> None:
    other = tmp_path / "other.vtsession"
    write_session(other, 7, {"pad": lfo(0.25), "arp": lfo(8.0)})
    fresh = tmp_path / "fresh.vtsession"
    write_session(fresh, 40, {"drone": lfo(0.1)})
    k = kernels()
    k.ok("%vt add lead lfo rate=3")
    v0 = engine_version(k)

    out = k.ok(f"%vt load {other}")
    assert "undo" in out, out
    assert set(state(k)["modules"]) == {"pad", "arp"}
    assert engine_version(k) == v0 + 1
    k.ok("%vt undo")
    after_undo = state(k)
    assert set(after_undo["modules"]) == {"lead"}
    assert after_undo["modules"]["lead"]["params"]["rate"] == 3.0
    assert after_undo["version"] == v0 + 2  # undo is a new version: versions never go back

    k.ok(f"%vt open {fresh}")
    opened = state(k)
    assert set(opened["modules"]) == {"drone"} and opened["version"] >= 40
    line = one_line_error(k.execute("%vt undo"))
    assert "[nothing_to_undo]" in line, line
    assert state(k)["modules"] == opened["modules"]


# ----- corrupt files ------------------------------------------------------------------


def test_a_truncated_or_tampered_main_file_falls_back_to_the_newest_backup(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    path = tmp_path / "show.vtsession"
    k1 = kernels()
    k1.ok(f"%vt open {path}")
    k1.ok("%vt add lead lfo rate=1")
    versions = {}
    for rate in (2, 3, 4):
        k1.ok(f"%vt set lead.rate {rate}")
        k1.ok("%vt save")
        versions[rate] = engine_version(k1)
    finish(k1)  # a clean close: nobody holds the session now
    assert [file_version(p) for p in session_files(path)][:2] == [versions[4], versions[3]]

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short, as by a full disk or a bad copy
    k2 = kernels()
    out = k2.ok(f"%vt open {path}").strip()
    warning = out.split("; opened ")[0]
    assert "\n" not in out, out
    assert "truncated" in warning and f"recovered version {versions[3]} from backup {path.name}.1" in warning, out
    assert state(k2)["modules"]["lead"]["params"]["rate"] == 3.0
    assert path.with_name(path.name + ".corrupt").exists()  # moved aside, never rotated into a backup
    assert file_version(path) == versions[3]  # the main file is good again at once
    finish(k2)

    raw = path.read_text()
    assert '"rate":3.0' in raw
    path.write_text(raw.replace('"rate":3.0', '"rate":9.0'))  # one byte: still JSON, wrong checksum
    k3 = kernels()
    out = k3.ok(f"%vt open {path}").strip()
    assert "\n" not in out, out
    assert "checksum mismatch" in out and "from backup" in out, out
    assert state(k3)["modules"]["lead"]["params"]["rate"] == 3.0  # the tampered value is never loaded


# ----- default resume mode ------------------------------------------------------------


def test_a_restarted_kernel_resumes_its_session_from_the_environment(
    kernels: Callable[..., Kernel], tmp_path: Path
) -> None:
    env = {ENV_SESSION_DIR: str(tmp_path / "sessions"), "JPY_SESSION_NAME": str(tmp_path / "My Show.ipynb")}
    expected = Path(os.path.realpath(tmp_path)) / "sessions" / "My_Show.vtsession"
    k1 = kernels(**env)
    assert "created" in session_reports(k1)
    k1.ok("vt.module('lead', 'lfo', rate=4, shape='square'); vt.bpm(132)")
    before = state(k1)
    finish(k1)  # a clean shutdown flushes the last version and releases the lock
    assert file_version(expected) == before["version"]
    assert Path(str(expected) + ".lock").read_text() == ""  # the mark of a clean close

    k2 = kernels(**env)
    reports = session_reports(k2)
    assert f"opened {expected}: version {before['version']}" in reports, reports
    assert "crash" not in reports and "took over" not in reports, reports
    after = state(k2)
    assert after["version"] == before["version"] and patch_of(after) == patch_of(before)
    assert str(expected) in k2.ok("print(vt.session())")


def test_a_kernel_that_resumes_a_crashed_session_tells_the_user(kernels: Callable[..., Kernel], tmp_path: Path) -> None:
    """In resume mode nobody typed `open`, so the recovery line must reach the notebook
    (the first cell, or `vt.session()`), not only the kernel's log."""
    path = tmp_path / "resume.vtsession"
    k1 = kernels(**{ENV_SESSION: str(path)})
    k1.ok("%vt add lead lfo rate=7")
    k1.ok("%vt save")
    kill_9(k1)
    k2 = kernels(**{ENV_SESSION: str(path)})
    first = k2.execute("print(vt.session())")
    assert first["status"] == "ok", first
    assert "recovered from crash" in first["stdout"] + first["stderr"], first


def test_an_explicit_session_path_in_the_environment_wins(kernels: Callable[..., Kernel], tmp_path: Path) -> None:
    path = tmp_path / "explicit.vtsession"
    k1 = kernels(**{ENV_SESSION: str(path), ENV_SESSION_DIR: str(tmp_path / "unused")})
    k1.ok("%vt add lead lfo rate=6")
    finish(k1)
    k2 = kernels(**{ENV_SESSION: str(path)})
    assert state(k2)["modules"]["lead"]["params"]["rate"] == 6.0
    assert not (tmp_path / "unused").exists()


# ----- the crash loop -----------------------------------------------------------------

ROUNDS = 20
PAUSE = 0.005  # between two commands: about 150 set_params per second
READER_EVERY = 5  # rounds with a concurrent reader re-parsing the main file


@dataclass
class Round:
    round: int
    kill_after_s: float
    sent: int
    acked: int
    reopened_version: int  # the version the kernel started this round with
    disk_version: int  # the version on disk after the kill
    lost_changes: int  # acked changes not on disk
    lost_s: float  # how long before the kill the oldest lost change was acked
    file_age_s: float  # kill time minus the file's saved_at
    reader_reads: int | None = None


@pytest.mark.slow
def test_kill_9_at_random_moments_never_corrupts_and_loses_at_most_the_autosave_window(
    kernels: Callable[..., Kernel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "crash.vtsession"
    seed = int(os.environ.get("VT_CRASH_SEED", "0")) or random.randrange(1 << 32)  # VT_CRASH_SEED replays a run
    rng = random.Random(seed)
    rounds: list[Round] = []
    value = 1  # the one step of `ctr` counts commands: each value is one command, forever
    disk: dict[str, Any] | None = None  # the main file after the last kill
    t_start = time.monotonic()

    for r in range(ROUNDS):
        k = kernels(**{ENV_SESSION: str(path)})
        c = k.client()
        start_version = c.version
        if disk is None:
            k.ok("%vt add ctr seq steps=[0]")
            k.ok("%vt save")
        else:
            # State back: exactly what was on disk, at (at least) its version.
            assert start_version >= disk["version"], (r, start_version, disk["version"])
            assert c.mirror is not None and patch_of(c.mirror) == patch_of(disk["document"])
            reports = session_reports(k)
            assert f"recovered from crash: version {disk['version']}" in reports, reports

        reader = None
        if r % READER_EVERY == 0:
            stop = tmp_path / f"stop-{r}"
            reader = subprocess.Popen(
                [sys.executable, str(READER), str(path), str(stop)], stdout=subprocess.PIPE, text=True
            )
            assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"

        sent: dict[int, int] = {}
        kill_after = rng.uniform(0.2, 1.5)
        t0 = time.monotonic()
        while time.monotonic() - t0 < kill_after:
            msg_id = c.command({"op": "set_param", "module": "ctr", "param": "steps", "value": [value]})
            sent[msg_id] = value
            value += 1
            time.sleep(PAUSE)
        t_kill, wall_kill = time.monotonic(), time.time()
        kill_9(k)

        reads = None
        if reader is not None:
            stop.touch()
            out, _ = reader.communicate(timeout=10)
            seen = json.loads(out.strip().splitlines()[-1])
            assert seen["torn"] == 0 and seen["missing"] == 0 and seen["ok"] > 0, seen
            reads = seen["ok"]

        with c._cond:
            replies = list(zip(c.messages, c.times, strict=True))
        c.close()
        assert not [m for m, _ in replies if m.get("type") == "error"], replies[-3:]
        acked = sorted((sent[m["id"]], t) for m, t in replies if m.get("type") == "ack" and m.get("id") in sent)

        # Every file parses and validates, newest first.
        files = session_files(path)
        assert files and files[0] == path, files
        decoded = [decode(p.read_bytes(), REGISTRY) for p in files]
        assert [d.version for d in decoded] == sorted((d.version for d in decoded), reverse=True)
        assert not path.with_name(path.name + ".corrupt").exists()
        disk = json.loads(path.read_bytes())
        on_disk = int(disk["document"]["modules"]["ctr"]["params"]["steps"][0])

        # Versions never go back; nothing acked before the autosave window is lost.
        assert disk["version"] >= start_version
        assert not rounds or disk["version"] >= rounds[-1].disk_version
        old_enough = [v for v, t in acked if t <= t_kill - AUTOSAVE_WINDOW]
        assert not old_enough or on_disk >= old_enough[-1], (r, on_disk, old_enough[-1], kill_after)
        lost = [(v, t) for v, t in acked if v > on_disk]
        rounds.append(
            Round(
                round=r,
                kill_after_s=round(kill_after, 3),
                sent=len(sent),
                acked=len(acked),
                reopened_version=start_version,
                disk_version=disk["version"],
                lost_changes=len(lost),
                lost_s=round(t_kill - lost[0][1], 3) if lost else 0.0,
                file_age_s=round(wall_kill - disk["saved_at"], 3),
                reader_reads=reads,
            )
        )

    elapsed = time.monotonic() - t_start
    summary = {**crash_summary(rounds, elapsed), "seed": seed}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-loop.json").write_text(
        json.dumps({"summary": summary, "rounds": [asdict(x) for x in rounds]}, indent=1)
    )
    with capsys.disabled():
        print("\n" + crash_table(rounds, summary))
    assert sum(x.acked for x in rounds) > 10 * ROUNDS  # the loop really streamed


def crash_summary(rounds: list[Round], elapsed: float) -> dict[str, Any]:
    lost_n = [x.lost_changes for x in rounds]
    lost_s = [x.lost_s for x in rounds]
    return {
        "rounds": len(rounds),
        "seconds": round(elapsed, 1),
        "changes_acked": sum(x.acked for x in rounds),
        "lost_changes_median": statistics.median(lost_n),
        "lost_changes_max": max(lost_n),
        "lost_s_median": round(statistics.median(lost_s), 3),
        "lost_s_max": round(max(lost_s), 3),
        "file_age_s_max": round(max(x.file_age_s for x in rounds), 3),
        "first_version": rounds[0].reopened_version,
        "last_version": rounds[-1].disk_version,
        "torn_reads": 0,
        "reader_reads": sum(x.reader_reads or 0 for x in rounds),
    }


def crash_table(rounds: list[Round], s: dict[str, Any]) -> str:
    head = "| round | kill after (s) | acked | lost changes | lost (s) | file age (s) | version on disk |"
    rows = [head, "|---|---|---|---|---|---|---|"]
    for x in rounds:
        rows.append(
            f"| {x.round} | {x.kill_after_s:.2f} | {x.acked} | {x.lost_changes} | {x.lost_s:.2f} "
            f"| {x.file_age_s:.2f} | {x.disk_version} |"
        )
    rows.append(
        f"\ncrash loop: {s['rounds']} kill -9 rounds in {s['seconds']} s, {s['changes_acked']} changes acked; "
        f"lost changes median {s['lost_changes_median']} max {s['lost_changes_max']}; "
        f"lost seconds median {s['lost_s_median']} max {s['lost_s_max']}; "
        f"versions {s['first_version']} -> {s['last_version']}, never backwards; "
        f"{s['reader_reads']} concurrent reads, 0 torn (VT_CRASH_SEED={s['seed']})"
    )
    return "\n".join(rows)
