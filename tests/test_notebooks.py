"""The notebooks users open first are tests: each runs top to bottom with nbclient on the real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_something(path: Path, jupyter_path: str, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="vtkernel",
        timeout=180,
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0]
    rich = {mime for o in outputs for mime in o.get("data", {})}
    # Worth looking at: pictures or widgets, not only text.
    assert rich & {"image/svg+xml", "image/png", "application/vnd.jupyter.widget-view+json", "text/html"}, rich
    nbformat.write(nb, tmp_path / path.name)  # the executed copy, for inspection


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ has no notebooks"
