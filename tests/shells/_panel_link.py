"""The panel's Link toggle in a real JupyterLab, inside a private network namespace (`unshare -n`).

Started by tests/shells/test_panel_browser.py, never on the machine's real network: Ableton Link
multicasts on every interface. JupyterLab, Chromium, the kernel and a plain aalink peer all run
in this namespace. Prints one JSON object with what the panel showed; the test asserts on it.

    unshare -n python tests/shells/_panel_link.py ARTIFACTS_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "link"))

from _scenario import isolate  # noqa: E402

from tests.shells.lab import LabServer, launch_chromium, open_notebook, panel_notebook  # noqa: E402
from vtkernel.kernel.install import install  # noqa: E402

PEER = """
import asyncio
from aalink import Link
async def main():
    link = Link(120)
    link.enabled = True
    print("joined", flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
"""


def main(artifacts: str) -> int:
    isolate()
    from playwright.sync_api import sync_playwright

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        install(prefix=str(base / "prefix"))
        with LabServer(base / "lab", str(base / "prefix" / "share" / "jupyter")) as lab:
            panel_notebook(lab.root / "link.ipynb", 'vt.module("lfo1", "lfo")\n')
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                with open_notebook(browser, lab.notebook_url("link.ipynb")) as page:
                    root = page.locator(".vt-panel").first
                    button = root.locator("[data-vt-link]")
                    out["before"] = button.get_attribute("aria-pressed")
                    button.click()
                    page.wait_for_function(
                        "() => document.querySelector('.vt-panel [data-vt-link]').getAttribute('aria-pressed') === 'true'"
                        " && document.querySelector('.vt-panel [data-vt-peers]').dataset.vtPeers === '0'",
                        timeout=30_000,
                    )
                    out["alone"] = root.locator("[data-vt-peers]").inner_text()
                    # the scheduler measures the session while the transport runs
                    root.locator("[data-vt-transport]").click()
                    page.wait_for_function(
                        "() => document.querySelector('.vt-panel [data-vt-transport]').getAttribute('aria-pressed') === 'true'",
                        timeout=10_000,
                    )
                    peer = subprocess.Popen([sys.executable, "-c", PEER], stdout=subprocess.PIPE, text=True)
                    try:
                        page.wait_for_function(
                            "() => document.querySelector('.vt-panel [data-vt-peers]').dataset.vtPeers === '1'", timeout=30_000
                        )
                        out["with_peer"] = root.locator("[data-vt-peers]").inner_text()
                        Path(artifacts).mkdir(parents=True, exist_ok=True)
                        root.locator(".vt-clock").screenshot(path=str(Path(artifacts) / "panel-link.png"))
                    finally:
                        peer.kill()
                        peer.wait(5)
                    root.locator("[data-vt-transport]").click()
                    button.click()
                    page.wait_for_function(
                        "() => document.querySelector('.vt-panel [data-vt-link]').getAttribute('aria-pressed') === 'false'",
                        timeout=30_000,
                    )
                    out["after"] = button.get_attribute("aria-pressed")
                    out["peers_text_after"] = root.locator("[data-vt-peers]").inner_text()
                browser.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
