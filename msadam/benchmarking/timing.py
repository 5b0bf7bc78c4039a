"""Timing: medians of interleaved calls, and the memory-bandwidth bound of an Adam step."""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["BANDWIDTH_ELEMENTS", "BYTES_PER_PARAM", "InPlaceAdd", "interleaved", "median_seconds"]

BYTES_PER_PARAM = 28  # one float32 Adam step: read w, g, m, v; write w, m, v
BANDWIDTH_ELEMENTS = 32 * 1024 * 1024  # 128 MiB per float32 operand: far beyond any cache


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
    """Median seconds per method, timing one call of each in turn (the first call of each is a warm-up).

    The starting method rotates from round to round, so drift (frequency, other load) hits all alike.
    """
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


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class InPlaceAdd:
    """``x += y`` on two large float32 arrays, split over the usable CPUs: the bandwidth of the bound.

    An in-place add reads ``x`` and ``y`` and writes ``x`` (12 counted bytes per element) and, like
    an in-place Adam step, writes only lines it has just read (a copy's stores would also read their
    destination first, which its byte count does not see). Calling the object runs it once; time it
    with the steps it bounds (:func:`interleaved`) and turn the median into bytes per second with
    :meth:`bandwidth`.
    """

    BYTES_PER_ELEMENT = 12

    def __init__(self, elements: int = BANDWIDTH_ELEMENTS, threads: int | None = None) -> None:
        self.elements = elements
        self.threads = max(1, threads or usable_cpus())
        self._x = np.ones(elements, np.float32)
        self._y = np.full(elements, 1e-7, np.float32)
        bounds = np.linspace(0, elements, self.threads + 1).astype(np.int64)
        self._chunks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def _add(self, chunk: tuple[int, int]) -> None:
        a, b = chunk
        np.add(self._x[a:b], self._y[a:b], out=self._x[a:b])  # NumPy releases the GIL here

    def __call__(self) -> None:
        if self._pool is None:
            self._add(self._chunks[0])
        else:
            list(self._pool.map(self._add, self._chunks))

    def bandwidth(self, seconds: float) -> float:
        """Bytes per second, given the time of one call."""
        return self.BYTES_PER_ELEMENT * self.elements / seconds

    def bound(self, params: int, seconds: float) -> float:
        """The bound of one Adam step over ``params`` float32 parameters: 28 bytes each at :meth:`bandwidth`."""
        return BYTES_PER_PARAM * params / self.bandwidth(seconds)

    def close(self) -> None:
        """Stop the threads and free the arrays."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._x = self._y = np.zeros(0, np.float32)
