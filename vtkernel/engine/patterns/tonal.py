"""Scales and note names as Strudel 1.1's `@strudel/tonal` computes them (tonal.js 4 underneath).

`n("0 2 4").scale("C:minor")` gives `{"note": "C3"}`, `{"note": "Eb3"}`,
`{"note": "G3"}`: steps count scale degrees from the tonic (octave 3 unless
the tonic says, `"C4:minor"`), negative steps go down, `2#` and `2b` add or
take a semitone. Scale names are tonal.js's scale types, with their
aliases (`major`/`ionian`, `minor`/`aeolian`, `dorian`, `phrygian`,
`lydian`, `mixolydian`, `locrian`, `major pentatonic`/`pentatonic`,
`minor pentatonic`, `blues`/`minor blues`, `harmonic minor`,
`melodic minor`, `chromatic`, ...); in mini-notation words are joined
with `:` (`"C:major:pentatonic"`).

Note names are spelled the way tonal.js spells them (interval arithmetic
on [fifths, octaves] coordinates), so `Eb3` stays `Eb3` and `D#4` stays
`D#4`. `note_to_midi` is Strudel's `noteToMidi` (`c4` is 60, octave 3 by
default).
"""

from __future__ import annotations

import math
import re
from typing import Any

from vtkernel.engine.patterns.core import Pattern, PatternError, js_number, pure, silence

