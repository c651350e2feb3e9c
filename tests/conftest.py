"""Shared fixtures: a real vtkernel through jupyter_client over real ZMQ, and a protocol-v1 client.

The kernelspec is installed into a temporary prefix and found through
`JUPYTER_PATH`, exactly as a user's install would be.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

ROOT = Path(__file__).resolve().parents[1]


# The tests `scripts/test.sh`'s second, forced-portable pass leaves out (marked `platform_neutral`).
# That pass exists to run the portable twins (docs/platforms.md): the waker, the lock, liveness, the
# hand-off. A module listed with None starts no engine, runtime, kernel or session and names none of
# the twins' modules (tests/test_hygiene.py checks its text); one listed with a reason does reach a
# twin, and the reason says where that twin is tested in the portable pass instead.
PLATFORM_NEUTRAL: dict[str, str | None] = {
    "tests/patterns/test_core.py": None,
    "tests/patterns/test_differential.py": None,
    "tests/patterns/test_mini.py": None,
    "tests/patterns/test_properties.py": None,
    "tests/live/test_live_analysis.py": None,
    "tests/test_benchmark_runner.py": None,
    "tests/test_hygiene.py": None,
    "tests/test_packaging.py": None,
    "tests/test_platforms.py": None,
    "tests/test_notebooks.py": (
        "the examples' kernels take the same portable paths as every kernel test, which the portable pass runs;"
        " the notebooks are what they show, and the native pass runs them"
    ),
    "tests/kernel/test_acks_under_load.py": (
        "the flood's cost is the hub's iopub budget, which no twin touches; the waker twin under a kernel is run by"
        " every kernel test of the portable pass, and alone by tests/engine/test_platform.py"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if path.is_relative_to(ROOT) and path.relative_to(ROOT).as_posix() in PLATFORM_NEUTRAL:
            item.add_marker(pytest.mark.platform_neutral)


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Install the `vtkernel` kernelspec into a temp prefix; point JUPYTER_PATH at it."""
    prefix = tmp_path_factory.mktemp("prefix")
    from vtkernel.kernel.install import install

    install(prefix=str(prefix))
    path = str(prefix / "share" / "jupyter")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = path + (os.pathsep + old if old else "")
    return path


class Kernel:
    """A running vtkernel: its manager, a client for cells, and helpers."""

    def __init__(self, km: Any, kc: Any) -> None:
        self.km = km
        self.kc = kc

    @property
    def connection_file(self) -> str:
        return str(self.km.connection_file)

    def execute(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Run a cell and return {'status', 'stdout', 'stderr', 'error', 'outputs'}."""
        out: dict[str, Any] = {"stdout": "", "stderr": "", "outputs": [], "error": None}

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("display_data", "execute_result"):
                out["outputs"].append(content["data"])
            elif kind == "error":
                out["error"] = content

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        out["status"] = reply["content"]["status"]
        if out["status"] == "error" and out["error"] is None:
            out["error"] = reply["content"]
        return out

    def ok(self, code: str, timeout: float = 60) -> str:
        """Run a cell that must succeed; return its stdout."""
        result = self.execute(code, timeout)
        assert result["status"] == "ok", result
        return str(result["stdout"])

    def client(self, **hello: Any) -> VTClient:
        return VTClient(self.km, **hello)

    CELL_RUNNING = "vt-test: the cell is running"

    def start_cell(self, code: str, timeout: float = 30) -> str:
        """Start a cell without waiting for it; return once it is running (it prints a marker first).

        Tests that assert something is served *while* a cell runs must not
        sleep and hope the cell has started: this waits for the marker on iopub.
        """
        msg_id: str = self.kc.execute(f"print({self.CELL_RUNNING!r}, flush=True)\n" + code)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if (
                msg["msg_type"] == "stream"
                and msg["parent_header"].get("msg_id") == msg_id
                and self.CELL_RUNNING in msg["content"].get("text", "")
            ):
                return msg_id
        raise AssertionError("the cell never started running")

    def finish_cell(self, msg_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for the execute_reply of a cell started with `start_cell`."""
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])


