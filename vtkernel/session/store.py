"""One session file on disk: crash-safe writes, rotating backups, recovery on load.

Files, for a session `NAME`:

- `NAME`: the current version.
- `NAME.1`, `NAME.2`, `NAME.3`: the last good versions before it, newest
  first. Each backup is its own inode: the main file is hard-linked to
  `NAME.1` only just before a new main file replaces it, so nothing that
  rewrites the main file in place can reach a backup.
- `NAME.corrupt`: a damaged main file moved aside (the newest one only).
  A corrupt file never enters the backup rotation.
- `.NAME.tmp-*`: a save in progress; left only by a crash, removed on open.

What a store will touch (the rule for crafted paths):

- `NAME` itself must be a regular file or absent. A symbolic link, a FIFO,
  a device or a directory at `NAME` is refused with `io_error` before
  anything is read, written or renamed (`check_session_path`): a session
  never follows a link to replace its target, and never blocks opening a
  FIFO. Links in the *directories* above `NAME` are fine (they are
  resolved once, when the session is opened).
- A file at `NAME` that is not recognisably a session file (it does not
  start like one: a JSON object whose first key is `checksum` or that names
  `vtkernel.session`) is never moved aside, rotated or overwritten: the
  store refuses with `session_invalid`. Only a *damaged session file* goes
  to `NAME.corrupt`.

A save: write a temp file in the same directory, `fsync` it, rotate the
backups, `os.replace` it over `NAME`, `fsync` the directory. On Windows a
replace that a reader's open handle refuses is retried for about a second,
and there is no directory to fsync (NTFS journals the rename). A reader (or a
crash) sees the old file or the new one, never a mix. A failed `fsync` is
never retried on the same file: the temp file is dropped, the previous
`NAME` stays, and the error is raised as `io_error`. The next save writes a
new temp file from scratch.

Loading prefers `NAME`; if it is missing or does not decode, the newest
backup that does is used, with a one-line warning naming the file, its
version and its age.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vtkernel.engine.document import Document
from vtkernel.engine.platform import PORTABLE, WINDOWS
from vtkernel.engine.schema import Registry
from vtkernel.protocol import VTError
from vtkernel.session.format import MAX_FILE_BYTES, Decoded, NewerFormatError, decode

BACKUPS = 3
# Not inherited by children, and binary on Windows (where O_CLOEXEC does not exist).
_NOINHERIT = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOINHERIT", 0) | getattr(os, "O_BINARY", 0)
REPLACE_TRIES, REPLACE_FIRST_DELAY = 8, 0.005  # Windows: up to ~1.3 s for a reader to let go
_tmp_counter = itertools.count()


@dataclass(frozen=True)
class FileOps:
    """The system calls a store makes. Tests replace one to inject faults (ENOSPC, EIO, EACCES)."""

    open: Callable[[str, int, int], int] = os.open
    write: Callable[[int, memoryview], int] = os.write
    fsync: Callable[[int], None] = os.fsync
    replace: Callable[[str, str], None] = os.replace
    link: Callable[[str, str], None] = os.link


@dataclass(frozen=True)
class Loaded:
    """What `SessionStore.load` found."""

    version: int
    saved_at: float
    document: Document
    source: Path  # the file the document came from (NAME or a backup)
    warning: str | None = None  # set when it came from a backup or a file was moved aside


class SessionStore:
    """Reads and writes one session file and its backups.

    Owner: one thread at a time, not thread-safe. The thread that opens the
    session uses it until the saver starts; from then on only `vt-saver` does.
    Callers must hold the session lock before `save` or `load(repair=True)`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        registry: Registry,
        *,
        ops: FileOps | None = None,
        backups: int = BACKUPS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        self.registry = registry
        self.ops = ops or FileOps()
        self.backup_paths = [self.path.with_name(f"{self.path.name}.{i}") for i in range(1, backups + 1)]
        self.corrupt_path = self.path.with_name(self.path.name + ".corrupt")
        self._clock = clock
        # (dev, ino, size, mtime_ns) of NAME when we last knew it to be good: a main
        # file that still matches joins the rotation without being re-read.
        self._known_good: tuple[int, int, int, int] | None = None
        self.saved_version: int | None = None

    # ----- writing ----------------------------------------------------------

    def save(self, data: bytes, version: int) -> list[str]:
        """Durably replace NAME with `data`; return notes (e.g. a corrupt file moved aside).

        Raises `VTError("io_error")` and leaves NAME and its backups as they were
        if the data could not be written and synced.
        """
        notes: list[str] = []
        check_session_path(self.path)
        self._refuse_foreign()
        tmp = self._write_temp(data)
        try:
            notes += self._rotate()
            self._step("replacing the file", self._replace, str(tmp), str(self.path))
        except BaseException:
            _unlink(tmp)
            raise
        self._known_good = _signature(self.path)
        try:
            self._fsync_dir()
        except OSError as exc:
            raise VTError(
                "io_error",
                f"saved {self.path.name} version {version}, but syncing its directory failed: "
                f"{_describe(exc)}; it may not survive a power cut",
            ) from None
        self.saved_version = version
        return notes

    def _write_temp(self, data: bytes) -> Path:
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{next(_tmp_counter)}")
        try:
            fd = self.ops.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOINHERIT, 0o666)
        except OSError as exc:
            raise self._io_error("creating a temporary file", exc) from None
        try:
            view = memoryview(data)
            while view:
                n = self.ops.write(fd, view)
                if n <= 0:
                    raise OSError(errno.EIO, "write returned 0 bytes")
                view = view[n:]
        except OSError as exc:
            os.close(fd)
            _unlink(tmp)
            raise self._io_error("writing", exc) from None
        try:
            self.ops.fsync(fd)
        except OSError as exc:
            # Never fsync this file again: after a failed fsync the kernel may have
            # dropped the dirty pages and a second fsync would "succeed".
            os.close(fd)
            _unlink(tmp)
            raise self._io_error("fsync", exc, "the data may not have reached the disk; ") from None
        os.close(fd)
        return tmp

    def _rotate(self) -> list[str]:
        """Shift NAME.1.. down and hard-link NAME to NAME.1, if NAME is a good session file."""
        sig = _signature(self.path)
        if sig is None:
            return []
        if sig != self._known_good:
            problem = self._problem(self.path)
            if problem is not None:
                self._step("moving the corrupt file aside", self._move_aside)
                return [f"{self.path.name} was corrupt ({problem}); moved it to {self.corrupt_path.name}"]
        if not self.backup_paths:
            return []
        for i in range(len(self.backup_paths) - 1, 0, -1):  # NAME.2 -> NAME.3, then NAME.1 -> NAME.2
            newer, older = str(self.backup_paths[i - 1]), str(self.backup_paths[i])
            if os.path.exists(newer):
                self._step("rotating backups", self._replace, newer, older)
        first = self.backup_paths[0]
        link_tmp = first.with_name(f".{first.name}.tmp-{os.getpid()}-{next(_tmp_counter)}")
        try:
            self.ops.link(str(self.path), str(link_tmp))
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise self._io_error("making a backup", exc) from None
            self._copy(self.path, link_tmp)  # a filesystem without hard links
        self._step("making a backup", self._replace, str(link_tmp), str(first))
        return []

    def _copy(self, src: Path, dst: Path) -> None:
        try:
            data = src.read_bytes()
            fd = self.ops.open(str(dst), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOINHERIT, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[self.ops.write(fd, view) :]
                self.ops.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            _unlink(dst)
            raise self._io_error("making a backup", exc) from None

    def _move_aside(self) -> None:
        self._replace(str(self.path), str(self.corrupt_path))
        self._known_good = None

    def _replace(self, src: str, dst: str) -> None:
        """`os.replace`, retried briefly where a reader's open handle can refuse it (Windows).

        On Windows, replacing a file that another process has open without
        FILE_SHARE_DELETE (a reader, an indexer, an antivirus scan) fails
        with PermissionError for as long as that handle lives, usually
        milliseconds. POSIX never refuses a rename for an open file, so there
        a PermissionError is a real one and is raised at once.
        """
        delay = REPLACE_FIRST_DELAY
        for attempt in range(REPLACE_TRIES):
            try:
                self.ops.replace(src, dst)
                return
            except PermissionError:
                if not (WINDOWS or PORTABLE) or attempt == REPLACE_TRIES - 1:
                    raise
                time.sleep(delay)
                delay *= 2

    def _fsync_dir(self) -> None:
        if WINDOWS:
            return  # no directory handles to fsync; NTFS journals the rename itself
        fd = os.open(str(self.path.parent), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.ops.fsync(fd)
        finally:
            os.close(fd)

    def _step(self, what: str, fn: Callable[..., None], *args: str) -> None:
        try:
            fn(*args)
        except OSError as exc:
            raise self._io_error(what, exc) from None

    def _io_error(self, what: str, exc: OSError, consequence: str = "") -> VTError:
        kept = "the previous file is unchanged"
        if self.saved_version is not None:
            kept = f"the previous version (v{self.saved_version}) is intact"
        return VTError(
            "io_error", f"could not save {self.path.name}: {what} failed: {_describe(exc)}; {consequence}{kept}"
        )

    # ----- reading ----------------------------------------------------------

    def load(self, *, repair: bool = False) -> Loaded | None:
        """The newest valid version: NAME, else the newest valid backup. None if there is no file at all.

        With `repair` (the caller holds the session lock) a corrupt NAME is moved
        to NAME.corrupt and stale temp files are removed. Raises session_invalid
        if files exist but none is valid, or if NAME is from a newer vtkernel.
        """
        check_session_path(self.path)
        if repair:
            self._refuse_foreign()
            self.remove_stale_temps()
        problems: list[str] = []
        main_problem: str | None = None
        if self.path.exists():
            try:
                sig = _signature(self.path)
                decoded = self._decode(self.path)
            except NewerFormatError as exc:
                raise VTError("session_invalid", f"{self.path}: {exc.message}") from None
            except VTError as exc:
                main_problem = exc.message
                problems.append(f"{self.path.name}: {exc.message}")
            else:
                self._known_good = sig
                self.saved_version = decoded.version
                return Loaded(decoded.version, decoded.saved_at, decoded.document, self.path)
        for backup in self.backup_paths:
            if not backup.exists():
                continue
            try:
                decoded = self._decode(backup)
            except VTError as exc:
                problems.append(f"{backup.name}: {exc.message}")
                continue
            age = age_text(self._clock() - decoded.saved_at)
            if main_problem is None:
                what = f"{self.path.name} is missing"
            else:
                what = f"{self.path.name} is unreadable ({main_problem})"
                if repair:
                    self._step("moving the corrupt file aside", self._move_aside)
                    what += f"; moved it to {self.corrupt_path.name}"
            warning = f"{what}; recovered version {decoded.version} from backup {backup.name}, saved {age}"
            return Loaded(decoded.version, decoded.saved_at, decoded.document, backup, warning)
        if not problems:
            return None
        raise VTError("session_invalid", f"{self.path} has no valid version: " + "; ".join(problems))

    def _decode(self, path: Path) -> Decoded:
        try:
            data = _read_regular(path, MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise VTError("session_invalid", f"cannot read: {_describe(exc)}") from None
        return decode(data, self.registry)

    def _refuse_foreign(self) -> None:
        """Raise if NAME exists but is not (even a damaged) session file: it is not ours to move or replace."""
        try:
            head = _read_regular(self.path, 4096)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise VTError("io_error", f"cannot use {self.path}: {_describe(exc)}") from None
        if not looks_like_session(head) and self.saved_version is None:  # never ours in this binding
            raise VTError(
                "session_invalid",
                f"{self.path} is not a vtkernel session file; refusing to replace it (choose another name)",
            )

    def _problem(self, path: Path) -> str | None:
        """Why `path` is not a valid session file, or None if it is."""
        try:
            self._decode(path)
        except NewerFormatError:
            return None  # not ours to judge: keep it in the rotation rather than call it corrupt
        except VTError as exc:
            return exc.message
        return None

    def remove_stale_temps(self) -> None:
        """Delete temp files a crashed save left behind (hold the session lock)."""
        prefixes = [f".{p.name}.tmp-" for p in (self.path, *self.backup_paths[:1])]
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return
        for name in names:
            if any(name.startswith(prefix) for prefix in prefixes):
                _unlink(self.path.parent / name)


def check_session_path(path: Path) -> None:
    """Refuse a `NAME` that is not a regular file or absent (see the module docstring). Never blocks."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise VTError("io_error", f"cannot use {path}: {_describe(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        raise VTError(
            "io_error",
            f"{path} is a symbolic link (to {target}); sessions are regular files: open {target} itself if you mean it",
        )
    if not stat.S_ISREG(st.st_mode):
        raise VTError("io_error", f"{path} is {_kind(st.st_mode)}, not a regular file; a session must be a regular file")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


_SESSION_HEADS = (b'{"checksum"', b'{"format"')


def looks_like_session(head: bytes) -> bool:
    """Whether bytes that begin a file are the beginning of a session file (damaged or not)."""
    text = head.lstrip()
    if not text.strip(b"\0"):
        return True  # empty or zero-filled: a file whose data never reached the disk
    compact = b"".join(text[:64].split())
    if any(compact.startswith(h) or h.startswith(compact) for h in _SESSION_HEADS):
        return True  # also a file cut short inside its first key
    return b'"vtkernel.session"' in text


def _read_regular(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of `path`, which must be a regular file: no link followed, no FIFO blocked on."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    if os.path.islink(path):  # O_NOFOLLOW does not exist everywhere
        raise OSError(errno.ELOOP, "is a symbolic link")
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"is {_kind(mode)}, not a regular file")
        chunks = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _describe(exc: OSError) -> str:
    if exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return f"{exc.strerror or os.strerror(exc.errno)} ({name})"


def age_text(seconds: float) -> str:
    """'12 s ago', '3 min ago', '2.5 h ago', '4 days ago'."""
    if seconds < 0:
        return "in the future (clock skew?)"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


__all__ = ["BACKUPS", "FileOps", "Loaded", "SessionStore", "age_text", "check_session_path", "looks_like_session"]