# tonal.js 4.9 scale types: intervals | name | aliases (data from @tonaljs/scale-type)
SCALE_TABLE = """
1P 2M 3M 5P 6M | major pentatonic | pentatonic
1P 2M 3M 4P 5P 6M 7M | major | ionian
1P 2M 3m 4P 5P 6m 7m | minor | aeolian
1P 2M 3m 3M 5P 6M | major blues
1P 3m 4P 5d 5P 7m | minor blues | blues
1P 2M 3m 4P 5P 6M 7M | melodic minor
1P 2M 3m 4P 5P 6m 7M | harmonic minor
1P 2M 3M 4P 5P 6M 7m 7M | bebop
1P 2M 3m 4P 5d 6m 6M 7M | diminished | whole-half diminished
1P 2M 3m 4P 5P 6M 7m | dorian
1P 2M 3M 4A 5P 6M 7M | lydian
1P 2M 3M 4P 5P 6M 7m | mixolydian | dominant
1P 2m 3m 4P 5P 6m 7m | phrygian
1P 2m 3m 4P 5d 6m 7m | locrian
1P 3M 4P 5P 7M | ionian pentatonic
1P 3M 4P 5P 7m | mixolydian pentatonic | indian
1P 2M 4P 5P 6M | ritusen
1P 2M 4P 5P 7m | egyptian
1P 3M 4P 5d 7m | neapolitan major pentatonic
1P 3m 4P 5P 6m | vietnamese 1
1P 2m 3m 5P 6m | pelog
1P 2m 4P 5P 6m | kumoijoshi
1P 2M 3m 5P 6m | hirajoshi
1P 2m 4P 5d 7m | iwato
1P 2m 4P 5P 7m | in-sen
1P 3M 4A 5P 7M | lydian pentatonic | chinese
1P 3m 4P 6m 7m | malkos raga
1P 3m 4P 5d 7m | locrian pentatonic | minor seven flat five pentatonic
1P 3m 4P 5P 7m | minor pentatonic | vietnamese 2
1P 3m 4P 5P 6M | minor six pentatonic
1P 2M 3m 5P 6M | flat three pentatonic | kumoi
1P 2M 3M 5P 6m | flat six pentatonic
1P 2m 3M 5P 6M | scriabin
1P 3M 5d 6m 7m | whole tone pentatonic
1P 3M 4A 5A 7M | lydian #5p pentatonic
1P 3M 4A 5P 7m | lydian dominant pentatonic
1P 3m 4P 5P 7M | minor #7m pentatonic
1P 3m 4d 5d 7m | super locrian pentatonic
1P 2M 3m 4P 5P 7M | minor hexatonic
1P 2A 3M 5P 5A 7M | augmented
1P 2M 4P 5P 6M 7m | piongio
1P 2m 3M 4A 6M 7m | prometheus neapolitan
1P 2M 3M 4A 6M 7m | prometheus
1P 2m 3M 5d 6m 7m | mystery #1
1P 2m 3M 4P 5A 6M | six tone symmetric
1P 2M 3M 4A 5A 6A | whole tone | messiaen's mode #1
1P 2m 4P 4A 5P 7M | messiaen's mode #5
1P 2M 3M 4P 5d 6m 7m | locrian major | arabian
1P 2m 3M 4A 5P 6m 7M | double harmonic lydian
1P 2m 2A 3M 4A 6m 7m | altered | super locrian | diminished whole tone | pomeroy
1P 2M 3m 4P 5d 6m 7m | locrian #2 | half-diminished | aeolian b5
1P 2M 3M 4P 5P 6m 7m | mixolydian b6 | melodic minor fifth mode | hindu
1P 2M 3M 4A 5P 6M 7m | lydian dominant | lydian b7 | overtone
1P 2M 3M 4A 5A 6M 7M | lydian augmented
1P 2m 3m 4P 5P 6M 7m | dorian b2 | phrygian #6 | melodic minor second mode
1P 2m 3m 4d 5d 6m 7d | ultralocrian | superlocrian bb7 | superlocrian diminished
1P 2m 3m 4P 5d 6M 7m | locrian 6 | locrian natural 6 | locrian sharp 6
1P 2A 3M 4P 5P 5A 7M | augmented heptatonic
1P 2M 3m 4A 5P 6M 7m | dorian #4 | ukrainian dorian | romanian minor | altered dorian
1P 2M 3m 4A 5P 6M 7M | lydian diminished
1P 2M 3M 4A 5A 7m 7M | leading whole tone
1P 2M 3M 4A 5P 6m 7m | lydian minor
1P 2m 3M 4P 5P 6m 7m | phrygian dominant | spanish | phrygian major
1P 2m 3m 4P 5P 6m 7M | balinese
1P 2m 3m 4P 5P 6M 7M | neapolitan major
1P 2M 3M 4P 5P 6m 7M | harmonic major
1P 2m 3M 4P 5P 6m 7M | double harmonic major | gypsy
1P 2M 3m 4A 5P 6m 7M | hungarian minor
1P 2A 3M 4A 5P 6M 7m | hungarian major
1P 2m 3M 4P 5d 6M 7m | oriental
1P 2m 3m 3M 4A 5P 7m | flamenco
1P 2m 3m 4A 5P 6m 7M | todi raga
1P 2m 3M 4P 5d 6m 7M | persian
1P 2m 3M 5d 6m 7m 7M | enigmatic
1P 2M 3M 4P 5A 6M 7M | major augmented | major #5 | ionian augmented | ionian #5
1P 2A 3M 4A 5P 6M 7M | lydian #9
1P 2m 2M 4P 4A 5P 6m 7M | messiaen's mode #4
1P 2m 3M 4P 4A 5P 6m 7M | purvi raga
1P 2m 3m 3M 4P 5P 6m 7m | spanish heptatonic
1P 2M 3m 3M 4P 5P 6M 7m | bebop minor
1P 2M 3M 4P 5P 5A 6M 7M | bebop major
1P 2m 3m 4P 5d 5P 6m 7m | bebop locrian
1P 2M 3m 4P 5P 6m 7m 7M | minor bebop
1P 2M 3M 4P 5d 5P 6M 7M | ichikosucho
1P 2M 3m 4P 5P 6m 6M 7M | minor six diminished
1P 2m 3m 3M 4A 5P 6M 7m | half-whole diminished | dominant diminished | messiaen's mode #2
1P 3m 3M 4P 5P 6M 7m 7M | kafi raga
1P 2M 3M 4P 4A 5A 6A 7M | messiaen's mode #6
1P 2M 3m 3M 4P 5d 5P 6M 7m | composite blues
1P 2M 3m 3M 4A 5P 6m 7m 7M | messiaen's mode #3
1P 2m 2M 3m 4P 4A 5P 6m 6M 7M | messiaen's mode #7
1P 2m 2M 3m 3M 4P 5d 5P 6m 6M 7m 7M | chromatic
"""


