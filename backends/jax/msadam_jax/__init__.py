"""msadam-jax: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for JAX.

``msadam_jax.adam(...)`` is an ``optax.GradientTransformation``; the ``jax`` msadam backend
(:mod:`msadam_jax.plugin`) runs the same jitted kernels for ``msadam.Adam``. Importing this package
does not import JAX: the names below load on first use, and fail then, clearly, when JAX (or optax,
for the transformation) is not installed.

>>> import jax.numpy as jnp, optax, msadam_jax                   # doctest: +SKIP
>>> tx = msadam_jax.adam(learning_rate=1e-3, weight_decay=1e-4)  # doctest: +SKIP
"""

from __future__ import annotations

from msadam.lazy import lazy_names

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


__getattr__, __dir__ = lazy_names("msadam_jax", globals(), _LAZY, INSTALL_HINT)
