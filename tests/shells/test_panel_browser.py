"""The GUI panel in a real JupyterLab, driven by headless Chromium (SPEC §4 `vt.panel()`).

One JupyterLab server and one notebook for the module: the notebook declares
a few modules and shows two panels. A second jupyter_client, attached to the
same kernel through its connection file, plays "the kernel side": it checks
what the panel did and makes changes the panel must show.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import ROOT, VTClient
from tests.shells.lab import (
    DARK,
    LIGHT,
    LabServer,
    browser_available,
    notebook_page,
    open_notebook,
    panel_notebook,
    run_command,
    set_theme,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(browser_available() is not None, reason=str(browser_available())),
]

ARTIFACTS = ROOT / "test-artifacts"
SETUP = """\
vt.module("lfo1", "lfo", rate=2.0, depth=1.0, shape="sine")
vt.module("lfo2", "lfo", rate=0.5, shape="saw")
vt.module("s1", "seq", steps=[60, None, 62, 64], division=4)
vt.connect("lfo1.out", "lfo2.depth")
vt.module("drums", "pattern", pattern="bd*2 [~ sd]")
"""


@pytest.fixture(scope="module")
def lab(jupyter_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with LabServer(tmp_path_factory.mktemp("lab"), jupyter_path) as server:
        panel_notebook(server.root / "panels.ipynb", SETUP, panels=2, after=["vt.graph()"])
        yield server


@pytest.fixture(scope="module")
def page(lab: LabServer) -> Iterator[Any]:
    with notebook_page(lab.notebook_url("panels.ipynb"), panels=2) as page:
        yield page


@pytest.fixture(scope="module")
def kernel_side(lab: LabServer, page: Any) -> Iterator[VTClient]:
    """A protocol client on the notebook's kernel, through its own jupyter_client connection."""
    client = VTClient(SimpleNamespace(connection_file=lab.connection_file("panels.ipynb")), shell="other")
    yield client
    client.close()


def panel(page: Any, n: int = 0) -> Any:
    return page.locator(".vt-panel").nth(n)


def param(page: Any, name: str, n: int = 0) -> Any:
    return panel(page, n).locator(f'[data-vt-param="{name}"]')


def value_in_kernel(client: VTClient, module: str, name: str) -> Any:
    return (client.mirror or {}).get("modules", {}).get(module, {}).get("params", {}).get(name)


def wait_kernel(client: VTClient, module: str, name: str, expected: Any, timeout: float = 5) -> None:
    assert client.wait_for(lambda: value_in_kernel(client, module, name) == expected, timeout), (
        f"{module}.{name} is {value_in_kernel(client, module, name)!r} in the kernel, expected {expected!r}"
    )


def wait_input(page: Any, selector: str, expected: str, timeout_ms: float = 1000, n: int = 0) -> None:
    page.wait_for_function(
        "([sel, n, want]) => { const el = document.querySelectorAll('.vt-panel')[n]?.querySelector(sel);"
        " return !!el && el.value === want; }",
        arg=[selector, n, expected],
        timeout=timeout_ms,
    )


def wait_panels_at(page: Any, version: int, timeout_ms: float = 5000) -> None:
    """Every panel's mirror has reached `version` (the delta that carries it has been applied)."""
    page.wait_for_function(
        "(v) => [...document.querySelectorAll('.vt-panel')].every((p) => Number(p.dataset.vtVersion) >= v)",
        arg=version,
        timeout=timeout_ms,
    )


