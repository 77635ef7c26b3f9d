"""Packages at rest (vms/packages.py): encrypted, key wrapped in a 0600 sidecar,
nothing left by a failure, expiry and deletion (key destroyed first)."""

from __future__ import annotations

import os
import stat

import pytest

from storage.format.blobs import BlobError
from storage.keys.keyring import MasterKeyring, write_key_file
from vms.core.errors import DomainError, Kind
from vms.evidence.packages import PackageStore, new_package_id

FACTS = dict(ticket_id="T-1", cameras=("cam",), created_us=10, expires_us=None, filename="e.zip",
             manifest_sha256="0" * 64, key_fingerprint="f" * 64, redacted=False)


@pytest.fixture
def store(tmp_path) -> PackageStore:
    write_key_file(tmp_path / "keys" / "master.key")
    return PackageStore(tmp_path / "exports", MasterKeyring(tmp_path / "keys" / "master.key"))


def make(store, data: bytes, **facts):
    pid = new_package_id()
    with store.create(pid) as pending:
        pending.writer.write(data)
        info = pending.commit(**{**FACTS, **facts})
    return info


def test_round_trip_encrypted_at_rest(store):
    data = b"PK" + os.urandom(3 << 20)
    info = make(store, data)
    assert info.size_bytes == len(data) and info.stored_bytes > len(data)
    assert b"".join(store.open(info.package_id)) == data
    blob = store.blob_path(info.package_id).read_bytes()
    assert data[100:200] not in blob  # no clear footage on disk
    sidecar = store.sidecar_path(info.package_id)
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    assert store.info(info.package_id) == info and store.list() == [info]


def test_failure_leaves_nothing(store):
    pid = new_package_id()
    with pytest.raises(RuntimeError):
        with store.create(pid) as pending:
            pending.writer.write(b"half a package")
            raise RuntimeError("export failed")
    assert list(store.root.iterdir()) == []
    with pytest.raises(DomainError) as exc:
        store.info(pid)
    assert exc.value.kind == Kind.NOT_FOUND


def test_leftovers_of_a_crash_are_removed(store):
    pid = new_package_id()
    pending = store.create(pid)
    pending.writer.write(b"x" * 10)  # process dies here: only the .partial file exists
    info = make(store, b"kept")
    (store.root / f"{new_package_id()}.vpkg").write_bytes(b"orphan without sidecar")
    assert store.remove_partials() == 2
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        [f"{info.package_id}.vpkg", f"{info.package_id}.json"])


def test_expiry_and_deletion(store):
    a = make(store, b"a", expires_us=100)
    b = make(store, b"b")
    store.set_expiry(b.package_id, 300)
    assert [i.package_id for i in store.expired(200)] == [a.package_id]
    deleted = store.delete_expired(200)
    assert [d.package_id for d in deleted] == [a.package_id]
    assert not store.blob_path(a.package_id).exists() and not store.sidecar_path(a.package_id).exists()
    with pytest.raises(DomainError):
        store.open(a.package_id)
    assert b"".join(store.open(b.package_id)) == b"b"


def test_damaged_package_is_reported_with_its_chunk(store):
    info = make(store, os.urandom(3 << 20))
    path = store.blob_path(info.package_id)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 1
    path.write_bytes(raw)
    with pytest.raises(BlobError) as exc:
        b"".join(store.open(info.package_id))
    assert exc.value.chunk == 2  # 3 MiB = chunks 0, 1 and 2 (the last one full, with the last flag)


def test_ids_are_checked(store):
    with pytest.raises(DomainError) as exc:
        store.info("../../etc/passwd")
    assert exc.value.kind == Kind.INVALID
    info = make(store, b"x")
    with pytest.raises(DomainError) as exc:
        store.create(info.package_id)
    assert exc.value.kind == Kind.CONFLICT
