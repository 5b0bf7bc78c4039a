"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

BYTES_PER_PARAM = 28  # one float32 Adam step: read w, g, m, v; write w, m, v


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per method, timing one call of each in turn (the first call of each is a warm-up)."""
    for fn in methods.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
