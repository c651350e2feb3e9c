"""The session file format: round trips, damage, invalid documents, hostile files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import immutables
import pytest
from conftest import make_doc
from hypothesis import HealthCheck, example, given, settings

from vtkernel.engine import Registry, Snapshot
from vtkernel.protocol import VTError
from vtkernel.session.format import (
    FORMAT_TAG,
    Encoder,
    NewerFormatError,
    canonical,
    checksum_of,
    decode,
    encode,
)


def signed(payload: dict[str, Any]) -> bytes:
    """A file with a correct checksum over whatever `payload` holds."""
    body = {k: v for k, v in payload.items() if k != "checksum"}
    return json.dumps({**body, "checksum": checksum_of(body)}).encode()


def payload_of(document: Any, **over: Any) -> dict[str, Any]:
    return {"format": FORMAT_TAG, "format_version": 1, "version": 3, "saved_at": 1.0e9, "document": document, **over}


def invalid(data: bytes, registry: Registry) -> str:
    with pytest.raises(VTError) as info:
        decode(data, registry)
    assert info.value.code == "session_invalid"
    assert "\n" not in info.value.message
    return info.value.message


# ----- round trip ------------------------------------------------------------


def test_a_snapshot_round_trips_with_its_version_and_save_time(registry: Registry) -> None:
    doc = make_doc(5, bpm=133.0)
    data = encode(Snapshot(41, doc), saved_at=1714557785.25)
    version, saved_at, back = decode(data, registry)
    assert (version, saved_at) == (41, 1714557785.25)
    assert back == doc


def test_the_file_is_json_with_the_documented_fields(registry: Registry) -> None:
    data = json.loads(encode(Snapshot(7, make_doc(2)), saved_at=5.0))
    assert set(data) == {"format", "format_version", "version", "saved_at", "document", "checksum"}
    assert data["format"] == "vtkernel.session" and data["format_version"] == 1 and data["version"] == 7
    assert data["checksum"].startswith("sha256:") and data["checksum"] == checksum_of(data)
    assert data["document"] == json.loads(json.dumps(make_doc(2).to_json()))


def test_the_checksum_is_over_the_canonical_serialization() -> None:
    data = json.loads(encode(Snapshot(7, make_doc(4)), saved_at=5.0))
    body = {k: v for k, v in data.items() if k != "checksum"}
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    assert canonical(body) == expected
    import hashlib

    assert data["checksum"] == "sha256:" + hashlib.sha256(expected).hexdigest()


def test_whitespace_does_not_matter_only_values_do(registry: Registry) -> None:
    data = json.loads(encode(Snapshot(7, make_doc(3)), saved_at=5.0))
    assert decode(json.dumps(data, indent=4).encode(), registry).version == 7


def test_the_incremental_encoder_writes_the_same_bytes_as_a_fresh_one() -> None:
    enc = Encoder()
    doc = make_doc(600)
    lfo = doc.modules["lfo4"]
    steps = [
        doc,  # first encode: everything new
        doc._replace(modules=doc.modules.set("lfo7", lfo)),  # same names, one module changed
        doc._replace(modules=doc.modules.set("lfo7", lfo)),  # nothing changed
        doc._replace(modules=doc.modules.delete("lfo3").set("zz", lfo)),  # one removed, one added
        doc._replace(modules=doc.modules.delete("lfo3")),  # one removed
        doc._replace(modules=immutables.Map()),  # all gone
        doc,
    ]
    for version, step in enumerate(steps):
        assert enc.encode(version, step, 6.0) == Encoder().encode(version, step, 6.0)


# ----- damage ----------------------------------------------------------------


def test_a_truncated_file_is_invalid_and_says_it_ends_early(registry: Registry) -> None:
    data = encode(Snapshot(3, make_doc(3)))
    message = invalid(data[: len(data) // 2], registry)
    assert "truncated" in message


def test_an_empty_file_is_invalid(registry: Registry) -> None:
    assert "empty" in invalid(b"", registry)


def test_a_flipped_byte_fails_the_checksum(registry: Registry) -> None:
    data = bytearray(encode(Snapshot(3, make_doc(3))))
    at = data.index(b'"rate":') + len(b'"rate":')
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    assert "checksum mismatch" in invalid(bytes(data), registry)


def test_a_wrong_format_tag_is_not_a_session_file(registry: Registry) -> None:
    payload = payload_of(make_doc(1).to_json(), format="something.else")
    assert "not a session file" in invalid(signed(payload), registry)


def test_a_file_from_a_newer_vtkernel_asks_for_an_upgrade(registry: Registry) -> None:
    with pytest.raises(NewerFormatError) as info:
        decode(signed(payload_of(make_doc(1).to_json(), format_version=2)), registry)
    assert info.value.code == "session_invalid" and "upgrade vtkernel" in info.value.message


def test_a_damaged_format_version_reads_as_corrupt_not_as_newer(registry: Registry) -> None:
    data = encode(Snapshot(3, make_doc(1))).replace(b'"format_version":1', b'"format_version":9')
    with pytest.raises(VTError) as info:
        decode(data, registry)
    assert not isinstance(info.value, NewerFormatError) and "checksum" in info.value.message


def test_older_formats_are_upgraded_through_the_migration_table(registry: Registry) -> None:
    """The documented path to format_version 2, exercised with a pretend version 2."""

    def migrate_1_to_2(payload: dict[str, Any]) -> dict[str, Any]:
        payload["format_version"] = 2
        payload["document"]["clock"]["bpm"] = 99.0  # something visible
        return payload

    v1 = encode(Snapshot(3, make_doc(2)))
    version, _, doc = decode(v1, registry, migrations={1: migrate_1_to_2}, current=2)
    assert version == 3 and doc.clock.bpm == 99.0
    with pytest.raises(VTError, match="no migration"):
        decode(v1, registry, migrations={}, current=2)


# ----- invalid documents: same rules as commands, naming the field -----------


def test_an_unknown_module_type_names_the_module(registry: Registry) -> None:
    doc = make_doc(2).to_json()
    doc["modules"]["wobble"] = {"type": "theremin", "params": {}}
    message = invalid(signed(payload_of(doc)), registry)
    assert "modules.wobble.type" in message and "theremin" in message


def test_an_out_of_range_param_names_the_field(registry: Registry) -> None:
    doc = make_doc(2).to_json()
    doc["modules"]["lfo1"]["params"]["rate"] = -3
    message = invalid(signed(payload_of(doc)), registry)
    assert "lfo1.rate" in message and "-3" in message


def test_an_unknown_param_names_the_field(registry: Registry) -> None:
    doc = make_doc(2).to_json()
    doc["modules"]["lfo1"]["params"]["vaule"] = 1
    assert "modules.lfo1.params.vaule" in invalid(signed(payload_of(doc)), registry)


def test_a_connection_to_an_unknown_port_is_invalid(registry: Registry) -> None:
    doc = make_doc(2).to_json()
    doc["connections"].append({"src": "lfo0.out", "dst": "lfo1.nope"})
    assert "nope" in invalid(signed(payload_of(doc)), registry)


def test_unknown_top_level_fields_and_bad_versions_are_refused(registry: Registry) -> None:
    doc = make_doc(1).to_json()
    assert "unknown field 'extra'" in invalid(signed(payload_of(doc, extra=1)), registry)
    assert "version" in invalid(signed(payload_of(doc, version=-1)), registry)
    assert "version" in invalid(signed(payload_of(doc, version=True)), registry)
    assert "saved_at" in invalid(signed(payload_of(doc, saved_at="yesterday")), registry)


# ----- hostile files: nothing is ever executed --------------------------------


class _Boom:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_pickle_is_refused_and_never_unpickled(registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Boom(marker))
    message = invalid(data, registry)
    assert "not" in message and not marker.exists()


def test_code_in_a_json_file_stays_data(registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    doc = make_doc(1).to_json()
    doc["modules"]["evil"] = {"type": code, "params": {"__reduce__": code}}
    doc["__reduce__"] = [code]
    assert "unknown document field '__reduce__'" in invalid(signed(payload_of(doc)), registry)
    del doc["__reduce__"]
    assert "unknown module type" in invalid(signed(payload_of(doc)), registry)
    doc["modules"]["evil"] = {"type": "osc_out", "params": {"host": code}}
    loaded = decode(signed(payload_of(doc)), registry).document  # a string param is just a string
    assert loaded.modules["evil"].params["host"] == code
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [
        b'{"format": "vtkernel.session", "format": "x"}',  # duplicate key
        b'{"format": NaN}',
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
        b'{"version": 1' + b"0" * 5000 + b"}",  # an integer too long to convert
        b"\xff\xfe\x00{",  # not UTF-8
        b'"just a string"',
    ],
    ids=["duplicate-key", "nan", "deep", "huge-int", "binary", "not-an-object"],
)
def test_malformed_json_is_one_clean_error(registry: Registry, data: bytes) -> None:
    invalid(data, registry)


# ----- property: decode never does anything but succeed or say session_invalid ---

VALID = encode(Snapshot(12, make_doc(3)), saved_at=1.0e9)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_refuses(data: bytes, registry: Registry) -> None:
    try:
        decode(data, registry)
    except VTError as exc:
        assert exc.code == "session_invalid" and "\n" not in exc.message


@FAST
@given(st.binary(max_size=600))
def test_random_bytes_never_do_more_than_fail_cleanly(data: bytes) -> None:
    from vtkernel.engine import default_registry

    decodes_or_refuses(data, default_registry())


@FAST
@given(st.data())
def test_mutations_of_a_valid_file_never_do_more_than_fail_cleanly(data: st.DataObject) -> None:
    from vtkernel.engine import default_registry

    blob = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del blob[at:]
        elif kind == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif blob:
            del blob[at : at + data.draw(st.integers(1, 16))]
    decodes_or_refuses(bytes(blob), default_registry())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
module_json = st.fixed_dictionaries(
    {"type": st.sampled_from(["lfo", "seq", "osc_out", "recorder", "nope"]) | json_values},
    optional={
        "params": st.dictionaries(
            st.sampled_from(["rate", "depth", "shape", "steps", "division", "host", "port", "address", "size", "x"]),
            json_values | st.sampled_from(["sine", "saw", "/vt", "0 1 ~ 2", [1, None, 2]]),
            max_size=4,
        )
        | json_values,
        "extra": json_values,
    },
)
document_json = st.fixed_dictionaries(
    {},
    optional={
        "clock": st.fixed_dictionaries({}, optional={"bpm": json_values, "playing": json_values, "meter": json_values})
        | json_values,
        "modules": st.dictionaries(st.sampled_from(["a", "lfo1", "9bad", "", "b.c"]) | st.text(max_size=5), module_json)
        | json_values,
        "connections": st.lists(
            st.fixed_dictionaries({"src": st.sampled_from(["a.out", "lfo1.out", "x"]), "dst": json_values})
            | json_values,
            max_size=3,
        )
        | json_values,
        "version": json_values,
    },
)


@FAST
@given(document_json)
@example({"modules": {"a": {"type": "lfo", "params": {"\n": None}}}})  # found by a CI run: the path broke the line
def test_any_signed_document_validates_or_is_refused_cleanly(document: dict[str, Any]) -> None:
    """Checksum right, content arbitrary: the document rules alone must hold the line."""
    from vtkernel.engine import default_registry

    reg = default_registry()
    data = signed(payload_of(document))
    try:
        version, _, doc = decode(data, reg)
    except VTError as exc:
        assert exc.code == "session_invalid" and "\n" not in exc.message
        return
    assert decode(encode(Snapshot(version, doc)), reg).document == doc  # what loads, saves and reloads
