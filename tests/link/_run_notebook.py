"""Execute a notebook with nbclient inside a private network namespace (started by tests/test_notebooks.py).

    unshare -n python tests/link/_run_notebook.py IN.ipynb OUT.ipynb

Prints one JSON object: the error outputs, the rich MIME types shown and the text printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scenario import isolate


def main(src: str, dst: str) -> int:
    isolate()
    path = Path(src)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="vtkernel", timeout=180, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except Exception as exc:  # the error cell is in the outputs; report it rather than a traceback here
        print(f"execution stopped: {type(exc).__name__}", file=sys.stderr)
    nbformat.write(nb, dst)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    print(json.dumps({
        "errors": [o for o in outputs if o.get("output_type") == "error"],
        "rich": sorted({mime for o in outputs for mime in o.get("data", {})}),
        "text": "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
