"""`%vt` and `%%vt`: the command language in cells (SPEC §4).

`%vt LINE` runs one line; `%%vt` runs the cell's lines as one atomic batch.
Errors are one line (`VTError._render_traceback_`) and fail the cell, so
"run all" stops there. Output (`get`, `state`, `help`, ...) is printed.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from vtkernel.protocol import VTError


@magics_class
class VTMagics(Magics):  # type: ignore[misc]
    def __init__(self, shell: Any, kernel: Any) -> None:
        super().__init__(shell)
        self.kernel = kernel

    @line_magic("vt")
    def vt_line(self, line: str) -> None:
        """Run one command-language line: `%vt set lfo1.rate 3`. `%vt help` lists them."""
        if not line.strip():
            raise VTError("invalid_command", "usage: %vt COMMAND (try %vt help)")
        _show(self.kernel.vt.run(line))

    @cell_magic("vt")
    def vt_cell(self, line: str, cell: str) -> None:
        """Run each line of the cell as one atomic batch: all of it, or none of it."""
        text = "\n".join(part for part in (line, cell) if part.strip())
        _show(self.kernel.vt.run(text))


def _show(output: Any) -> None:
    """Text is printed; an object (the panel widget) is displayed."""
    if output is None:
        return
    if isinstance(output, str):
        print(output)
    else:
        from IPython.display import display

        display(output)
