"""Crash-safe writes, backups and recovery, on real files."""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from pathlib import Path

import pytest
from conftest import ObservedOps, make_doc, python_child

from vtkernel.engine import Registry
from vtkernel.protocol import VTError
from vtkernel.session import FileOps, SessionStore
from vtkernel.session.format import Encoder, checksum_of, decode


def save_versions(store: SessionStore, *versions: int, n: int = 3) -> None:
    enc = Encoder()
    for v in versions:
        store.save(enc.encode(v, make_doc(n, bpm=60.0 + v)), v)


def version_of(path: Path, registry: Registry) -> int:
    return decode(path.read_bytes(), registry).version


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ----- rotation -----------------------------------------------------------------


def test_each_save_keeps_exactly_the_last_three_versions_as_backups(tmp_path: Path, registry: Registry) -> None:
    store = SessionStore(tmp_path / "s.vt", registry)
    save_versions(store, 1, 2, 3, 4, 5, 6)
    assert listing(tmp_path) == ["s.vt", "s.vt.1", "s.vt.2", "s.vt.3"]  # no temp files, no s.vt.4
    versions = [version_of(tmp_path / name, registry) for name in ("s.vt", "s.vt.1", "s.vt.2", "s.vt.3")]
    assert versions == [6, 5, 4, 3]


def test_backups_never_share_storage_with_the_main_file(tmp_path: Path, registry: Registry) -> None:
    store = SessionStore(tmp_path / "s.vt", registry)
    save_versions(store, 1, 2, 3, 4)
    inodes = {os.stat(tmp_path / name).st_ino for name in listing(tmp_path)}
    assert len(inodes) == 4
    assert all(os.stat(tmp_path / name).st_nlink == 1 for name in listing(tmp_path))
    # Rewriting the main file in place cannot damage a backup.
    (tmp_path / "s.vt").write_bytes(b"garbage")
    assert version_of(tmp_path / "s.vt.1", registry) == 3


def test_without_hard_links_backups_are_copies(tmp_path: Path, registry: Registry) -> None:
    def no_link(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    store = SessionStore(tmp_path / "s.vt", registry, ops=FileOps(link=no_link))
    save_versions(store, 1, 2, 3)
    assert [version_of(tmp_path / n, registry) for n in ("s.vt", "s.vt.1", "s.vt.2")] == [3, 2, 1]


# ----- recovery -------------------------------------------------------------------


def test_a_truncated_main_file_falls_back_to_the_newest_backup_and_says_which(
    tmp_path: Path, registry: Registry
) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2, 3, 4, 5)
    main = tmp_path / "s.vt"
    main.write_bytes(main.read_bytes()[:200])
    loaded = SessionStore(main, registry).load()
    assert loaded is not None and loaded.version == 4 and loaded.source == tmp_path / "s.vt.1"
    assert loaded.warning is not None
    assert "s.vt is unreadable" in loaded.warning and "truncated" in loaded.warning
    assert "version 4 from backup s.vt.1" in loaded.warning and "s ago" in loaded.warning
    assert main.exists()  # without repair, nothing is moved


def test_the_newest_valid_backup_wins_when_newer_files_are_damaged(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2, 3, 4, 5)
    for name in ("s.vt", "s.vt.1"):
        data = bytearray((tmp_path / name).read_bytes())
        data[-40] ^= 0x01
        (tmp_path / name).write_bytes(bytes(data))
    loaded = SessionStore(tmp_path / "s.vt", registry).load()
    assert loaded is not None and loaded.version == 3 and loaded.source.name == "s.vt.2"


def test_a_missing_main_file_recovers_from_a_backup(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2)
    (tmp_path / "s.vt").unlink()
    loaded = SessionStore(tmp_path / "s.vt", registry).load()
    assert loaded is not None and loaded.version == 1 and "s.vt is missing" in (loaded.warning or "")


def test_no_file_at_all_is_a_new_session(tmp_path: Path, registry: Registry) -> None:
    assert SessionStore(tmp_path / "s.vt", registry).load() is None


def test_with_no_valid_version_at_all_the_error_lists_every_file(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2)
    for name in ("s.vt", "s.vt.1"):
        (tmp_path / name).write_bytes(b"{")
    with pytest.raises(VTError) as info:
        SessionStore(tmp_path / "s.vt", registry).load(repair=True)
    assert info.value.code == "session_invalid"
    assert "no valid version" in info.value.message and "s.vt.1:" in info.value.message
    assert listing(tmp_path) == ["s.vt", "s.vt.1"]  # nothing moved when nothing can replace it


def test_repair_moves_a_corrupt_main_file_aside(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2, 3)
    (tmp_path / "s.vt").write_bytes(b'{"format": "vtkernel.session"')
    loaded = SessionStore(tmp_path / "s.vt", registry).load(repair=True)
    assert loaded is not None and loaded.version == 2
    assert "moved it to s.vt.corrupt" in (loaded.warning or "")
    assert (tmp_path / "s.vt.corrupt").read_bytes() == b'{"format": "vtkernel.session"'
    assert not (tmp_path / "s.vt").exists()


def test_a_corrupt_main_file_never_enters_the_rotation(tmp_path: Path, registry: Registry) -> None:
    store = SessionStore(tmp_path / "s.vt", registry)
    save_versions(store, 1, 2, 3, 4)
    (tmp_path / "s.vt").write_bytes(b"\x00" * 10)  # damaged behind the store's back
    notes = store.save(Encoder().encode(5, make_doc(3)), 5)
    assert (
        len(notes) == 1 and notes[0].startswith("s.vt was corrupt (") and notes[0].endswith("moved it to s.vt.corrupt")
    )
    versions = [version_of(tmp_path / n, registry) for n in ("s.vt", "s.vt.1", "s.vt.2", "s.vt.3")]
    assert versions == [5, 3, 2, 1]
    assert (tmp_path / "s.vt.corrupt").read_bytes() == b"\x00" * 10


