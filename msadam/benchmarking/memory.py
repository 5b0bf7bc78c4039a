"""Peak memory of an optimizer: how much the process's memory grows while it is built and stepped.

Two readings, and the larger one is reported (each is a lower bound of the true growth):

- **resident memory** (Linux): the process's peak resident set size (``VmHWM`` in
  ``/proc/self/status``) during a window, minus its resident size (``VmRSS``) when the window
  opened. The peak is reset when the window opens (``5`` written to ``/proc/self/clear_refs``), and
  freed heap memory is first handed back to the system (glibc's ``malloc_trim``), so memory that an
  earlier measurement freed to ``malloc`` cannot hide new allocations. This sees every byte of host
  memory whoever allocates it (NumPy, torch's CPU allocator, XLA, TensorFlow), at page
  granularity, including whatever else grows meanwhile (compiled programs, framework caches). It
  cannot see memory an allocator pool had already made resident and reuses (TensorFlow keeps such
  a pool on the CPU), nor accelerator memory.
- **the framework's allocator**, when its backend offers the optional
  ``allocator_memory(reset) -> (bytes in use, peak bytes) | None`` (TensorFlow with its BFC/oneDNN
  CPU allocator, and on a GPU; torch on CUDA): the peak bytes in use during the window over those
  in use when it opened. No framework keeps such statistics for plain CPU memory otherwise (torch's
  are CUDA-only; ``jax.Device.memory_stats()`` is ``None`` on the CPU).

Not Linux (no ``/proc``) and no allocator statistics: no reading (``None``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable
from pathlib import Path

__all__ = ["AllocatorMemory", "PeakMemory"]

AllocatorMemory = Callable[[bool], "tuple[int, int] | None"]  # reset -> (bytes in use, peak bytes since reset)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(key: str) -> int:
    for line in _STATUS.read_text(encoding="ascii").splitlines():
        if line.startswith(key + ":"):
            value, unit = line.split(":", 1)[1].split()
            if unit != "kB":
                raise ValueError(f"unexpected unit {unit!r} for {key} in {_STATUS}")
            return int(value) * 1024
    raise KeyError(key)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim if name else None
    return None


class PeakMemory:
    """``start()`` opens a window, ``settle()`` restarts its peak, ``extra()`` reads the growth."""

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self.why_not = self._probe()  # why resident memory cannot be read, or None
        self._rss_base: int | None = None
        self._allocator: AllocatorMemory | None = None
        self._allocator_base: int | None = None

    def _probe(self) -> str | None:
        try:
            _status_bytes("VmRSS")
            _status_bytes("VmHWM")
            _CLEAR_REFS.write_text("5", encoding="ascii")
        except (OSError, KeyError, ValueError) as exc:
            return f"cannot read and reset the peak resident memory ({exc})"
        return None

    @property
    def available(self) -> bool:
        """Whether resident memory is read (allocator statistics may still be, without it)."""
        return self.why_not is None

    def _reset_resident(self) -> int | None:
        if not self.available:
            return None
        if self._trim is not None:
            self._trim(0)
        _CLEAR_REFS.write_text("5", encoding="ascii")
        return _status_bytes("VmRSS")

    def _read_allocator(self, reset: bool) -> tuple[int, int] | None:
        if self._allocator is None:
            return None
        try:
            return self._allocator(reset)
        except Exception:  # statistics are a bonus: a backend whose probe fails is read from RSS alone
            self._allocator = None
            return None

    def _reset_allocator(self) -> int | None:
        stats = self._read_allocator(True)
        return None if stats is None else stats[0]

    def start(self, allocator: AllocatorMemory | None = None) -> None:
        """Open a window: what is resident (and in use by ``allocator``) now is the base; peaks restart."""
        self._allocator = allocator
        self._allocator_base = self._reset_allocator()
        self._rss_base = self._reset_resident()

    def settle(self) -> None:
        """Drop the peak reached so far (a first step's compilation, say), keeping what is still held."""
        self._reset_resident()
        if self._allocator_base is not None:
            self._reset_allocator()

    def extra(self) -> int | None:
        """The peak growth since :meth:`start` (over the last :meth:`settle`): the larger reading; None if none."""
        readings = []
        if self._rss_base is not None:
            readings.append(_status_bytes("VmHWM") - self._rss_base)
        if self._allocator_base is not None:
            stats = self._read_allocator(False)
            if stats is not None:
                readings.append(stats[1] - self._allocator_base)
        return max(0, *readings) if readings else None
