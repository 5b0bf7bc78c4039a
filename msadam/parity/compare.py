"""Comparing two trajectories: the worst absolute and relative error, where it is, and when it starts.

The relative error of one array at one step is ``max|actual - expected| / max(max|expected|, tiny)``
(one scale per array and step, so an element near zero does not blow it up); a NaN where the
expected value is finite counts as ``inf``. A trajectory is within tolerance when every array at
every step is. Steps are numbered from 1: step ``k`` is the state after the ``k``-th update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TINY", "Mismatch", "compare"]

TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class Mismatch:
    """How far one trajectory is from another.

    ``error`` is the worst relative error, in array ``key`` at ``step`` (1-based; 0 when the two are
    equal or cannot be compared, with the reason in ``key``); ``abs_error`` the worst absolute
    difference anywhere; ``per_step`` the worst relative error over every array at each step.
    ``comparable`` is ``False`` when the two hold different arrays or shapes (errors are then ``inf``).
    """

    error: float
    key: str
    step: int
    abs_error: float = 0.0
    per_step: tuple[float, ...] = field(default=(), repr=False)
    comparable: bool = True

    def first_step_over(self, tolerance: float) -> int | None:
        """The first step (1-based) whose worst relative error exceeds ``tolerance``, or ``None``."""
        if not self.comparable:
            return 1
        return next((i for i, e in enumerate(self.per_step, start=1) if not e <= tolerance), None)

    def __str__(self) -> str:
        if not self.comparable:
            return f"not comparable: {self.key}"
        if self.error == 0:
            return "0 (identical)"
        return f"{self.error:.3e} at {self.key!r} step {self.step}"


def compare(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> Mismatch:
    """The :class:`Mismatch` of ``actual`` against ``expected`` (``inf`` if arrays or shapes differ)."""
    if set(expected) != set(actual):
        differ = sorted(set(expected) ^ set(actual))
        return Mismatch(float("inf"), f"arrays differ: {differ}", 0, float("inf"), comparable=False)
    worst, worst_abs = Mismatch(0.0, "", 0), 0.0
    per_step: np.ndarray | None = None
    for key in sorted(expected):
        e, a = np.asarray(expected[key], np.float64), np.asarray(actual[key], np.float64)
        if e.shape != a.shape or e.ndim == 0:
            return Mismatch(float("inf"), f"{key}: shape {a.shape} != {e.shape}", 0, float("inf"), comparable=False)
        axes = tuple(range(1, e.ndim))
        diff = np.abs(a - e).max(axis=axes) if axes else np.abs(a - e)
        diff = np.where(np.isnan(diff), np.inf, diff)
        scale = np.maximum(np.abs(e).max(axis=axes) if axes else np.abs(e), TINY)
        rel = diff / scale
        per_step = rel if per_step is None else np.maximum(per_step, rel)
        worst_abs = max(worst_abs, float(diff.max(initial=0.0)))
        if rel.size and float(rel.max()) > worst.error:
            step = int(np.argmax(rel))
            worst = Mismatch(float(rel[step]), key, step + 1)
    steps = tuple(float(x) for x in per_step) if per_step is not None else ()
    return Mismatch(worst.error, worst.key, worst.step, worst_abs, steps)