def shell_reply(client: VTClient, msg_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = client.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return dict(reply)


def test_the_panel_renders_the_current_document(page: Any) -> None:
    assert param(page, "lfo1.rate").input_value() == "2"
    assert param(page, "lfo1.depth").input_value() == "1"
    assert param(page, "lfo2.shape").input_value() == "saw"
    assert param(page, "s1.steps").input_value() == "60 ~ 62 64"
    assert param(page, "s1.division").input_value() == "4"
    assert panel(page).locator('[data-vt-clock="bpm"]').input_value() == "120"
    assert "lfo1.out → lfo2.depth" in " ".join(panel(page).locator(".vt-connections").inner_text().split())
    # every param of every module has exactly one hooked input, in both panels
    for n in (0, 1):
        hooks = panel(page, n).locator("[data-vt-param]").evaluate_all("els => els.map(e => e.dataset.vtParam)")
        assert sorted(hooks) == sorted(
            [
                "lfo1.rate",
                "lfo1.depth",
                "lfo1.shape",
                "lfo2.rate",
                "lfo2.depth",
                "lfo2.shape",
                "s1.steps",
                "s1.division",
                "drums.pattern",
                "drums.cycle",
            ]
        )


def edit_rate_and_shape(page: Any, kernel_side: VTClient) -> None:
    """A number typed and committed with Enter, then a choice picked: each must reach the kernel.

    Shared with the Notebook 7 tests, which check the same path in the other frontend."""
    rate = param(page, "lfo1.rate")
    rate.fill("4.5")
    rate.press("Enter")
    wait_kernel(kernel_side, "lfo1", "rate", 4.5)

    param(page, "lfo1.shape").select_option("square")
    wait_kernel(kernel_side, "lfo1", "shape", "square")


def test_editing_inputs_changes_the_kernel(page: Any, kernel_side: VTClient) -> None:
    edit_rate_and_shape(page, kernel_side)

    steps = param(page, "s1.steps")
    steps.fill("60 ~ 67*2")
    steps.press("Enter")
    wait_kernel(kernel_side, "s1", "steps", [60, None, 67, 67])
    wait_panels_at(page, kernel_side.version)
    steps.fill("[1, null, 3]")
    steps.press("Enter")
    wait_kernel(kernel_side, "s1", "steps", [1, None, 3])


def test_a_rejected_value_is_explained_next_to_its_input(page: Any, kernel_side: VTClient) -> None:
    depth = param(page, "lfo2.depth")
    before = value_in_kernel(kernel_side, "lfo2", "depth")
    depth.fill("7")
    depth.press("Enter")
    error = panel(page).locator('[data-vt-error-for="lfo2.depth"]')
    assert depth.get_attribute("aria-describedby") == error.get_attribute("id")
    error.wait_for(timeout=3000)
    assert "lfo2.depth must be <= 1" in error.inner_text()
    assert depth.get_attribute("aria-invalid") == "true"
    assert value_in_kernel(kernel_side, "lfo2", "depth") == before
    depth.fill("0.25")
    depth.press("Enter")
    wait_kernel(kernel_side, "lfo2", "depth", 0.25)
    page.wait_for_function("() => !document.querySelector('.vt-panel [data-vt-param=\"lfo2.depth\"][aria-invalid]')")


def test_a_kernel_side_change_appears_in_every_panel_within_one_second(page: Any, kernel_side: VTClient) -> None:
    start = time.monotonic()
    reply = kernel_side.call({"op": "set_param", "module": "lfo2", "param": "rate", "value": 3.25})
    assert reply["type"] == "ack"
    for n in (0, 1):
        wait_input(page, '[data-vt-param="lfo2.rate"]', "3.25", timeout_ms=1000, n=n)
    assert time.monotonic() - start < 1.0

    # and a cell run from another client
    msg_id = kernel_side.kc.execute('vt.module("lfo2", "lfo", shape="triangle")')
    for n in (0, 1):
        wait_input(page, '[data-vt-param="lfo2.shape"]', "triangle", timeout_ms=1000, n=n)
    assert shell_reply(kernel_side, msg_id)["content"]["status"] == "ok"


def test_two_panels_stay_in_sync(page: Any, kernel_side: VTClient) -> None:
    param(page, "lfo1.rate", n=1).fill("6.5")
    param(page, "lfo1.rate", n=1).press("Enter")
    wait_input(page, '[data-vt-param="lfo1.rate"]', "6.5", timeout_ms=2000, n=0)
    wait_kernel(kernel_side, "lfo1", "rate", 6.5)


def test_the_command_line_shows_one_result_per_command(page: Any, kernel_side: VTClient) -> None:
    cmd = panel(page).locator("[data-vt-command]")
    results = panel(page).locator(".vt-entry-result")
    before = results.count()

    def run(line: str) -> str:
        return run_command(page, line)

    assert re.fullmatch(r"ok v\d+", run("set lfo1.depth 0.5"))
    wait_kernel(kernel_side, "lfo1", "depth", 0.5)
    assert run("get lfo1.depth") == "0.5"
    assert run("set lfo1.depth 7").startswith("error [invalid_value] lfo1.depth must be <= 1")
    assert results.last.get_attribute("data-vt-result") == "error"
    assert run("frobnicate").startswith("error [invalid_command]")
    assert results.count() == before + 4
    # the panel's own control follows a change made from its command line
    wait_input(page, '[data-vt-param="lfo1.depth"]', "0.5", n=0)
    # history: up recalls the previous commands, down comes back to an empty line
    cmd.press("ArrowUp")
    assert cmd.input_value() == "frobnicate"
    cmd.press("ArrowUp")
    assert cmd.input_value() == "set lfo1.depth 7"
    cmd.press("ArrowDown")
    cmd.press("ArrowDown")
    assert cmd.input_value() == ""


def test_a_report_from_the_kernel_is_shown_in_the_command_log(page: Any, kernel_side: VTClient, tmp_path: Path) -> None:
    """Issue 12 #11: a watched file's error reaches the panel's log, not only the cell that watched it."""
    patch = tmp_path / "broken.py"
    patch.write_text("x = (\n")  # nothing in it applies, so the other tests' document is untouched
    msg_id = kernel_side.kc.execute(f"%vt watch {patch}")  # another shell's cell: this panel only hears the report
    assert shell_reply(kernel_side, msg_id)["content"]["status"] == "ok"
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.vt-panel')[0].querySelectorAll('.vt-entry[data-vt-source=file]')]"
            ".some((e) => e.textContent.includes('SyntaxError'))",
            timeout=5000,
        )
        entry = panel(page).locator(".vt-entry[data-vt-source=file]").last
        assert entry.locator(".vt-entry-cmd").inner_text() == "file:"
        assert entry.locator(".vt-entry-result").get_attribute("data-vt-result") == "error"
        assert "broken.py, line 1: SyntaxError" in entry.locator(".vt-entry-result").inner_text()
    finally:
        msg_id = kernel_side.kc.execute(f"%vt unwatch {patch}")
        assert shell_reply(kernel_side, msg_id)["content"]["status"] == "ok"


