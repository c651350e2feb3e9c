"""A patch as a plain Python file: `%vt watch patch.py` runs it, then re-runs what changes on every save."""

vt.bpm(110)


def melody(root):
    return [root, None, root + 3, root + 7, None, root + 10]


vt.module("lead", "seq", steps=melody(60), division=4)
vt.module("wobble", "lfo", rate=0.5, shape="triangle")
vt.module("hats", "euclid", hits=5, length=8, value=42)
vt.connect("wobble.out", "lead.division")