def _parse_scales(text: str) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    for line in text.strip().splitlines():
        intervals, *names = (part.strip() for part in line.split("|"))
        for name in names:
            index[name] = tuple(intervals.split())
    return index


SCALES = _parse_scales(SCALE_TABLE)
"""Scale intervals by tonal.js name and alias."""

# ---------------------------------------------------------------------------
# Strudel's own note helpers (core/util.mjs)

_IS_NOTE = re.compile(r"^[a-gA-G][#bsf]*[0-9]?$")
_TOKENIZE = re.compile(r"^([a-gA-G])([#bsf]*)([0-9]*)$")
_CHROMAS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCS = {"#": 1, "b": -1, "s": 1, "f": -1}


def is_note(name: Any) -> bool:
    """Strudel's `isNote`: a letter, accidentals (`# b s f`) and an optional one-digit octave."""
    return isinstance(name, str) and _IS_NOTE.match(name) is not None


def note_to_midi(note: str, default_octave: int = 3) -> int:
    """Strudel's `noteToMidi`: `c4` is 60, `eb3` is 51; the octave defaults to 3."""
    m = _TOKENIZE.match(note) if isinstance(note, str) else None
    if m is None:
        raise PatternError(f'not a note: "{note}"')
    pc, acc, oct_str = m.groups()
    octave = int(oct_str) if oct_str else default_octave
    return (octave + 1) * 12 + _CHROMAS[pc.lower()] + sum(_ACCS[c] for c in acc)


def midi_to_freq(n: float) -> float:
    return math.pow(2, (n - 69) / 12) * 440


# ---------------------------------------------------------------------------
# tonal.js pitch arithmetic: a pitch is (step, alt, oct); its coordinates are
# [fifths, octaves], where transposition is addition.

_FIFTHS = (0, 2, 4, -1, 1, 3, 5)
_STEPS_TO_OCTS = tuple(math.floor(f * 7 / 12) for f in _FIFTHS)
_FIFTHS_TO_STEPS = (3, 0, 4, 1, 5, 2, 6)
_TYPES = "PMMPPMM"
_NOTE_RE = re.compile(r"^([a-gA-G]?)(#{1,}|b{1,}|x{1,}|)(-?\d*)\s*(.*)$")
_INTERVAL_RE = re.compile(r"^([-+]?\d+)(d{1,4}|m|M|P|A{1,4})|(AA|A|P|M|m|d|dd)([-+]?\d+)$")


def _coordinates(step: int, alt: int, oct_: int | None, dir_: int = 1) -> tuple[int, ...]:
    f = _FIFTHS[step] + 7 * alt
    if oct_ is None:
        return (dir_ * f,)
    o = oct_ - _STEPS_TO_OCTS[step] - 4 * alt
    return (dir_ * f, dir_ * o)


def _pitch(coord: tuple[int, ...]) -> tuple[int, int, int | None]:
    f = coord[0]
    i = (f + 1) % 7  # Python's % is already non-negative here
    step = _FIFTHS_TO_STEPS[i]
    alt = math.floor((f + 1) / 7)
    if len(coord) < 2:
        return step, alt, None
    return step, alt, coord[1] + 4 * alt + _STEPS_TO_OCTS[step]


