"""Compile the SynthDefs that the `scsynth` sink ships, with supriya (no sclang needed).

    python scripts/build_synthdefs.py           write vtkernel/engine/synthdefs/*.scsyndef
    python scripts/build_synthdefs.py --check   exit 1 if the shipped files differ from a fresh build

supriya (PyPI, `pip install 'vtkernel[dev]'`) builds a SynthDef graph in
Python and compiles it to SuperCollider's binary SCgf format, the bytes that
`/d_recv` takes. It is needed only here: the package ships the compiled
`.scsyndef` files, so running vtkernel needs neither supriya nor sclang.

Every voice writes with OffsetOut, so its onset lands on the exact sample of
its bundle's timetag (not on the next control block), and frees its node when
its envelope ends (doneAction 2). `pan` is 0..1 with 0.5 in the middle, as in
Tidal and Strudel; `amp * gain * velocity` is the level. The controls are listed in
docs/scsynth.md; keep that page in step with this file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from supriya import DoneAction, Envelope, SynthDef, SynthDefBuilder, ugens

OUT_DIR = Path(__file__).resolve().parents[1] / "vtkernel" / "engine" / "synthdefs"


def _out(b: SynthDefBuilder, sig: object) -> None:
    """Stereo out, panned 0..1, sample-accurate onset."""
    ugens.OffsetOut.ar(bus=b["out"], source=ugens.Pan2.ar(source=sig, position=b["pan"] * 2 - 1))


def _level(b: SynthDefBuilder) -> object:
    """`amp * gain * velocity`: the SynthDef's level, Strudel's gain and velocity (both 0..1 multipliers)."""
    return b["amp"] * b["gain"] * b["velocity"]


def _voice(name: str, osc: Callable[[SynthDefBuilder], object], **extra: float) -> SynthDef:
    """A sustained voice: attack, hold for `sustain` seconds (or while `gate` is 1 when sustain is 0), release.

    With `sustain > 0` the note ends by itself (one `/s_new` per note, nothing can hang).
    With `sustain = 0` it is held until `/n_set NODE gate 0`.
    """
    with SynthDefBuilder(
        out=0.0, freq=440.0, amp=0.2, gain=1.0, velocity=1.0, pan=0.5, attack=0.005, sustain=0.25, release=0.1,
        gate=1.0, **extra,
    ) as b:
        timer = ugens.Line.kr(start=1.0, stop=0.0, duration=b["sustain"]) > 0  # 1 until `sustain` has passed
        held = b["sustain"] <= 0
        gate = b["gate"] * ((timer + held) > 0)
        env = ugens.EnvGen.kr(
            envelope=Envelope.asr(attack_time=b["attack"], sustain=1.0, release_time=b["release"]),
            gate=gate,
            done_action=DoneAction.FREE_SYNTH,
        )
        _out(b, osc(b) * env * _level(b))
    return b.build(name=name)


def sine() -> SynthDef:
    return _voice("sine", lambda b: ugens.SinOsc.ar(frequency=b["freq"]))


def saw() -> SynthDef:
    def osc(b: SynthDefBuilder) -> object:
        return ugens.RLPF.ar(source=ugens.Saw.ar(frequency=b["freq"]), frequency=b["cutoff"], reciprocal_of_q=0.5)

    return _voice("saw", osc, cutoff=4000.0)


def fm() -> SynthDef:
    def osc(b: SynthDefBuilder) -> object:
        mod = ugens.SinOsc.ar(frequency=b["freq"] * b["ratio"]) * b["freq"] * b["index"]
        return ugens.SinOsc.ar(frequency=b["freq"] + mod)

    return _voice("fm", osc, ratio=2.0, index=1.0)


def kick() -> SynthDef:
    """A sine drum: the pitch falls from 4x `freq` to `freq` in 50 ms, the level over `decay` seconds."""
    with SynthDefBuilder(out=0.0, freq=50.0, amp=0.5, gain=1.0, velocity=1.0, pan=0.5, decay=0.3) as b:
        env = ugens.EnvGen.kr(
            envelope=Envelope.percussive(attack_time=0.001, release_time=b["decay"]),
            done_action=DoneAction.FREE_SYNTH,
        )
        sweep = ugens.XLine.kr(start=b["freq"] * 4, stop=b["freq"], duration=0.05)
        _out(b, ugens.SinOsc.ar(frequency=sweep) * env * _level(b))
    return b.build(name="kick")


def hat() -> SynthDef:
    """High-passed noise, `decay` seconds long."""
    with SynthDefBuilder(out=0.0, freq=8000.0, amp=0.2, gain=1.0, velocity=1.0, pan=0.5, decay=0.05) as b:
        env = ugens.EnvGen.kr(
            envelope=Envelope.percussive(attack_time=0.001, release_time=b["decay"]),
            done_action=DoneAction.FREE_SYNTH,
        )
        _out(b, ugens.HPF.ar(source=ugens.WhiteNoise.ar(), frequency=b["freq"]) * env * _level(b))
    return b.build(name="hat")


def vt_record() -> SynthDef:
    """Writes buses `bus`, `bus + 1` to the sound-file buffer `buf` (opened with `/b_write ... 0 0 1`)."""
    with SynthDefBuilder(buf=0.0, bus=0.0) as b:
        ugens.DiskOut.ar(buffer_id=b["buf"], source=ugens.In.ar(bus=b["bus"], channel_count=2))
    return b.build(name="vt_record")


DEFS: tuple[Callable[[], SynthDef], ...] = (sine, saw, fm, kick, hat, vt_record)


def build() -> dict[str, bytes]:
    """Each SynthDef's compiled SCgf bytes, by name."""
    out = {}
    for make in DEFS:
        synthdef = make()
        out[str(synthdef.name)] = synthdef.compile()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    args = parser.parse_args(argv)
    built = build()
    if args.check:
        stale = [name for name, data in built.items() if _read(OUT_DIR / f"{name}.scsyndef") != data]
        extra = sorted({p.stem for p in OUT_DIR.glob("*.scsyndef")} - set(built))
        for name in stale:
            print(f"{name}.scsyndef differs from a fresh build: run python scripts/build_synthdefs.py")
        for name in extra:
            print(f"{name}.scsyndef is shipped but no longer built: delete it")
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in built.items():
        (OUT_DIR / f"{name}.scsyndef").write_bytes(data)
        print(f"wrote {OUT_DIR / name}.scsyndef ({len(data)} bytes)")
    return 0


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
