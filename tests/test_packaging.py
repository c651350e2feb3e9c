"""What the shipped notebooks and the README use is installable in one step: `pip install "vtkernel[lab]"`."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
OWN = {"vtkernel", "shells", "tests"}  # the project's own packages (tests: see the report about notebooks)


def lab_closure() -> set[str]:
    """Every distribution `pip install "vtkernel[lab]"` brings, following installed requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in (*project["dependencies"], *project["optional-dependencies"]["lab"])]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or ()]
        except metadata.PackageNotFoundError:
            pass  # not installed here: its own requirements are unknown, the name itself counts
    return seen


def notebook_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or source.lstrip().startswith("%%"):
            continue
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_notebook_import_comes_with_the_lab_extra() -> None:
    closure = lab_closure()
    dists = metadata.packages_distributions()
    missing = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for module in notebook_imports(nb) - OWN - set(sys.stdlib_module_names):
            provided = {canonicalize_name(d) for d in dists.get(module, [module])}
            if not provided & closure:
                missing[f"{nb.name}: import {module}"] = sorted(provided)
    assert not missing, missing


def test_every_jupyter_command_the_readme_names_comes_with_the_lab_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    assert 'pip install "vtkernel[lab]"' in readme
    providers = {"lab": "jupyterlab", "console": "jupyter-console", "notebook": "notebook", "execute": "nbclient"}
    named = set(re.findall(r"\bjupyter (lab|console|notebook|execute)\b", readme))
    assert "console" in named  # the README tells terminal users about jupyter console
    assert {canonicalize_name(providers[c]) for c in named} <= lab_closure()


def test_the_docs_a_clone_has_are_all_the_docs_it_needs() -> None:
    """README and docs link only to files inside the repository (a clone has no ../shared/SPEC.md)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        assert "shared/SPEC" not in text, f"{page.name} points outside the repository"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists() or ROOT not in resolved.parents:
                broken.append(f"{page.name} -> {target}")
    assert not broken, broken
    contract = (ROOT / "docs" / "document.md").read_text()
    for heading in ("## The document", "## Commands", "## The command language", "## The Python API", "## The terminal shell"):
        assert heading in contract
    assert "docs/document.md" in (ROOT / "README.md").read_text()
