"""The panel's front end: one ES module per part, joined without a build step (shells/panel.py `bundle`).

Node runs the modules themselves (each imports on its own, as real ES modules) and the joined
module anywidget loads; the browser tests run the same joined module in JupyterLab.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shells.panel import MODULES, STATIC, bundle

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def node(script: str, tmp_path: Path) -> str:
    path = tmp_path / "run.mjs"
    path.write_text(script)
    done = subprocess.run([str(NODE), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_node
def test_each_module_is_an_es_module_node_can_import_on_its_own(tmp_path: Path) -> None:
    script = "".join(
        f"console.log(JSON.stringify([{json.dumps(m)}, Object.keys(await import({json.dumps((STATIC / m).as_uri())}))]));\n"
        for m in MODULES
    )
    exports = dict(json.loads(line) for line in node(script, tmp_path).splitlines())
    assert exports["panel.js"] == ["default"]
    assert exports["patch.js"] == ["applyPatch"]
    assert "VtClient" in exports["client.js"] and "Editor" in exports["editor.js"]


@needs_node
def test_the_joined_module_is_what_anywidget_loads(tmp_path: Path) -> None:
    (tmp_path / "panel.mjs").write_text(bundle())
    out = node(
        "const m = await import('./panel.mjs');"
        "console.log(JSON.stringify([Object.keys(m), typeof m.default.initialize, typeof m.default.render]));",
        tmp_path,
    )
    assert json.loads(out) == [["default"], "function", "function"]
    text = bundle()
    for hook in ("data-vt-param", "data-vt-command", "data-vt-script"):
        assert hook in text
    assert "import {" not in text  # every import was between our own modules


@needs_node
def test_the_mirror_applies_rfc_6902(tmp_path: Path) -> None:
    patch = json.dumps((STATIC / "patch.js").as_uri())
    out = node(
        f"""const {{ applyPatch }} = await import({patch});
const doc = {{ modules: {{ a: {{ params: {{ rate: 1 }} }} }}, connections: [1, 3] }};
const next = applyPatch(doc, [
  {{ op: "replace", path: "/modules/a/params/rate", value: 2 }},
  {{ op: "add", path: "/connections/1", value: 2 }},
  {{ op: "add", path: "/modules/b~1c", value: {{}} }},
  {{ op: "move", from: "/modules/a", path: "/modules/d" }},
  {{ op: "test", path: "/connections", value: [1, 2, 3] }},
]);
let bad = null;
try {{ applyPatch(doc, [{{ op: "remove", path: "/modules/zz" }}]); }} catch (e) {{ bad = e.message; }}
console.log(JSON.stringify([next, doc.modules.a.params.rate, bad]));""",
        tmp_path,
    )
    next_doc, old_rate, bad = json.loads(out)
    assert next_doc == {"modules": {"b/c": {}, "d": {"params": {"rate": 2}}}, "connections": [1, 2, 3]}
    assert old_rate == 1  # the old document is untouched (views may still hold it)
    assert bad == "no member zz to remove"


def test_bundle_refuses_a_module_order_or_names_that_would_break_the_joined_module(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export function one() { return 1; }\n")
    (tmp_path / "b.js").write_text('import { one } from "./a.js";\nexport default { one };\n')
    (tmp_path / "c.js").write_text("export const one = 2;\n")
    assert "function one()" in bundle(tmp_path, ("a.js", "b.js"))
    with pytest.raises(ValueError, match="not an earlier module"):
        bundle(tmp_path, ("b.js", "a.js"))
    with pytest.raises(ValueError, match="defined by both"):
        bundle(tmp_path, ("a.js", "c.js", "b.js"))
    (tmp_path / "d.js").write_text('import { two } from "./a.js";\nexport default {};\n')
    with pytest.raises(ValueError, match="does not define it"):
        bundle(tmp_path, ("a.js", "d.js"))
