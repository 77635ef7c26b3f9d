"""Master key files, wrapping and derivation."""

from __future__ import annotations

import os

import pytest

from storage.format.segment import derive_segment_key
from storage.keys.keyring import (
    KeyFileError,
    MasterKeyring,
    UnwrapError,
    read_key_file,
    unwrap,
    wrap,
    write_key_file,
)


def test_key_file_is_0600_and_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "master.key"
    key = write_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_key_file(path) == key
    with pytest.raises(FileExistsError):
        write_key_file(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "master.key"
    write_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path)


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"vms-master-key-v1\nzz\n", b"vms-master-key-v1\nabcd\n"])
def test_damaged_key_file_is_refused(tmp_path, content):
    path = tmp_path / "master.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError) as exc:
        read_key_file(path)
    assert str(path) in str(exc.value)


def test_missing_key_file_says_what_to_do(tmp_path):
    with pytest.raises(KeyFileError, match="vms init"):
        read_key_file(tmp_path / "nope.key")


def test_wrap_binds_purpose_and_master():
    master, other = os.urandom(32), os.urandom(32)
    w = wrap(master, b"k" * 32, "day:cam:2026-01-01")
    assert unwrap(master, w, "day:cam:2026-01-01") == b"k" * 32
    with pytest.raises(UnwrapError):
        unwrap(master, w, "day:cam:2026-01-02")
    with pytest.raises(UnwrapError):
        unwrap(other, w, "day:cam:2026-01-01")


def test_segment_key_depends_on_header_and_salt():
    day = os.urandom(32)
    a = derive_segment_key(day, b"s" * 16, b"header")
    assert a == derive_segment_key(day, b"s" * 16, b"header")
    assert a != derive_segment_key(day, b"t" * 16, b"header")
    assert a != derive_segment_key(day, b"s" * 16, b"headex")


def test_keyring_loads_pending_key(tmp_path):
    path = tmp_path / "master.key"
    write_key_file(path)
    write_key_file(tmp_path / "master.key.new")
    ring = MasterKeyring(path)
    assert len(ring.keys) == 2