def test_the_script_view_follows_changes_and_edit_mode_keeps_user_text(page: Any, kernel_side: VTClient) -> None:
    script = panel(page).locator("[data-vt-script]")
    assert script.get_attribute("readonly") is not None
    reply = kernel_side.call({"op": "add_module", "name": "lfo9", "type": "lfo", "params": {"rate": 9.5}})
    assert reply["type"] == "ack"
    page.wait_for_function(
        "() => document.querySelector('.vt-panel [data-vt-script]').value.includes('\"lfo9\"')", timeout=1000
    )

    # EDIT mode: what the user types is never replaced by a change from elsewhere
    panel(page).get_by_role("button", name="Edit").click()
    assert script.get_attribute("readonly") is None
    edited = script.input_value().replace("rate=9.5", "rate=8.5")
    script.fill(edited)
    reply = kernel_side.call({"op": "set_param", "module": "lfo1", "param": "rate", "value": 1.5})
    wait_input(page, '[data-vt-param="lfo1.rate"]', "1.5", n=0)
    # the script message follows its delta: wait for it, then the user's text must still be there
    page.wait_for_function(
        "() => document.querySelector('.vt-panel .vt-mode').textContent.includes('kernel now at')", timeout=2000
    )
    assert script.input_value() == edited

    # Cancel returns to the live view, which shows the newest script
    panel(page).get_by_role("button", name="Cancel").click()
    assert script.get_attribute("readonly") is not None
    assert "rate=1.5" in script.input_value() and "rate=9.5" in script.input_value()

    # Apply runs the edited script in the kernel
    panel(page).get_by_role("button", name="Edit").click()
    script.fill(script.input_value().replace("rate=9.5", "rate=8.5"))
    panel(page).get_by_role("button", name="Apply").click()
    wait_kernel(kernel_side, "lfo9", "rate", 8.5, timeout=10)
    page.wait_for_function("() => document.querySelector('.vt-panel').dataset.vtScriptMode === 'view'", timeout=5000)


