"""The `vt.panel()` widget in a real Jupyter Notebook 7, driven by headless Chromium.

The issue asks for the panel to work in JupyterLab, Notebook 7 and VS Code;
`test_panel_browser.py` covers JupyterLab in depth, this covers the essentials
in Notebook 7: `jupyter notebook` (the `LabServer` helper with `app="notebook"`)
serves `/notebooks/<name>.ipynb`, all cells are run through the JupyterLab
command registry that Notebook 7 exposes as `window.jupyterapp`, and a second
jupyter_client on the same kernel checks both directions of the sync.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import ROOT, VTClient
from tests.shells.lab import (
    LabServer,
    browser_available,
    notebook_page,
    panel_notebook,
    run_command,
)
from tests.shells.test_panel_browser import SETUP, edit_rate_and_shape, panel, param, wait_input, wait_kernel

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(browser_available("notebook") is not None, reason=str(browser_available("notebook"))),
]

ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "panel-nb7.ipynb"


@pytest.fixture(scope="module")
def server(jupyter_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with LabServer(tmp_path_factory.mktemp("notebook7"), jupyter_path, app="notebook") as server:
        panel_notebook(server.root / NOTEBOOK, SETUP)
        yield server


@pytest.fixture(scope="module")
def page(server: LabServer) -> Iterator[Any]:
    with notebook_page(server.notebook_url(NOTEBOOK), panels=1) as page:
        yield page


@pytest.fixture(scope="module")
def kernel_side(server: LabServer, page: Any) -> Iterator[VTClient]:
    """A protocol client on the notebook's kernel, through its own jupyter_client connection."""
    client = VTClient(SimpleNamespace(connection_file=server.connection_file(NOTEBOOK)), shell="other")
    yield client
    client.close()


def test_this_is_notebook_7_not_jupyterlab(server: LabServer, page: Any) -> None:
    assert server.api("/api/status") is not None
    assert f"/notebooks/{NOTEBOOK}" in page.url
    # Notebook 7's single-document shell, not JupyterLab's dock panel
    assert page.locator("#main-panel .jp-NotebookPanel").count() == 1
    assert page.locator("#jp-main-dock-panel").count() == 0
    app_name = page.evaluate("() => window.jupyterapp.name")
    assert "Notebook" in app_name and "Lab" not in app_name, app_name


def test_the_panel_renders_the_current_document(page: Any) -> None:
    assert page.locator(".vt-panel").count() == 1
    assert param(page, "lfo1.rate").input_value() == "2"
    assert param(page, "lfo1.depth").input_value() == "1"
    assert param(page, "lfo2.shape").input_value() == "saw"
    assert param(page, "s1.steps").input_value() == "60 ~ 62 64"
    assert "lfo1.out → lfo2.depth" in " ".join(panel(page).locator(".vt-connections").inner_text().split())


def test_editing_inputs_changes_the_kernel(page: Any, kernel_side: VTClient) -> None:
    edit_rate_and_shape(page, kernel_side)


def test_a_kernel_side_change_appears_in_the_panel_within_one_second(page: Any, kernel_side: VTClient) -> None:
    start = time.monotonic()
    reply = kernel_side.call({"op": "set_param", "module": "lfo2", "param": "rate", "value": 3.25})
    assert reply["type"] == "ack"
    wait_input(page, '[data-vt-param="lfo2.rate"]', "3.25", timeout_ms=1000)
    assert time.monotonic() - start < 1.0


def test_the_command_line_works(page: Any, kernel_side: VTClient) -> None:
    def run(line: str) -> str:
        return run_command(page, line)

    assert re.fullmatch(r"ok v\d+", run("set lfo1.depth 0.5"))
    wait_kernel(kernel_side, "lfo1", "depth", 0.5)
    wait_input(page, '[data-vt-param="lfo1.depth"]', "0.5")
    assert run("get lfo1.depth") == "0.5"
    assert run("set lfo1.depth 7").startswith("error [invalid_value] lfo1.depth must be <= 1")


def test_screenshot(page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    panel(page).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "notebook7.png"))
    assert (ARTIFACTS / "notebook7.png").stat().st_size > 10_000
