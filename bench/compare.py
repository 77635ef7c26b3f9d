"""One benchmark on two checkouts in the same run, alternating, so a shared noisy machine loads both alike.

    .venv/bin/python -m bench.compare OLD_DIR NEW_DIR [--rounds 2] -- bench.segments --minutes 20

OLD_DIR and NEW_DIR are checkouts (e.g. ``git worktree add ../old REV``); each side runs with its own
``.venv/bin/python`` when it has one, else with this interpreter, and with the checkout as working directory,
so it imports that checkout's code.  Each round runs old then new (odd rounds) or new then old (even rounds).
Every numeric figure of the benchmark's last line (its JSON object) is reported per side as its best value over
the rounds (lowest for times and CPU, highest for rates: keys ending in ``_per_s``, ``_mb_s``, ``x_realtime`` or ``rps``)
and as new/old.  Last line: one JSON object ``{"benchmark", "old", "new", "new_over_old"}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HIGHER_IS_BETTER = ("_per_s", "_mb_s", "x_realtime", "rps", "_gb_s", "per_s")


def run_side(checkout: Path, module_args: list[str]) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    exe = str(python) if python.exists() else sys.executable
    proc = subprocess.run([exe, "-m", *module_args], cwd=checkout, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: {' '.join(module_args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"{checkout}: the benchmark's last line is not one JSON object") from None


def best(rounds: list[dict]) -> dict:
    out = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        if not values:
            continue
        out[key] = max(values) if key.endswith(HIGHER_IS_BETTER) else min(values)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: python -m bench.compare OLD_DIR NEW_DIR [--rounds N] -- bench.NAME [ARGS]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(prog="bench.compare")
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv[:cut])
    module_args = argv[cut + 1:]
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    results: dict[str, list[dict]] = {"old": [], "new": []}
    for i in range(args.rounds):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        for side in order:
            results[side].append(run_side(sides[side], module_args))
            print(f"round {i + 1} {side}: {json.dumps(results[side][-1])}", flush=True)
    old, new = best(results["old"]), best(results["new"])
    ratio = {k: round(new[k] / old[k], 3) for k in old if k in new and old[k]}
    for k in sorted(ratio):
        print(f"{k:40s} old {old[k]:>14.4g}  new {new[k]:>14.4g}  new/old {ratio[k]:.3f}")
    print(json.dumps({"benchmark": " ".join(module_args), "old": old, "new": new, "new_over_old": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
