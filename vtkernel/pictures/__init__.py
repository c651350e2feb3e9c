"""Pictures for people: SVG drawings of patterns, of the patch and of what it played, shown in notebooks and in the GUI panel.

- `pianoroll(pattern, cycles=4)`: the next cycles of a pattern as a piano roll
  (time to the right, one row per pitch or sound), like Strudel's `pianoroll`;
- `patch_svg(doc, registry)`: the patch graph, modules as boxes and
  connections as curves (`patch.py`);
- `timeline_svg(events)`: what recorders kept, over beats (`timeline.py`);
- `Picture`: an SVG string that displays inline in a notebook, drawn in the
  theme's text colour (light and dark themes alike).

Pure Python: no Jupyter import, so the hub, tests and scripts can draw too.
The engine never imports this package (a contract): pictures are drawn from
its snapshots, outside it.
"""

from vtkernel.pictures.patch import patch_svg
from vtkernel.pictures.pianoroll import Hap, haps_of, haps_reply, module_haps, pianoroll, pianoroll_svg
from vtkernel.pictures.svg import Picture
from vtkernel.pictures.timeline import timeline_svg

__all__ = [
    "Hap",
    "Picture",
    "haps_of",
    "haps_reply",
    "module_haps",
    "patch_svg",
    "pianoroll",
    "pianoroll_svg",
    "timeline_svg",
]
