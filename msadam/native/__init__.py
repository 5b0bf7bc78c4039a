"""The C++ source of MindSpore's float32 Adam kernel, shared by the compiled backends.

``msadam_adam_fp32.h`` reproduces nnacl ``AdamFp32`` bit for bit with no framework dependency
(see its comments); ``msadam_torch.native``, ``msadam_jax.native`` and ``msadam_tensorflow.native``
include it and add their framework's calling convention and threads. Nothing here is compiled by msadam itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["HEADER", "cache_dir", "exclusive", "include_dir", "kernel_header"]

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