def test_a_dragged_slider_is_not_yanked_back_by_changes_from_elsewhere(page: Any, kernel_side: VTClient) -> None:
    slider = panel(page).locator('[data-vt-slider="lfo2.depth"]')
    slider.dispatch_event("pointerdown")
    # the user drags to 0.3 ...
    slider.evaluate("(el) => { el.value = '300'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
    wait_kernel(kernel_side, "lfo2", "depth", 0.3)
    # ... while someone else sets 0.9: the other panel shows it, the dragged one keeps the thumb
    kernel_side.call({"op": "set_param", "module": "lfo2", "param": "depth", "value": 0.9})
    wait_input(page, '[data-vt-param="lfo2.depth"]', "0.9", n=1)
    assert param(page, "lfo2.depth").input_value() == "0.3"
    assert slider.input_value() == "300"
    # letting go shows the newest value
    page.evaluate("() => window.dispatchEvent(new PointerEvent('pointerup'))")
    wait_input(page, '[data-vt-param="lfo2.depth"]', "0.9", n=0)


def test_the_panel_is_served_while_a_cell_runs(page: Any, kernel_side: VTClient) -> None:
    msg_id = kernel_side.kc.execute("import time; time.sleep(4)")
    page.wait_for_function("() => document.querySelector('.jp-Notebook') !== null")
    rate = param(page, "lfo2.rate")
    rate.fill("1.75")
    start = time.monotonic()
    rate.press("Enter")
    wait_kernel(kernel_side, "lfo2", "rate", 1.75, timeout=2)
    assert time.monotonic() - start < 1.0
    assert shell_reply(kernel_side, msg_id, timeout=10)["content"]["status"] == "ok"


def test_controls_are_labelled_and_reachable_by_keyboard(page: Any, kernel_side: VTClient) -> None:
    unlabelled = panel(page).evaluate(
        """(root) => [...root.querySelectorAll('input, select, textarea, button')].filter((el) => {
            const byFor = el.id && root.querySelector(`label[for="${el.id}"]`);
            const name = el.getAttribute('aria-label') || (byFor && byFor.textContent.trim()) || el.textContent.trim();
            return !name;
        }).map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    # keyboard: focus the rate input, type a value, Enter; arrows move a slider
    rate = param(page, "lfo1.rate")
    rate.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("2.5", delay=30)
    page.keyboard.press("Enter")
    wait_kernel(kernel_side, "lfo1", "rate", 2.5)
    wait_panels_at(page, kernel_side.version)
    assert rate.input_value() == "2.5"
    slider = panel(page).locator('[data-vt-slider="lfo1.depth"]')
    slider.focus()
    before = slider.input_value()
    page.keyboard.press("ArrowLeft")
    assert slider.input_value() != before


def test_a_typed_number_is_a_draft_until_enter_and_is_never_overwritten(page: Any, kernel_side: VTClient) -> None:
    rate = param(page, "lfo1.rate")
    rate.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    # someone else changes the same param while the user is typing
    reply = kernel_side.call({"op": "set_param", "module": "lfo1", "param": "rate", "value": 3.0})
    assert reply["type"] == "ack"
    wait_panels_at(page, reply["version"])
    assert param(page, "lfo1.rate", n=1).input_value() == "3"  # the other panel shows it
    assert rate.input_value() == "2"  # the draft is not overwritten
    page.keyboard.type(".5")
    assert rate.input_value() == "2.5"
    assert value_in_kernel(kernel_side, "lfo1", "rate") == 3.0  # keystrokes are not commands
    page.keyboard.press("Enter")
    wait_kernel(kernel_side, "lfo1", "rate", 2.5)
    assert kernel_side.version == reply["version"] + 1  # the whole draft was one command
    wait_panels_at(page, kernel_side.version)
    assert rate.input_value() == "2.5"
    # an arrow key is a step: it commits at once
    page.keyboard.press("ArrowUp")
    wait_kernel(kernel_side, "lfo1", "rate", 3.5)
    # Escape drops a draft and shows the kernel's value
    page.keyboard.type("9")
    page.keyboard.press("Escape")
    wait_input(page, '[data-vt-param="lfo1.rate"]', "3.5")
    assert value_in_kernel(kernel_side, "lfo1", "rate") == 3.5


def pianoroll_blocks(page: Any, module: str) -> dict[str, int]:
    """Row label -> number of hap blocks in that row of `module`'s pianoroll in the first panel."""
    return dict(
        page.evaluate(
            """(m) => { const svg = document.querySelector(`.vt-panel [data-vt-pianoroll="${m}"] svg`);
                const rows = {}; const labels = [...svg.querySelectorAll('text[text-anchor="end"]')];
                for (const r of svg.querySelectorAll('rect')) {
                    if (!r.hasAttribute('data-vt-hap')) continue;
                    const y = Number(r.getAttribute('y')) + Number(r.getAttribute('height')) / 2;
                    const label = labels.reduce((a, t) => Math.abs(Number(t.getAttribute('y')) - 3.5 - y) <
                        Math.abs(Number(a.getAttribute('y')) - 3.5 - y) ? t : a);
                    rows[label.textContent] = (rows[label.textContent] || 0) + 1;
                }
                return Object.entries(rows); }""",
            module,
        )
    )


def test_a_pattern_param_is_edited_as_text_with_its_parse_error_inline(page: Any, kernel_side: VTClient) -> None:
    pattern = param(page, "drums.pattern")
    assert pattern.input_value() == "bd*2 [~ sd]"
    # the pianoroll of the next 4 cycles: 2 bd and 1 sd per cycle
    page.wait_for_function("() => document.querySelector('.vt-panel [data-vt-pianoroll=\"drums\"] svg')", timeout=5000)
    assert pianoroll_blocks(page, "drums") == {"bd": 8, "sd": 4}
    # a parse error: one line naming the column, next to the field; the typed text stays
    pattern.fill("bd*2 [~ sd")
    pattern.press("Enter")
    error = panel(page).locator('[data-vt-error-for="drums.pattern"]')
    page.wait_for_function(
        "() => document.querySelector('.vt-panel [data-vt-error-for=\"drums.pattern\"]').textContent !== ''", timeout=5000
    )
    assert "column 11" in error.inner_text() and "\n" not in error.inner_text()
    assert pattern.get_attribute("aria-invalid") == "true"
    assert value_in_kernel(kernel_side, "drums", "pattern") == "bd*2 [~ sd]"
    # ... even after leaving the field and a change to the same module from elsewhere
    panel(page).locator("[data-vt-command]").focus()
    reply = kernel_side.call({"op": "set_param", "module": "drums", "param": "cycle", "value": 8.0})
    wait_panels_at(page, reply["version"])
    assert pattern.input_value() == "bd*2 [~ sd"
    # fixed: accepted, the error goes, the pianoroll redraws from the kernel's new haps
    pattern.fill("hh*4")
    pattern.press("Enter")
    wait_kernel(kernel_side, "drums", "pattern", "hh*4")
    page.wait_for_function(
        "() => document.querySelector('.vt-panel [data-vt-pianoroll=\"drums\"]').dataset.vtHaps === '16'", timeout=5000
    )
    assert pianoroll_blocks(page, "drums") == {"hh": 16}
    assert error.inner_text() == "" and pattern.get_attribute("aria-invalid") is None
    # a change from elsewhere redraws it too
    reply = kernel_side.call({"op": "set_param", "module": "drums", "param": "pattern", "value": "<bd sd> cp"})
    wait_input(page, '[data-vt-param="drums.pattern"]', "<bd sd> cp", timeout_ms=3000)
    page.wait_for_function(
        "() => document.querySelector('.vt-panel [data-vt-pianoroll=\"drums\"]').dataset.vtHaps === '8'", timeout=5000
    )
    assert pianoroll_blocks(page, "drums") == {"bd": 2, "sd": 2, "cp": 4}
    kernel_side.call({"op": "set_param", "module": "drums", "param": "cycle", "value": 0.0})


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_the_pianoroll_is_drawn_in_the_themes_colours_with_a_moving_playhead(page: Any, kernel_side: VTClient, theme: str) -> None:
    set_theme(page, theme)
    kernel_side.call({"op": "set_param", "module": "drums", "param": "pattern", "value": "bd*2 [~ sd], hh*4"})
    page.wait_for_function(
        "() => document.querySelector('.vt-panel [data-vt-pianoroll=\"drums\"]').dataset.vtHaps === '28'", timeout=5000
    )
    roll = panel(page).locator('[data-vt-pianoroll="drums"]')
    colors = roll.evaluate(
        """(el) => { let node = el, bg = 'rgba(0, 0, 0, 0)';
            while (node && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) { bg = getComputedStyle(node).backgroundColor; node = node.parentElement; }
            return {bg, text: getComputedStyle(el.querySelector('svg text')).fill}; }"""
    )
    assert abs(_luminance(colors["text"]) - _luminance(colors["bg"])) > 0.5, colors
    # playing: the playhead shows and moves with the telemetry's beat
    kernel_side.call({"op": "play"})
    try:
        head = '.vt-panel [data-vt-pianoroll="drums"] [data-vt-playhead]'
        page.wait_for_function(f"() => document.querySelector('{head}').getAttribute('visibility') === 'visible'", timeout=5000)
        x0 = float(page.locator(head).first.get_attribute("x1") or 0)
        page.wait_for_function(f"(x) => Number(document.querySelector('{head}').getAttribute('x1')) > x + 5", arg=x0, timeout=5000)
        ARTIFACTS.mkdir(exist_ok=True)
        slug = "dark" if theme == DARK else "light"
        panel(page).locator('[data-vt-module="drums"]').screenshot(path=str(ARTIFACTS / f"pianoroll-{slug}.png"))
    finally:
        kernel_side.call({"op": "stop"})
        if theme == DARK:
            set_theme(page, LIGHT)


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_screenshots_in_light_and_dark_themes(page: Any, theme: str) -> None:
    set_theme(page, theme)
    colors = panel(page).evaluate(
        "(el) => { const s = getComputedStyle(el); const i = getComputedStyle(el.querySelector('[data-vt-command]'));"
        " return {bg: s.backgroundColor, fg: s.color, inputBg: i.backgroundColor, inputFg: i.color}; }"
    )
    contrast = abs(_luminance(colors["fg"]) - _luminance(colors["bg"]))
    assert contrast > 0.5, colors
    assert abs(_luminance(colors["inputFg"]) - _luminance(colors["inputBg"])) > 0.5, colors
    if theme == DARK:
        assert _luminance(colors["bg"]) < 0.3, colors
    else:
        assert _luminance(colors["bg"]) > 0.7, colors
    ARTIFACTS.mkdir(exist_ok=True)
    slug = "dark" if theme == DARK else "light"
    panel(page).scroll_into_view_if_needed()
    panel(page).screenshot(path=str(ARTIFACTS / f"panel-{slug}.png"))
    page.screenshot(path=str(ARTIFACTS / f"lab-{slug}.png"))
    assert Path(ARTIFACTS / f"panel-{slug}.png").stat().st_size > 10_000
    if theme == DARK:
        set_theme(page, LIGHT)


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_the_patch_picture_is_drawn_in_the_themes_text_colour(page: Any, theme: str) -> None:
    set_theme(page, theme)
    picture = page.locator('.jp-OutputArea-output svg[aria-label="vtkernel patch"]').first
    picture.wait_for(timeout=10_000)  # inline, not an <img>: there currentColor is always black
    colors = picture.evaluate(
        """(svg) => {
            let node = svg, bg = 'rgba(0, 0, 0, 0)';
            while (node && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                bg = getComputedStyle(node).backgroundColor; node = node.parentElement;
            }
            const names = [...svg.querySelectorAll('text')].filter((t) => t.textContent === 'lfo1');
            return {bg, text: getComputedStyle(names[0]).fill};
        }"""
    )
    assert abs(_luminance(colors["text"]) - _luminance(colors["bg"])) > 0.5, colors
    slug = "dark" if theme == DARK else "light"
    ARTIFACTS.mkdir(exist_ok=True)
    picture.scroll_into_view_if_needed()
    picture.screenshot(path=str(ARTIFACTS / f"patch-{slug}.png"))
    if theme == DARK:
        set_theme(page, LIGHT)


def test_the_panel_reports_its_version(page: Any, kernel_side: VTClient) -> None:
    version = panel(page).get_attribute("data-vt-version")
    assert version is not None and int(version) <= kernel_side.version
    page.wait_for_function(
        "(v) => Number(document.querySelector('.vt-panel').dataset.vtVersion) === v",
        arg=kernel_side.version,
        timeout=2000,
    )
    assert json.loads(version) > 0


RESTART_SETUP = 'vt.module("old1", "lfo", rate=2.0)\n'


def test_a_kernel_restart_is_shown_and_the_panel_resubscribes_to_the_new_kernel(lab: LabServer, page: Any) -> None:
    """Its own notebook, kernel and page: the other tests' kernel keeps running."""
    panel_notebook(lab.root / "restart.ipynb", RESTART_SETUP, panels=1)
    with open_notebook(page.context.browser, lab.notebook_url("restart.ipynb")) as rpage:
        root = rpage.locator(".vt-panel").first
        assert run_command(rpage, "get old1.rate") == "2.0"
        statuses = rpage.evaluate(
            """() => { const seen = []; const root = document.querySelector('.vt-panel');
                new MutationObserver(() => seen.push(root.dataset.vtStatus)).observe(root, {attributes: true,
                attributeFilter: ['data-vt-status']}); window.__vtSeen = seen; return seen; }"""
        )
        assert statuses == []
        rpage.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart(); }")
        # it says so, then subscribes to the new kernel through a comm of its own
        rpage.wait_for_function("() => window.__vtSeen.includes('disconnected')", timeout=20_000)
        rpage.wait_for_function(
            "() => document.querySelector('.vt-panel').dataset.vtStatus === 'live' && "
            "document.querySelector('.vt-panel .vt-notice').textContent.includes('Reconnected')",
            timeout=30_000,
        )
        # commands answer (they hung at "…" before) and reach the new kernel
        assert re.fullmatch(r"ok v\d+", run_command(rpage, "add fresh1 lfo rate=4"))
        new_kernel = VTClient(SimpleNamespace(connection_file=lab.connection_file("restart.ipynb")), shell="other")
        try:
            assert value_in_kernel(new_kernel, "fresh1", "rate") == 4.0
        finally:
            new_kernel.close()
        assert root.locator('[data-vt-param="fresh1.rate"]').input_value() == "4"
        # a kernel that is shut down: the panel says so and a command fails at once instead of hanging
        rpage.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }")
        rpage.wait_for_function("() => document.querySelector('.vt-panel').dataset.vtStatus === 'disconnected'", timeout=20_000)
        assert run_command(rpage, "get fresh1.rate").startswith("error [disconnected]")
        ARTIFACTS.mkdir(exist_ok=True)
        root.screenshot(path=str(ARTIFACTS / "panel-disconnected.png"))


def test_the_link_toggle_joins_a_session_and_shows_its_peers() -> None:
    """In a private network namespace (Link multicasts on every interface): its own JupyterLab and browser."""
    from tests.link.test_link_sync import namespace_problem

    why = namespace_problem()
    if why is not None:
        pytest.skip(why)
    out = subprocess.run(
        ["unshare", "-n", sys.executable, str(Path(__file__).with_name("_panel_link.py")), str(ARTIFACTS)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"before": "false", "alone": "0 peers", "with_peer": "1 peer", "after": "false", "peers_text_after": ""}
