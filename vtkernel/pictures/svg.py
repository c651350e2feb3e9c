"""`Picture`: one SVG drawing that follows the notebook's light or dark theme.

The drawings use `currentColor` for text and lines. That only works when the
SVG is part of the page: JupyterLab shows `image/svg+xml` output as an
`<img>`, where `currentColor` is always black (black text on the dark
theme's near-black). So a `Picture` offers `text/html` first (the SVG inline,
coloured by the theme's `--jp-content-font-color1`), which JupyterLab,
Notebook 7 and VS Code prefer, and `image/svg+xml` as a fallback for
renderers that take only images, with a stylesheet that picks a text colour
from the viewer's colour scheme.

Also what every drawing here shares: the font, the palette of series
colours, `esc` (text into SVG) and `short` (a value in a few characters).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

FONT = "font-family=\"ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif\""
PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#a855f7", "#06b6d4", "#84cc16", "#ec4899")

# Inline, the theme's own text colour; VS Code's variable, then the surrounding text, otherwise.
INLINE_STYLE = "color: var(--jp-content-font-color1, var(--vscode-editor-foreground, inherit)); overflow-x: auto"
# Standalone (an <img>, a file): no theme to read, so follow the viewer's colour scheme.
STANDALONE_STYLE = (
    "<style>svg{color:#1f2328}@media (prefers-color-scheme: dark){svg{color:#e6edf3}}</style>"
)



def esc(text: Any) -> str:
    """`text` as SVG text or an attribute value."""
    return html.escape(str(text), quote=True)


def short(value: Any, limit: int = 16) -> str:
    """A param value in at most `limit` characters (step lists as Strudel writes them)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = f"{value:.1f}"
    elif isinstance(value, (list, tuple)):
        text = " ".join("~" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Picture:
    """An SVG drawing; displays inline in notebooks. `.svg` is the text, `save(path)` writes a file."""

    def __init__(self, svg: str, label: str = "vtkernel picture") -> None:
        self.svg = svg
        self.label = label

    def _repr_html_(self) -> str:
        return f'<div class="vt-picture" style="{INLINE_STYLE}">{self.svg}</div>'

    def _repr_svg_(self) -> str:
        return self.standalone()

    def standalone(self) -> str:
        """The SVG with its own text colour, for an `<img>` or a file."""
        head, sep, rest = self.svg.partition(">")
        return head + sep + STANDALONE_STYLE + rest if sep else self.svg

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(self.standalone(), encoding="utf-8")
        return out

    def __str__(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<{self.label}: {len(self.svg)} characters of SVG; display it in a notebook>"
