"""Shared fixtures: databases (SQLite and the real PostgreSQL), clocks, appliances.

PostgreSQL: each test gets a fresh schema in the server on 127.0.0.1:5432
(database ``test``, trust auth; override with ``VMS_TEST_PG``, which ``deploy/dev.sh test`` sets to a
role and database of its own where that trust login is refused), dropped after
the test.  Where the server is unreachable the test is skipped, except with
``CI=true``, where it fails: CI must never report a skipped check as passing.
"""

from __future__ import annotations

import os
import secrets
import uuid
from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.packets import Packet, StreamInfo
from vms.clock import FakeClock

PG_URL = os.environ.get("VMS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_component(what: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing real component is a failure, not a skip)")
    pytest.skip(what)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def _pg_schema_url() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        missing_component(f"PostgreSQL at {PG_URL} is unreachable: {exc.orig.__class__.__name__}")
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", admin, schema


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A URL of an empty database, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.db'}"
        return
    url, admin, schema = _pg_schema_url()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'index.db'}"


@pytest.fixture
def postgres_url() -> str:
    url, admin, schema = _pg_schema_url()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


H264_EXTRADATA = bytes.fromhex("0164001fffe100196764001facd9405005bb011000000300100000030300f18319601000468ebecb22c0")


def stream_info(**kw) -> StreamInfo:
    base = dict(codec="h264", width=1280, height=720, fps=Fraction(15), time_base=Fraction(1, 90000),
                extradata=H264_EXTRADATA)
    base.update(kw)
    return StreamInfo(**base)


def synthetic_packets(start_us: int, seconds: float, *, fps: int = 15, gop: int = 15, size: int = 2000,
                      seed: int | None = None) -> list[Packet]:
    """Packets with realistic timing (not decodable video; for format tests)."""
    rnd = secrets.token_bytes if seed is None else None
    out = []
    step_us = 1_000_000 // fps
    for i in range(int(seconds * fps)):
        data = rnd(size) if rnd else bytes((i * 7 + j + (seed or 0)) % 256 for j in range(size))
        out.append(Packet(data, start_us + i * step_us, i * 90000 // fps, i * 90000 // fps, i % gop == 0, 90000 // fps))
    return out


def write_config(data_dir: Path, cameras: list[dict] | None = None, **top) -> Path:
    import tomli_w

    doc = {"data_dir": ".", "node_id": "test-node", **top}
    if cameras:
        doc["cameras"] = cameras
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    path = data_dir / "vms.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


@pytest.fixture
def appliance_factory(tmp_path, fake_clock):
    """Build an initialised appliance (config, master key, migrated database)."""
    from storage.keys import write_key_file
    from vms.appliance import Appliance

    made = []

    def make(cameras: list[dict] | None = None, *, database_url: str | None = None, clock=None, **top):
        data_dir = tmp_path / f"appliance{len(made)}"
        if database_url:
            top["database_url"] = database_url
        cfg = write_config(data_dir, cameras, **top)
        write_key_file(data_dir / "keys" / "master.key")
        app = Appliance.open(cfg, clock=clock or fake_clock)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def appliance(appliance_factory):
    """An appliance on SQLite with two cameras (14 and 30 days) and a fake clock."""
    return appliance_factory(
        [
            {"id": "entrance", "source": "rtsp://127.0.0.1:1/entrance", "retain_days": 14},
            {"id": "hall", "source": "rtsp://127.0.0.1:1/hall", "retain_days": 30},
        ]
    )