def parse_note(name: str) -> tuple[str, str, int | None, tuple[int, ...]] | None:
    """tonal.js `Note.get`: (name, pitch class, octave, coordinates), or None for a non-note."""
    m = _NOTE_RE.match(name)
    if m is None:
        return None
    letter, acc, oct_str, rest = m.group(1).upper(), m.group(2).replace("x", "##"), m.group(3), m.group(4)
    if letter == "" or rest != "":
        return None
    step = (ord(letter) + 3) % 7
    alt = -len(acc) if acc.startswith("b") else len(acc)
    octave = int(oct_str) if oct_str not in ("", "-") else None
    if oct_str == "-":
        return None
    pc = letter + acc
    return pc + (oct_str if octave is not None else ""), pc, octave, _coordinates(step, alt, octave)


def _note_name(step: int, alt: int, octave: int | None) -> str:
    acc = "b" * -alt if alt < 0 else "#" * alt
    return "CDEFGAB"[step] + acc + ("" if octave is None else str(octave))


def _q_to_alt(kind: str, q: str) -> int:
    if (q == "M" and kind == "majorable") or (q == "P" and kind == "perfectable"):
        return 0
    if q == "m" and kind == "majorable":
        return -1
    if re.fullmatch("A+", q):
        return len(q)
    if re.fullmatch("d+", q):
        return -(len(q) if kind == "perfectable" else len(q) + 1)
    return 0


def interval_coord(name: str) -> tuple[int, int] | None:
    """tonal.js interval coordinates of `3m`, `-8P`, `M3`..., or None."""
    m = _INTERVAL_RE.match(name)
    if m is None:
        return None
    num_s, q = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    if num_s is None:
        return None
    num = int(num_s)
    step = (abs(num) - 1) % 7
    kind = "majorable" if _TYPES[step] == "M" else "perfectable"
    if kind == "majorable" and q == "P":
        return None
    dir_ = -1 if num < 0 else 1
    alt = _q_to_alt(kind, q)
    octave = (abs(num) - 1) // 7
    c = _coordinates(step, alt, octave, dir_)
    return c[0], c[1]


def _alt_to_q(kind: str, alt: int) -> str:
    if alt == 0:
        return "M" if kind == "majorable" else "P"
    if alt == -1 and kind == "majorable":
        return "m"
    if alt > 0:
        return "A" * alt
    return "d" * abs(alt if kind == "perfectable" else alt + 1)


def _coord_to_interval_name(coord: tuple[int, int]) -> str:
    f, o = coord
    descending = f * 7 + o * 12 < 0
    f, o, dir_ = (-f, -o, -1) if descending else (f, o, 1)
    step, alt, octave = _pitch((f, o))
    assert octave is not None
    calc = step + 1 + 7 * octave
    num = step + 1 if calc == 0 else calc
    kind = "majorable" if _TYPES[step] == "M" else "perfectable"
    return ("-" if dir_ < 0 else "") + str(num) + _alt_to_q(kind, alt)


def interval_add(a: str, b: str) -> str | None:
    """tonal.js `Interval.add`."""
    ca = interval_coord(a)
    cb = interval_coord(b)
    if ca is None or cb is None:
        return None
    return _coord_to_interval_name((ca[0] + cb[0], ca[1] + cb[1]))


def interval_from_semitones(semitones: int) -> str:
    """tonal.js `Interval.fromSemitones`: 1 is `2m`, -1 is `-2m`, 12 is `8P`."""
    numbers = (1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7)
    qualities = "P m M m M P d P m M m M".split()
    d = -1 if semitones < 0 else 1
    n = abs(semitones)
    c = n % 12
    o = n // 12
    return f"{d * (numbers[c] + 7 * o)}{qualities[c]}"


def transpose(note: str, interval: str) -> str:
    """tonal.js `Note.transpose`: spelled note name, or "" when either is invalid."""
    parsed = parse_note(note)
    ic = interval_coord(interval)
    if parsed is None or ic is None:
        return ""
    nc = parsed[3]
    coord = (nc[0] + ic[0],) if len(nc) == 1 else (nc[0] + ic[0], nc[1] + ic[1])
    return _note_name(*_pitch(coord))


