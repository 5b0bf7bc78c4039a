"""msadam-jax: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for JAX.

``msadam_jax.adam(...)`` is an ``optax.GradientTransformation``; the ``jax`` msadam backend
(:mod:`msadam_jax.plugin`) runs the same jitted kernels for ``msadam.Adam``. Importing this package
does not import JAX: the names below load on first use, and fail then, clearly, when JAX (or optax,
for the transformation) is not installed.

>>> import jax.numpy as jnp, optax, msadam_jax                   # doctest: +SKIP
>>> tx = msadam_jax.adam(learning_rate=1e-3, weight_decay=1e-4)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names that need JAX, the module that defines each, and the packages it imports.
_LAZY = {
    "AdamState": ("msadam_jax.transform", ("jax", "optax")),
    "adam": ("msadam_jax.transform", ("jax", "optax")),
    "from_mindspore": ("msadam_jax.transform", ("jax", "optax")),
    "to_mindspore": ("msadam_jax.transform", ("jax", "optax")),
    "mindspore_names": ("msadam_jax.names", ("jax",)),
    "row_tensor": ("msadam_jax.names", ("jax",)),
}

__all__ = ["AdamState", "__version__", "adam", "from_mindspore", "mindspore_names", "row_tensor",
           "to_mindspore"]

INSTALL_HINT = 'pip install "msadam-jax[jax]"  (or: pip install jax optax)'


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'msadam_jax' has no attribute {name!r}")
    module_name, needs = entry
    for package in needs:
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise ImportError(f"msadam_jax.{name} needs {package}, which is not installed (or failed to import: "
                              f"{exc}). Install it first: {INSTALL_HINT}.") from exc
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
