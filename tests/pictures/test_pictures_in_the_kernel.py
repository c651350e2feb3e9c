"""Pictures as a notebook shows them, through a real kernel: inline HTML first, an SVG as the fallback."""

from __future__ import annotations

import re

from tests.conftest import Kernel


def test_a_pattern_displays_as_its_pianoroll(kernel: Kernel) -> None:
    result = kernel.execute('from vtkernel.engine.patterns.mini import mini\nmini("bd*2 [~ sd]")')
    data = result["outputs"][0]
    assert data["text/plain"].startswith("Pattern(")
    html = data["text/html"]
    assert html.startswith('<div class="vt-picture"') and "data-vt-pianoroll" in html
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", html)
    assert {"bd", "sd", "0", "4"} <= set(labels)
    assert "prefers-color-scheme" in data["image/svg+xml"]


def test_graph_and_snapshot_display_inline_in_the_themes_colour(kernel: Kernel) -> None:
    kernel.ok("vt.module('a', 'lfo')")
    for source in ("vt.graph()", "vt.snapshot()"):
        data = kernel.execute(source)["outputs"][0]
        assert "var(--jp-content-font-color1" in data["text/html"], source
        assert 'fill="currentColor"' in data["text/html"]