def test_a_file_from_a_newer_vtkernel_is_refused_not_replaced(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1, 2)
    payload = json.loads((tmp_path / "s.vt").read_bytes())
    payload["format_version"] = 2
    payload["checksum"] = checksum_of(payload)
    (tmp_path / "s.vt").write_text(json.dumps(payload))
    with pytest.raises(VTError, match="newer vtkernel"):
        SessionStore(tmp_path / "s.vt", registry).load(repair=True)
    assert listing(tmp_path) == ["s.vt", "s.vt.1"]


def test_temp_files_left_by_a_crashed_save_are_removed_on_open(tmp_path: Path, registry: Registry) -> None:
    save_versions(SessionStore(tmp_path / "s.vt", registry), 1)
    (tmp_path / ".s.vt.tmp-999-0").write_bytes(b"half a fi")
    (tmp_path / ".other.vt.tmp-999-0").write_bytes(b"not ours")
    SessionStore(tmp_path / "s.vt", registry).load(repair=True)
    assert listing(tmp_path) == [".other.vt.tmp-999-0", "s.vt"]


# ----- faults: the previous file stays intact, the error is one io_error line ----------


def test_disk_full_while_writing_keeps_the_previous_file(tmp_path: Path, registry: Registry) -> None:
    observed = ObservedOps()
    store = SessionStore(tmp_path / "s.vt", registry, ops=observed.ops())
    save_versions(store, 1, 2)
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    observed.fail["write"] = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(VTError) as info:
        save_versions(store, 3)
    assert info.value.code == "io_error"
    assert "No space left on device (ENOSPC)" in info.value.message
    assert "previous version (v2) is intact" in info.value.message
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before  # and no temp file


def test_a_failed_fsync_is_reported_and_never_retried_on_the_same_file(tmp_path: Path, registry: Registry) -> None:
    observed = ObservedOps()
    store = SessionStore(tmp_path / "s.vt", registry, ops=observed.ops())
    save_versions(store, 1)
    before = (tmp_path / "s.vt").read_bytes()
    observed.fail["fsync"] = OSError(errno.EIO, os.strerror(errno.EIO))
    observed.calls.clear()
    with pytest.raises(VTError) as info:
        save_versions(store, 2)
    assert info.value.code == "io_error" and "fsync failed" in info.value.message
    assert "may not have reached the disk" in info.value.message
    assert [name for name, _ in observed.calls].count("fsync") == 1
    assert (tmp_path / "s.vt").read_bytes() == before and listing(tmp_path) == ["s.vt"]
    # The next save starts over with a new temp file, and catches up.
    del observed.fail["fsync"]
    observed.calls.clear()
    save_versions(store, 3)
    assert [name for name, _ in observed.calls][:3] == ["open", "write", "fsync"]
    assert version_of(tmp_path / "s.vt", registry) == 3


def test_a_failed_directory_fsync_is_reported(tmp_path: Path, registry: Registry) -> None:
    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)

    store = SessionStore(tmp_path / "s.vt", registry, ops=FileOps(fsync=fsync))
    with pytest.raises(VTError, match="syncing its directory failed"):
        save_versions(store, 1)
    assert store.saved_version is None  # not counted as durable


def test_permission_denied_is_one_clear_line(tmp_path: Path, registry: Registry) -> None:
    observed = ObservedOps()
    observed.fail["open"] = OSError(errno.EACCES, os.strerror(errno.EACCES))
    with pytest.raises(VTError) as info:
        save_versions(SessionStore(tmp_path / "s.vt", registry, ops=observed.ops()), 1)
    assert info.value.code == "io_error"
    assert info.value.message == (
        "could not save s.vt: creating a temporary file failed: Permission denied (EACCES); "
        "the previous file is unchanged"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_directory_is_an_io_error(tmp_path: Path, registry: Registry) -> None:
    store = SessionStore(tmp_path / "s.vt", registry)
    save_versions(store, 1)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(VTError, match="Permission denied"):
            save_versions(store, 2)
    finally:
        tmp_path.chmod(0o755)
    assert version_of(tmp_path / "s.vt", registry) == 1


# ----- atomicity, seen from another process --------------------------------------------


def test_a_reader_parsing_every_half_millisecond_never_sees_a_torn_file(tmp_path: Path, registry: Registry) -> None:
    store = SessionStore(tmp_path / "s.vt", registry)
    enc = Encoder()
    doc = make_doc(300)  # ~25 KB: big enough that an in-place write would be seen half done
    store.save(enc.encode(0, doc), 0)
    stop = tmp_path / "stop"
    reader = python_child("_reader.py", str(tmp_path / "s.vt"), str(stop))
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        for v in range(1, 201):
            doc = type(doc)(doc.clock, doc.modules.set(f"lfo{v % 300}", doc.modules["lfo7"]), doc.connections)
            store.save(enc.encode(v, doc), v)
            time.sleep(0.0005)  # pace the writer so the reader interleaves with every save
        stop.touch()
        out, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["torn"] == 0 and seen["missing"] == 0, (seen, err)
    assert seen["ok"] > 50 and seen["versions"] > 5, seen  # it really did read during the saves
    assert version_of(tmp_path / "s.vt", registry) == 200
