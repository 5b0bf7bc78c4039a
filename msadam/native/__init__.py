"""The C++ source of MindSpore's float32 Adam kernel, shared by the compiled backends.

``msadam_adam_fp32.h`` reproduces nnacl ``AdamFp32`` bit for bit with no framework dependency
(see its comments); ``msadam_torch.native`` and ``msadam_jax.native`` include it and add their
framework's calling convention and threads. Nothing here is compiled by msadam itself.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEADER", "include_dir", "kernel_header"]

HEADER = "msadam_adam_fp32.h"


def include_dir() -> Path:
    """The directory to put on a C++ compiler's include path for ``#include "msadam_adam_fp32.h"``."""
    return Path(__file__).resolve().parent


def kernel_header() -> str:
    """The header's text (compiled backends put it in their build cache keys)."""
    return (include_dir() / HEADER).read_text(encoding="utf-8")
