"""Session files: format, crash-safe storage with backups, the session lock, the saver thread.

`SessionManager` is what the kernel uses (`open`, `save`, `load`, `close`,
`status`, `from_env`); the other modules are its parts:

- `format`: the versioned, checksummed JSON file format (never executes anything);
- `store`: atomic writes, rotating backups, recovery on load;
- `lock`: one kernel per session (`flock` on `NAME.lock`);
- `saver`: the `vt-saver` thread that autosaves published snapshots.

See SPEC §7 and docs/architecture.md.
"""

from vtkernel.session.format import FORMAT_TAG, FORMAT_VERSION, Decoded, Encoder, decode, encode
from vtkernel.session.lock import Holder, SessionLock, Takeover
from vtkernel.session.manager import (
    ENV_SESSION,
    ENV_SESSION_DIR,
    SessionManager,
    SessionStatus,
    default_session_path,
)
from vtkernel.session.saver import Saver, SaverStatus
from vtkernel.session.store import FileOps, Loaded, SessionStore

__all__ = [
    "ENV_SESSION",
    "ENV_SESSION_DIR",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "Decoded",
    "Encoder",
    "FileOps",
    "Holder",
    "Loaded",
    "Saver",
    "SaverStatus",
    "SessionLock",
    "SessionManager",
    "SessionStatus",
    "SessionStore",
    "Takeover",
    "decode",
    "default_session_path",
    "encode",
]
