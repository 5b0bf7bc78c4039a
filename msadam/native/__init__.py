"""The C++ source of MindSpore's float32 Adam kernel, shared by the compiled backends.

``msadam_adam_fp32.h`` reproduces nnacl ``AdamFp32`` bit for bit with no framework dependency
(see its comments); ``msadam_torch.native``, ``msadam_jax.native`` and ``msadam_tensorflow.native``
include it and add their framework's calling convention and threads. Nothing here is compiled by msadam itself.

:class:`CompiledKernel` is what those three modules share around their build: at most one build per
process, under a lock, every failure remembered and reported. It imports no framework.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["HEADER", "CompiledKernel", "cache_dir", "disabled", "exclusive", "include_dir", "kernel_header",
           "not_on_windows"]

_K = TypeVar("_K")

HEADER = "msadam_adam_fp32.h"


def include_dir() -> Path:
    """The directory to put on a C++ compiler's include path for ``#include "msadam_adam_fp32.h"``."""
    return Path(__file__).resolve().parent


def kernel_header() -> str:
    """The header's text (compiled backends put it in their build cache keys)."""
    return (include_dir() / HEADER).read_text(encoding="utf-8")


def cache_dir(env_var: str, name: str) -> Path:
    """Where a compiled backend caches its builds: ``$env_var``, else ``$XDG_CACHE_HOME/msadam/<name>``
    (``~/.cache/msadam/<name>`` without it)."""
    if root := os.environ.get(env_var):
        return Path(root)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "msadam" / name


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[bool]:
    """Hold ``directory/msadam.lock`` across processes (two test workers may build at once).

    Yields whether the lock is held: ``False`` where there is no ``fcntl`` (nothing guards then).
    The OS releases the lock if its holder dies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield False
        return
    with open(directory / "msadam.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def disabled(env_var: str) -> str | None:
    """Why a kernel is not built now: ``"disabled (<env_var>=0)"`` when ``$env_var`` is ``0``, else None."""
    return f"disabled ({env_var}=0)" if os.environ.get(env_var, "1") == "0" else None


def not_on_windows() -> str | None:
    """Why a kernel built with GCC/Clang flags is not built here (on Windows), else None."""
    if sys.platform == "win32":
        return "unavailable: the kernel is built with GCC/Clang flags (not on Windows)"
    return None


class CompiledKernel(Generic[_K]):
    """A compiled kernel that is built (or loaded from a cache) at most once per process.

    ``load(notes)`` returns the loaded kernel (a module, a library handle: anything but None) and how it
    was obtained (``"loaded from <dir>"``); it may raise anything, and may append lines to ``notes``
    (a build log). The first call of :meth:`get` that gets past ``postpone`` decides, under a lock,
    and the answer is kept for the life of the process: the kernel and ``"ready (<how>)"``, or None
    and ``"unavailable: <Type>: <message tail>"``; the notes follow the status, one per line.

    ``precondition()`` and ``postpone()`` return a reason not to build (which becomes the status), or
    None. A precondition's reason is remembered like a failure; a postponement is not: the next call
    asks again (a switch that may be turned back on before the kernel is first wanted).
    """

    NOT_BUILT = "not built yet (built on first use)"

    def __init__(
        self,
        load: Callable[[list[str]], tuple[_K, str]],
        *,
        precondition: Callable[[], str | None] | None = None,
        postpone: Callable[[], str | None] | None = None,
    ) -> None:
        self._load = load
        self._precondition = precondition
        self._postpone = postpone
        self._lock = threading.Lock()
        self.decided = False
        self.kernel: _K | None = None
        self.message = self.NOT_BUILT

    def get(self) -> _K | None:
        """The kernel, building it on the first call; None when it cannot be had (see :meth:`status`)."""
        if self.decided:
            return self.kernel
        if self._postpone is not None and (reason := self._postpone()) is not None:
            self.message = reason
            return None
        with self._lock:
            if not self.decided:
                self._decide()
            return self.kernel

    def _decide(self) -> None:
        reason = None if self._precondition is None else self._precondition()
        if reason is not None:
            self.message = reason
        else:
            notes: list[str] = []
            try:
                kernel, how = self._load(notes)
                self.kernel, self.message = kernel, f"ready ({how})"
            except Exception as error:  # a compiler, header or loader problem: the caller falls back
                self.message = f"unavailable: {type(error).__name__}: {str(error).strip()[-4000:]}"
            self.message += "".join(f"\n  {note}" for note in notes)
        self.decided = True

    def status(self) -> str:
        """One line (or a build log) saying whether the kernel is ready, and otherwise why not."""
        return self.message

    def available(self) -> bool:
        """Whether the kernel can run here (builds it on the first call)."""
        return self.get() is not None

    def enabled(self, env_var: str) -> bool:
        """Whether steps use the kernel now: :meth:`available`, and ``$env_var`` is not ``0`` (read each time)."""
        return os.environ.get(env_var, "1") != "0" and self.available()
