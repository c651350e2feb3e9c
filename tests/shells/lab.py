"""A real JupyterLab on localhost and headless Chromium, for the panel's browser tests and benchmark.

- `LabServer`: `jupyter lab` (or, with `app="notebook"`, Jupyter Notebook 7)
  in a subprocess with its own runtime, config, settings and workspace
  directories under a temp dir, the `vtkernel` kernelspec found through
  `JUPYTER_PATH`, and `window.jupyterapp` exposed so tests can run
  JupyterLab commands (run all cells, change theme); Notebook 7 is built on
  JupyterLab's application and command registry, so the same helpers work.
- `launch_chromium`: Debian's `/usr/bin/chromium` driven by Playwright
  (`playwright install` is never used: browser downloads do not work here).
- `panel_notebook`: writes a notebook that displays `vt.panel()`.

Used by `tests/shells/test_panel_browser.py`, `tests/shells/test_panel_notebook7.py`
and `benchmarks/bench_gui.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# jupyter_server never sets TCP_NODELAY on its kernel websockets, so Nagle's algorithm holds
# small kernel->browser frames until the previous one is acked (up to ~40 ms on loopback).
# The benchmark measures with and without this patch to show what that costs.
NODELAY_CONFIG = """
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
_open = KernelWebsocketHandler.open
async def open_with_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return await _open(self, *args, **kwargs)
KernelWebsocketHandler.open = open_with_nodelay
"""
LIGHT = "JupyterLab Light"
DARK = "JupyterLab Dark"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_available(app: str = "lab") -> str | None:
    """Why browser tests cannot run here (in `app`: "lab" or "notebook"), or None if they can."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed"
    if app == "notebook":
        try:
            import notebook  # noqa: F401
        except ImportError:
            return "notebook (Jupyter Notebook 7) is not installed"
    return None


def panel_notebook(path: Path, setup: str, panels: int = 1, after: Sequence[str] = ()) -> Path:
    """A notebook that declares some modules, shows `panels` panels, one per cell, then runs the `after` cells."""
    import nbformat

    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [nbformat.v4.new_code_cell(f"panel{i} = vt.panel()\npanel{i}") for i in range(panels)]
    cells += [nbformat.v4.new_code_cell(source) for source in after]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "vtkernel", "display_name": "vtkernel (Python 3)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(path))
    return path


APPS = ("lab", "notebook")


class LabServer:
    """`jupyter lab` on 127.0.0.1 with everything it writes under `base`. Use as a context manager.

    `app="notebook"` starts Jupyter Notebook 7 (`jupyter notebook`) the same way instead.
    """

    def __init__(
        self, base: Path, jupyter_path: str, theme: str = LIGHT, nodelay: bool = False, app: str = "lab"
    ) -> None:
        if app not in APPS:
            raise ValueError(f"app must be one of {APPS}, not {app!r}")
        self.app = app
        self.base = base
        self.root = base / "notebooks"
        self.runtime = base / "runtime"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.jupyter_path = jupyter_path
        self.theme = theme
        self.nodelay = nodelay
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / f"{app}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        settings = self.base / "settings"
        for rel, data in {
            "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": self.theme},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
        }.items():
            f = settings / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(data))
        config = self.base / "config"
        config.mkdir(parents=True, exist_ok=True)
        if self.nodelay:
            (config / "jupyter_server_config.py").write_text(NODELAY_CONFIG)
        env = dict(os.environ)
        env.update(
            JUPYTER_PATH=self.jupyter_path,
            JUPYTER_RUNTIME_DIR=str(self.runtime),
            JUPYTER_CONFIG_DIR=str(self.base / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.base / "workspaces"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def __enter__(self) -> LabServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(parents=True, exist_ok=True)
        # Both apps are LabServerApps; each has its own `expose_app_in_browser` trait.
        module, app_class = ("jupyterlab", "LabApp") if self.app == "lab" else ("notebook", "JupyterNotebookApp")
        cmd = [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--allow-root",
            f"--port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--{app_class}.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
            "--LabServerApp.open_browser=False",
        ]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.api("/api/status")
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"jupyter {self.app} did not start in 60 s")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is None:
            return
        for kernel in self.api("/api/kernels"):
            try:
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
            except OSError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        if self.app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def connection_file(self, notebook: str, timeout: float = 60) -> str:
        """The connection file of the kernel behind `notebook`'s session."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for session in self.api("/api/sessions"):
                if session.get("path", "").endswith(notebook) and session.get("kernel"):
                    path = self.runtime / f"kernel-{session['kernel']['id']}.json"
                    if path.exists():
                        return str(path)
            time.sleep(0.2)
        raise RuntimeError(f"no kernel session for {notebook}")


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@contextlib.contextmanager
def notebook_page(url: str, panels: int = 1) -> Iterator[Any]:
    """Chromium on a notebook page, all cells run, `panels` panels live; fails on panel JS errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        with open_notebook(browser, url, panels) as page:
            yield page
        browser.close()


@contextlib.contextmanager
def open_notebook(browser: Any, url: str, panels: int = 1) -> Iterator[Any]:
    """A new page of `browser` on a notebook, all cells run, `panels` panels live."""
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    run_all_cells(page)
    page.locator('.vt-panel[data-vt-status="live"]').nth(panels - 1).wait_for(timeout=60_000)
    yield page
    page.close()
    assert not [e for e in errors if "vt" in e.lower()], errors


def run_all_cells(page: Any) -> None:
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
        "window.jupyterapp.shell.currentWidget.sessionContext && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
        timeout=60_000,
    )
    page.evaluate(
        "async () => { const nb = window.jupyterapp.shell.currentWidget;"
        " await nb.sessionContext.ready; await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
    )


def run_command(page: Any, line: str) -> str:
    """Type one line into the first panel's command line, press Enter, and return its result line."""
    root = page.locator(".vt-panel").first
    cmd = root.locator("[data-vt-command]")
    results = root.locator(".vt-entry-result")
    count = results.count()
    cmd.fill(line)
    cmd.press("Enter")
    page.wait_for_function(
        "(n) => { const r = document.querySelectorAll('.vt-panel')[0].querySelectorAll('.vt-entry-result');"
        " return r.length > n && r[r.length - 1].dataset.vtResult !== 'pending'; }",
        arg=count,
        timeout=5000,
    )
    return str(results.last.inner_text())


def set_theme(page: Any, theme: str) -> None:
    page.evaluate(
        "async (t) => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme: t}); }", theme
    )
    page.wait_for_function(
        "(t) => document.body.dataset.jpThemeName === t && getComputedStyle(document.body)"
        ".getPropertyValue('--jp-layout-color1').trim() !== ''",
        arg=theme,
        timeout=20_000,
    )
    page.wait_for_timeout(300)  # the theme's stylesheet swap settles over a frame or two
