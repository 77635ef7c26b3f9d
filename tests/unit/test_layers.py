"""The layout keeps its rules: import-linter's contracts (pyproject.toml, [tool.importlinter]) hold, the top
level is what the README names, and no module grows past what one can read in a sitting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MAX_MODULE_LINES = 520  # "no module over ~500 lines" (docs/architecture.md)


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    r = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_top_level_layout():
    visible = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} - {"vms_appliance.egg-info"}
    assert visible == {"vms", "storage", "api", "testkit", "deploy", "tests", "bench", "docs", "pyproject.toml",
                       "README.md"}


def test_modules_stay_small():
    too_long = []
    for package in ("api", "vms", "storage", "testkit", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            n = len(path.read_text().splitlines())
            if n > MAX_MODULE_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not too_long, too_long
