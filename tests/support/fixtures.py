"""Shared fixtures: databases (SQLite and the real PostgreSQL), clocks, appliances.

PostgreSQL: each test gets a fresh schema in the server on 127.0.0.1:5432
(database ``test``, trust auth; override with ``VMS_TEST_PG``, which ``deploy/dev.sh test`` sets to a
role and database of its own where that trust login is refused), dropped after
the test.  Where the server is unreachable the test is skipped, except with
``CI=true``, where it fails: CI must never report a skipped check as passing.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from testkit.appliance import make_appliance
from vms.core.clock import FakeClock

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


@pytest.fixture
def appliance_factory(tmp_path, fake_clock):
    """Build an initialised appliance (config, master key, migrated database)."""
    made = []

    def make(cameras: list[dict] | None = None, *, database_url: str | None = None, clock=None, **top):
        app = make_appliance(tmp_path / f"appliance{len(made)}", cameras, database_url=database_url,
                             clock=clock or fake_clock, **top)
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