def start_kernel(
    env: dict[str, str] | None = None, cwd: str | None = None, stderr: Any = None, extra_arguments: list[str] | None = None
) -> Kernel:
    """`stderr`: a file for the kernel process's own stderr (its log), to assert on.

    `extra_arguments` go on the kernel's command line (`--VTKernel.plugin_wait=1`).
    """
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="vtkernel")
    kwargs: dict[str, Any] = {}
    if stderr is not None:
        kwargs["stderr"] = stderr
    if env is not None:
        kwargs["env"] = {**os.environ, **env}
    if cwd is not None:
        kwargs["cwd"] = cwd
    if extra_arguments is not None:
        kwargs["extra_arguments"] = extra_arguments
    km.start_kernel(**kwargs)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return Kernel(km, kc)


def stop_kernel(k: Kernel) -> None:
    k.kc.stop_channels()
    if k.km.is_alive():
        k.km.shutdown_kernel(now=False)
    k.km.cleanup_resources()


@pytest.fixture
def kernel(jupyter_path: str) -> Iterator[Kernel]:
    """A fresh kernel for one test."""
    k = start_kernel()
    try:
        yield k
    finally:
        stop_kernel(k)


@pytest.fixture(scope="module")
def shared_kernel(jupyter_path: str) -> Iterator[Kernel]:
    """One kernel for a module's tests that do not care about each other's modules."""
    k = start_kernel()
    try:
        yield k
    finally:
        stop_kernel(k)


PLUGIN_TYPE = """
from vtkernel.engine.schema import ModuleType, ParamSpec


class Type(ModuleType):
    type_name = {name!r}
    params = {{"level": ParamSpec("float", 0.5, "a level")}}
    outputs = ("out",)

    def signal(self, p, beat, seconds):
        return p["level"]
"""


def plugin_site(root: Path, plugins: dict[str, str]) -> Path:
    """A directory to put on the path: one distribution whose `vtkernel.modules` entry points are
    `plugins` (module name -> its source, each defining `Type`), in that order."""
    dist = root / "vt_test_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vt-test-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[vtkernel.modules]\n" + "".join(f"{name} = {name}:Type\n" for name in plugins)
    )
    for name, source in plugins.items():
        (root / f"{name}.py").write_text(source)
    return root


def own_client(connection_file: str) -> Any:
    """A client with its own Session: `km.client()` shares one, and two clients that share a
    Session reject each other's iopub copies as replayed ("Duplicate Signature")."""
    from jupyter_client.blocking import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    return kc


