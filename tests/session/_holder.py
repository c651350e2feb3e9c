"""A tiny kernel stand-in for the session tests: opens a session in its own process.

    python _holder.py PATH [--fork-child]

Opens PATH with a real engine, makes a few changes, saves, prints one JSON
line {"pid", "version", "child"} and then waits for stdin to close (then it
closes the session cleanly) or for a signal. With --fork-child it forks a
child that sleeps, the way a multiprocessing worker would.
"""

from __future__ import annotations

import json
import os
import sys
import time

from vtkernel.engine import Engine
from vtkernel.protocol import AddModule, SetParam
from vtkernel.session import SessionManager


def main() -> None:
    path = sys.argv[1]
    engine = Engine().start()
    manager = SessionManager(engine, report=lambda line: print(line, file=sys.stderr, flush=True))
    manager.open(path)
    if "lfo_holder" not in engine.snapshot.doc.modules:
        engine.call(AddModule(name="lfo_holder", type="lfo"))
    engine.call(SetParam(module="lfo_holder", param="rate", value=7.0))
    manager.save()
    child = 0
    if "--fork-child" in sys.argv:
        ready_r, ready_w = os.pipe()
        child = os.fork()
        if child == 0:  # the at-fork hooks have run by the time fork returns here
            os.write(ready_w, b"!")
            time.sleep(60)
            os._exit(0)
        os.read(ready_r, 1)  # report only once the child is really running
    print(json.dumps({"pid": os.getpid(), "version": engine.version, "child": child}), flush=True)
    sys.stdin.read()
    manager.close()
    engine.stop()


if __name__ == "__main__":
    main()
