"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``).

They live in the core now (:mod:`msadam.benchmarking.timing`, also used by ``msadam bench``);
this module re-exports them so the scripts keep their ``from timing import ...``.
"""

from __future__ import annotations

from msadam.benchmarking.timing import BYTES_PER_PARAM, interleaved, median_seconds

__all__ = ["BYTES_PER_PARAM", "interleaved", "median_seconds"]
