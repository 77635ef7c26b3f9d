"""Benchmarks: each prints figures, last line one JSON object.  Not pass/fail tests."""
