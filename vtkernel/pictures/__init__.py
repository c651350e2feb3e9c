"""Pictures for people: SVG drawings of patterns, shown in notebooks and in the GUI panel.

- `pianoroll(pattern, cycles=4)`: the next cycles of a pattern as a piano roll
  (time to the right, one row per pitch or sound), like Strudel's `pianoroll`;
- `Picture`: an SVG string that displays inline in a notebook, drawn in the
  theme's text colour (light and dark themes alike).

Pure Python: no Jupyter import, so the hub, tests and scripts can draw too.
"""

from vtkernel.pictures.pianoroll import Hap, haps_of, haps_reply, module_haps, pianoroll, pianoroll_svg
from vtkernel.pictures.svg import Picture

__all__ = ["Hap", "Picture", "haps_of", "haps_reply", "module_haps", "pianoroll", "pianoroll_svg"]
