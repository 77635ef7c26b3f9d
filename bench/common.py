"""Helpers shared by the benchmarks: CPU time, output."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import contextmanager


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextmanager
def measure(result: dict, key: str):
    """Store the CPU seconds of the block in result[key] and wall seconds in result[key + '_wall']."""
    c0, w0 = cpu_s(), time.perf_counter()
    yield
    result[key] = cpu_s() - c0
    result[key + "_wall"] = time.perf_counter() - w0


def emit(figures: dict) -> None:
    for k, v in figures.items():
        print(f"{k:32} {v:.4g}" if isinstance(v, float) else f"{k:32} {v}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    sys.stdout.flush()


def machine() -> str:
    return f"{os.cpu_count()} cores, {os.uname().machine}"
