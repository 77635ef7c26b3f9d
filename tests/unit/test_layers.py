"""Dependencies point one way: api -> vms -> storage.  Only the composition root
(vms.cli.commands / vms.cli.services / vms.serve, which start everything) may import api."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
COMPOSITION_ROOT = {"vms/cli/commands.py", "vms/cli/services.py", "vms/serve.py"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package, forbidden", [("storage", {"vms", "api"}), ("vms", {"api"})])
def test_layers_point_one_way(package, forbidden):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in COMPOSITION_ROOT:
            continue
        bad = imported_packages(path) & forbidden
        if bad:
            offenders.append(f"{rel} imports {sorted(bad)}")
    assert not offenders, offenders


def test_top_level_layout():
    visible = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} - {"vms_appliance.egg-info"}
    assert visible == {"vms", "storage", "api", "testkit", "deploy", "tests", "bench", "docs", "pyproject.toml", "README.md"}
