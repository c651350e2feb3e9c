"""Control patterns: Strudel 1.1's params (`s`, `n`, `note`, `gain`, `pan`, ...), values as mappings.

`s("bd*2 sd")` is a pattern of `{"s": "bd"}` mappings; `.n("<0 3>")` sets
`n` from another pattern with the structure of the left one (Strudel's
`set.in`), so `s("bd*2 sd").n("<0 3>")` gives `{"s": "bd", "n": 0}`...
Each control is both a function (`s(...)`, a sequence of its arguments)
and a method (`pat.s(...)`), under its Strudel aliases (`sound`, `lpf`,
`legato` sets `clip` as Strudel does, ...).

Multi-name controls spread a `:` list over their names, as Strudel's do:
`s("bd:3")` is `{"s": "bd", "n": 3}`, `cutoff("800:10")` sets `resonance`
too. A value that is already a mapping with a `value` key keeps its other
keys (Strudel's `withVal`).

The table below is Strudel 1.1's `controls.mjs` list, as data: each line is
the param's names (the first is the key it sets; the others take the
following `:` list items) and, after `|`, its aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vtkernel.engine.patterns.core import Pattern, sequence

ControlFunction = Callable[..., Pattern]

TABLE = """
s n gain | sound
source | src
n
note n
accelerate
velocity
gain
postgain
amp
attack | att
fmh fmi | fmh
fmi fmh | fm
fmenv
fmattack
fmdecay
fmsustain
fmrelease
fmvelocity
bank
analyze
fft
decay | dec
sustain | sus
release | rel
hold
bandf bandq bpenv | bpf bp
bandq | bpq
begin
end
loop
loopBegin | loopb
loopEnd | loope
crush
coarse
drive
channels | ch
phaserrate | phasr
phaser phaserdepth phasercenter phasersweep | ph
phasersweep | phs
phasercenter | phc
phaserdepth | phd phasdp
channel
cut
cutoff resonance lpenv | ctf lpf lp
lpenv | lpe
hpenv | hpe
bpenv | bpe
lpattack | lpa
hpattack | hpa
bpattack | bpa
lpdecay | lpd
hpdecay | hpd
bpdecay | bpd
lpsustain | lps
hpsustain | hps
bpsustain | bps
lprelease | lpr
hprelease | hpr
bprelease | bpr
ftype
fanchor
vib vibmod | vibrato v
noise
vibmod vib | vmod
hcutoff hresonance hpenv | hpf hp
hresonance | hpq
resonance | lpq
djf
delay delaytime delayfeedback
delayfeedback | delayfb dfb
delaytime | delayt dt
lock
detune | det
unison
spread
dry
fadeTime | fadeOutTime
fadeInTime
freq
pattack | patt
pdecay | pdec
psustain | psus
prelease | prel
penv
pcurve
panchor
gate | gat
leslie
lrate
lsize
activeLabel
label activeLabel
degree
mtranspose
ctranspose
harmonic
stepsPerOctave
octaveR
nudge
octave
orbit
overgain
overshape
pan
panspan
pansplay
panwidth
panorient
rate
slide
semitone
voice
chord
dictionary | dict
anchor
offset
octaves
mode anchor
room size
roomlp | rlp
roomdim | rdim
roomfade | rfade
ir i | iresponse
roomsize | size sz rsize
shape shapevol
distort distortvol | dist
compressor compressorRatio compressorKnee compressorAttack compressorRelease
compressorKnee
compressorRatio
compressorAttack
compressorRelease
speed
unit
squiz
vowel
waveloss
density
expression
sustainpedal
tremolodepth | tremdp
tremolorate | tremr
fshift
fshiftnote
fshiftphase
triode
krush
kcutoff
octer
octersub
octersubsub
ring
ringf
ringdf
freeze
xsdelay
tsdelay
real
imag
enhance
partials
comb
smear
scram
binshift
hbrick
lbrick
midichan
control
ccn
ccv
polyTouch
midibend
miditouch
ctlNum
frameRate
frames
hours
midicmd
minutes
progNum
seconds
songPtr
uid
val
cps
clip | legato
duration | dur
zrand
curve
deltaSlide
pitchJump
pitchJumpTime
lfo | repeatTime
znoise
zmod
zcrush
zdelay
tremolo
zzfx
color colour
"""


def _with_val(names: tuple[str, ...]) -> Callable[[Any], Any]:
    name = names[0]
    multi = len(names) > 1

    def with_val(xs: Any) -> Any:
        bag: dict[str, Any] | None = None
        if isinstance(xs, dict) and xs.get("value") is not None:
            bag = {k: v for k, v in xs.items() if k != "value"}
            xs = xs["value"]
        if multi and isinstance(xs, list):
            result = bag if bag is not None else {}
            for i, x in enumerate(xs[: len(names)]):
                result[names[i]] = x
            return result
        if bag is not None:
            bag[name] = xs
            return bag
        return {name: xs}

    return with_val


def make_control(names: tuple[str, ...]) -> tuple[ControlFunction, Callable[..., Pattern]]:
    """The function and the method of one control (Strudel's `createParam`)."""
    with_val = _with_val(names)

    def function(*pats: Any) -> Pattern:
        return sequence(*pats).fmap(with_val)

    def method(self: Pattern, *pats: Any) -> Pattern:
        if not pats:
            return self.fmap(with_val)
        return self.set(function(*pats))

    function.__name__ = names[0]
    function.__doc__ = f"The `{names[0]}` control: a pattern of `{{{names[0]!r}: value}}` mappings."
    method.__name__ = names[0]
    method.__doc__ = f"Set `{names[0]}` from a pattern, keeping this pattern's structure (Strudel's `set.in`)."
    return function, method


def _parse_table(text: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    rows = []
    for line in text.strip().splitlines():
        names, _, aliases = line.partition("|")
        rows.append((tuple(names.split()), tuple(aliases.split())))
    return rows


CONTROLS: dict[str, ControlFunction] = {}
"""Every control function by name and alias (what the tree form and the facade look up)."""


def _install() -> None:
    for names, aliases in _parse_table(TABLE):
        function, method = make_control(names)
        for key in (names[0], *aliases):
            CONTROLS[key] = function
            setattr(Pattern, key, method)


_install()


def control(name: str) -> ControlFunction:
    """The control function called `name` (Strudel's name or alias); KeyError if there is none."""
    return CONTROLS[name]


s = CONTROLS["s"]
sound = CONTROLS["sound"]
n = CONTROLS["n"]
note = CONTROLS["note"]
gain = CONTROLS["gain"]
velocity = CONTROLS["velocity"]
pan = CONTROLS["pan"]
speed = CONTROLS["speed"]
legato = CONTROLS["legato"]
clip = CONTROLS["clip"]
duration = CONTROLS["duration"]
dur = CONTROLS["dur"]
orbit = CONTROLS["orbit"]
cutoff = CONTROLS["cutoff"]
lpf = CONTROLS["lpf"]
resonance = CONTROLS["resonance"]
hcutoff = CONTROLS["hcutoff"]
hpf = CONTROLS["hpf"]
room = CONTROLS["room"]
size = CONTROLS["size"]
delay = CONTROLS["delay"]
delaytime = CONTROLS["delaytime"]
delayfeedback = CONTROLS["delayfeedback"]
begin = CONTROLS["begin"]
end = CONTROLS["end"]
cut = CONTROLS["cut"]
shape = CONTROLS["shape"]
crush = CONTROLS["crush"]
coarse = CONTROLS["coarse"]
vowel = CONTROLS["vowel"]
attack = CONTROLS["attack"]
decay = CONTROLS["decay"]
sustain = CONTROLS["sustain"]
release = CONTROLS["release"]
channel = CONTROLS["channel"]
freq = CONTROLS["freq"]
accelerate = CONTROLS["accelerate"]
unit = CONTROLS["unit"]
amp = CONTROLS["amp"]
bank = CONTROLS["bank"]
octave = CONTROLS["octave"]
postgain = CONTROLS["postgain"]
distort = CONTROLS["distort"]
cps = CONTROLS["cps"]


def __getattr__(name: str) -> ControlFunction:
    try:
        return CONTROLS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
