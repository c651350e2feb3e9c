"""Re-parses a session file every ~0.5 ms until a stop file appears; prints what it saw.

    python _reader.py PATH STOPFILE

Self-contained (no vtkernel import) so it starts fast. A read is "torn" if
the bytes are not JSON or the checksum does not match; "missing" if the
file is not there. Prints one JSON line: {"ok", "torn", "missing", "versions"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time


def main() -> None:
    path, stop = sys.argv[1], sys.argv[2]
    ok = torn = missing = 0
    versions: set[int] = set()
    print("ready", flush=True)
    while not os.path.exists(stop):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            missing += 1
            continue
        try:
            obj = json.loads(data)
            checksum = obj.pop("checksum")
            canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
            good = checksum == "sha256:" + hashlib.sha256(canonical).hexdigest()
        except (ValueError, KeyError, AttributeError):
            good = False
        if good:
            ok += 1
            versions.add(obj["version"])
        else:
            torn += 1
        time.sleep(0.0005)
    print(json.dumps({"ok": ok, "torn": torn, "missing": missing, "versions": len(versions)}), flush=True)


if __name__ == "__main__":
    main()