# ---------------------------------------------------------------------------
# Scales


def scale_get(name: str) -> tuple[str, tuple[str, ...]] | None:
    """tonal.js `Scale.get`: (tonic name, intervals); tonic is "" when absent; None when unknown."""
    i = name.find(" ")
    head = name[:i] if i >= 0 else name[:-1]  # JS substring(0, -1) is ""
    if i < 0:
        head = ""
    tonic = parse_note(head) if head else None
    if tonic is None:
        whole = parse_note(name)
        tokens = ("", name.lower()) if whole is None else (whole[0], "")
    else:
        kind = name[len(tonic[0]) + 1 :].lower()
        tokens = (tonic[0], kind)
    intervals = SCALES.get(tokens[1])
    if intervals is None:
        return None
    return tokens[0], intervals


def scale_step(step: float, scale: str) -> str:
    """The note name of scale degree `step` (Strudel's `scaleStep`); PatternError if the scale is bad."""
    scale = scale.replace(":", " ")
    istep = math.ceil(step)
    got = scale_get(scale)
    if (got is None and is_note(scale)) or (got is not None and not got[0]):
        raise PatternError('incomplete scale. Make sure to use ":" instead of spaces, example: .scale("C:major")')
    if got is None:
        raise PatternError(f'invalid scale "{scale}"')
    tonic, intervals = got
    parsed = parse_note(tonic or "C")
    assert parsed is not None
    pc, octave = parsed[1], parsed[2] if parsed[2] is not None else 3
    size = len(intervals)
    octave_offset = istep // size
    degree = istep % size
    octaves = f"{(-1 if octave_offset <= 0 else 1) + octave_offset * 7}P"
    interval = interval_add(intervals[degree], octaves)
    if interval is None:
        raise PatternError(f'invalid scale "{scale}"')
    return transpose(pc + str(octave), interval)


_STEP_RE = re.compile(r"^[-+]?\d+(#*|b*){1}$")


def _scale_value(scale: str, value: Any) -> Pattern:
    is_object = isinstance(value, dict)
    step = value.get("n") if is_object else value
    if is_object:
        value = {k: v for k, v in value.items() if k != "n"}
    if is_note(step):
        return pure(step)  # Strudel's legacy branch: the note name itself, without the other fields
    as_number = js_number(step)
    semitones = 0
    if isinstance(as_number, float) and math.isnan(as_number):
        text = "undefined" if step is None else str(step)
        if not _STEP_RE.match(text):
            return silence
        sharp = text.find("#")
        if sharp >= 0:
            as_number = js_number(text[:sharp])
            semitones = len(text) - sharp
        else:
            flat = text.find("b")
            as_number = js_number(text[:flat])
            semitones = flat - len(text)
    try:
        if is_object and value.get("anchor"):
            raise PatternError("scale anchors are not supported")
        note = scale_step(as_number, scale)
        if semitones != 0:
            note = transpose(note, interval_from_semitones(semitones))
    except PatternError:
        return silence
    return pure({**value, "note": note} if is_object else note)


def _scale(pat: Pattern, name: Any) -> Pattern:
    if isinstance(name, list):
        name = " ".join(str(x) for x in _flatten(name))
    scale_name = str(name)
    return pat.fmap(lambda v: _scale_value(scale_name, v)).outerJoin()


def _flatten(xs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        if isinstance(x, list):
            out.extend(x)
        else:
            out.append(x)
    return out


def scale(name: Any, pat: Any = None) -> Any:
    """`scale("C:minor", pat)`, or with the pattern left out, a function of one (Strudel's curried form)."""
    from vtkernel.engine.patterns.core import reify

    if pat is None:
        return lambda p: reify(p).scale(name)
    return reify(pat).scale(name)
