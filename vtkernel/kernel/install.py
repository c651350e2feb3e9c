"""Install the `vtkernel` kernelspec (SPEC §2).

The spec's argv uses this interpreter's absolute path (`sys.executable`), so
VS Code and JupyterLab start the kernel in the environment it was installed
from, whatever their own PATH says.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "vtkernel"


def kernel_json() -> dict[str, object]:
    return {
        "argv": [sys.executable, "-m", "vtkernel", "-f", "{connection_file}"],
        "display_name": "vtkernel (Python 3)",
        "language": "python",
        "interrupt_mode": "signal",
        "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        "metadata": {"debugger": False},
    }


def resource_dir() -> Path:
    """The kernelspec's static files (logos): packaged, or the repo's `kernelspec/` folder."""
    packaged = files("vtkernel").joinpath("_kernelspec")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "kernelspec"


def install(user: bool = False, prefix: str | None = None, sys_prefix: bool = False) -> str:
    if sys_prefix:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as tmp:
        src = resource_dir()
        for item in src.iterdir() if src.is_dir() else []:
            if item.suffix in (".png", ".svg"):
                shutil.copy(item, tmp)
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernel_json(), indent=2))
        return str(KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user, prefix=prefix))
