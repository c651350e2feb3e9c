"""What the package says about the systems it runs on, and the CI that checks it (issue 9)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_the_metadata_names_the_three_systems_and_the_python_it_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    systems = {c for c in project["classifiers"] if c.startswith("Operating System ::")}
    assert systems == {
        "Operating System :: MacOS",
        "Operating System :: Microsoft :: Windows",
        "Operating System :: POSIX :: Linux",
    }
    assert "psutil" in " ".join(project["dependencies"])  # the lock's liveness check off Linux


def test_the_workflow_runs_the_test_command_on_ubuntu_macos_and_windows_and_once_forced_portable() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    job = flow["jobs"]["test"]
    matrix = job["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert any(inc.get("portable") and inc["os"] == "ubuntu-latest" for inc in matrix["include"])
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "bash scripts/test.sh" in runs and "python -m pytest" in runs
    assert job["env"]["VTKERNEL_PORTABLE"] == "${{ matrix.portable && '1' || '' }}"


def test_the_workflow_is_valid_for_github_actions() -> None:
    """Against the published workflow schema (vendored in check-jsonschema: no network)."""
    tool = shutil.which("check-jsonschema")
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]' brings it)")
    out = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_wheel_carries_the_license(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("vtkernel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names), names
