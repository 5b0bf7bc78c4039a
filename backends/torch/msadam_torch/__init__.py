"""msadam-torch: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for PyTorch.

``msadam_torch.Adam`` is a ``torch.optim.Optimizer``; the ``torch`` msadam backend
(:mod:`msadam_torch.plugin`) runs its kernels. Importing this package does not import torch: the
names below load on first use, and fail then, clearly, when torch is not installed.

>>> import torch, msadam_torch                                  # doctest: +SKIP
>>> model = torch.nn.Linear(4, 2)                                # doctest: +SKIP
>>> opt = msadam_torch.Adam(model.named_parameters(), learning_rate=1e-3, weight_decay=1e-4)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names that need torch, and the module that defines each.
_LAZY = {
    "Adam": "msadam_torch.optim",
    "NAME_ATTRIBUTE": "msadam_torch.names",
    "mindspore_names": "msadam_torch.names",
    "name_parameters": "msadam_torch.names",
}

__all__ = ["NAME_ATTRIBUTE", "Adam", "__version__", "mindspore_names", "name_parameters"]

TORCH_REQUIREMENT = "torch==2.13.0"


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'msadam_torch' has no attribute {name!r}")
    try:
        import torch  # noqa: F401  (only to give a clear error when it is missing)
    except ImportError as exc:
        raise ImportError(
            f"msadam_torch.{name} needs PyTorch, which is not installed (or failed to import: {exc}). "
            f"Install it first, e.g. `pip install {TORCH_REQUIREMENT}` (a CPU wheel is enough)."
        ) from exc
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