class VTClient:
    """A protocol-v1 client over its own jupyter_client connection (its own iopub socket).

    A reader thread collects this comm's messages and keeps a mirror of the
    document by applying deltas with `jsonpatch`; `gaps` counts deltas whose
    base was not the mirror's version.
    """

    def __init__(self, km: Any, shell: str = "test", telemetry: bool = False, **extra: Any) -> None:
        # No wait_for_ready: kernel_info goes to the main shell, which may be busy with a cell.
        self.kc = own_client(km.connection_file)
        self.comm_id = uuid.uuid4().hex
        self.messages: list[dict[str, Any]] = []
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.mirror: dict[str, Any] | None = None
        self.version = -1
        self.gaps = 0
        self.times: list[float] = []
        # Messages on other comm ids of this connection (a second comm a test opened by hand);
        # a comm_close is recorded as {"type": "comm_close"}.
        self.others: dict[str, list[dict[str, Any]]] = {}
        # Everything else this connection saw on iopub: stderr text (tracebacks included), and
        # (the kernel's send time as time.time(), msg_type) of every message, status messages too.
        self.stderr: list[str] = []
        self.iopub: list[tuple[float, str]] = []
        # A zmq socket is not thread-safe: the reader thread sends resyncs while a test sends commands.
        self.send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        hello = {"protocol": 1, "shell": shell, "telemetry": telemetry, **extra}
        # iopub is a subscription socket: resend until the first snapshot arrives (slow joiner).
        self._send_raw("comm_open", {"comm_id": self.comm_id, "target_name": "vtkernel.state", "data": hello})
        deadline = time.monotonic() + 30
        while self.mirror is None:
            if self.wait_for(lambda: self.mirror is not None, 1.0):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("no snapshot from the hub")
            self.send({"type": "resync"})

    def _send_raw(self, msg_type: str, content: dict[str, Any]) -> None:
        msg = self.kc.session.msg(msg_type, content)
        with self.send_lock:
            self.kc.shell_channel.send(msg)

    def send(self, data: Any) -> None:
        self._send_raw("comm_msg", {"comm_id": self.comm_id, "data": data})

    def command(self, command: dict[str, Any], msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        self.send({"type": "command", "id": msg_id, "command": command})
        return msg_id

    def text(self, line: str, msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        self.send({"type": "text", "id": msg_id, "text": line})
        return msg_id

    def reply(self, msg_id: Any, timeout: float = 10) -> dict[str, Any]:
        """The ack or error for `msg_id`."""
        found: list[dict[str, Any]] = []

        def match() -> bool:
            for m in self.messages:
                if m.get("type") in ("ack", "error") and m.get("id") == msg_id:
                    found.append(m)
                    return True
            return False

        assert self.wait_for(match, timeout), f"no reply to {msg_id!r}; got {self.messages[-5:]}"
        return found[0]

    def call(self, command: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        return self.reply(self.command(command), timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def wait_version(self, version: int, timeout: float = 10) -> bool:
        return self.wait_for(lambda: self.version >= version, timeout)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    def _read(self) -> None:
        while not self._stop:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:
                return
            date = msg["header"].get("date")
            self.iopub.append((date.timestamp() if hasattr(date, "timestamp") else time.time(), msg["msg_type"]))
            if msg["msg_type"] == "stream" and msg["content"].get("name") == "stderr":
                self.stderr.append(msg["content"].get("text", ""))
            elif msg["msg_type"] == "error":
                self.stderr.append("\n".join(msg["content"].get("traceback", [])))
            comm_id = msg["content"].get("comm_id") if msg["msg_type"] in ("comm_msg", "comm_close") else None
            if comm_id is not None and comm_id != self.comm_id:
                with self._cond:
                    data = msg["content"].get("data") if msg["msg_type"] == "comm_msg" else {"type": "comm_close"}
                    self.others.setdefault(comm_id, []).append(data)
                    self._cond.notify_all()
                continue
            if msg["msg_type"] == "comm_close" and msg["content"].get("comm_id") == self.comm_id:
                continue
            if msg["msg_type"] != "comm_msg" or msg["content"].get("comm_id") != self.comm_id:
                continue
            data = msg["content"]["data"]
            with self._cond:
                self.messages.append(data)
                self.times.append(time.monotonic())
                self._apply(data)
                self._cond.notify_all()
            self.inbox.put(data)

    def _apply(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "snapshot":
            self.mirror = data["state"]
            self.version = data["version"]
        elif kind == "delta" and self.mirror is not None:
            if data["base"] != self.version:
                self.gaps += 1
                self.send({"type": "resync"})
                return
            self.mirror = jsonpatch.apply_patch(self.mirror, data["ops"])
            self.version = data["version"]

    def close(self) -> None:
        try:
            self._send_raw("comm_close", {"comm_id": self.comm_id, "data": {}})
        except Exception:
            pass
        self._stop = True
        self._reader.join(2)
        self.kc.stop_channels()


@pytest.fixture
def client_factory(kernel: Kernel) -> Iterator[Callable[..., VTClient]]:
    made: list[VTClient] = []

    def make(**hello: Any) -> VTClient:
        c = kernel.client(**hello)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def python() -> str:
    return sys.executable
