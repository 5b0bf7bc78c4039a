"""MindSpore names for pytree leaves, and row-sparse gradients as [`msadam.RowTensor`][msadam.RowTensor].

A MindSpore parameter's name drives the default weight-decay filter (no decay when it contains
``beta`` or ``gamma``) and the state's checkpoint names (``moment1.<name>``). In JAX a parameter
is a leaf of a pytree; its name is its key path joined with dots (``{'Dense_0': {'kernel': w}}``
-> ``Dense_0.kernel``). flax calls a norm layer's scale ``scale``; MindSpore calls it ``gamma``
(and the shift ``beta``): [`mindspore_names`][msadam_jax.names.mindspore_names] maps them, so the filter sees what
MindSpore would. See docs/jax.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import msadam

__all__ = ["EMBEDDING_LAYER", "NORM_LAYER", "is_row_sparse", "key_name", "mindspore_names", "row_tensor"]

NORM_LAYER = re.compile(r"(norm|^ln(_|\d|$))", re.IGNORECASE)
"""A key-path entry naming a normalization layer (flax: ``LayerNorm_0``, ``BatchNorm_1``, ``norm``, ``ln_f``)."""
EMBEDDING_LAYER = re.compile(r"^embed(_?\d*)$", re.IGNORECASE)
"""A key-path entry naming an embedding layer (flax: ``Embed_0``; haiku: ``embed``)."""
# flax's and haiku's leaf names -> MindSpore's (LayerNorm/BatchNorm: gamma, beta; Embedding: embedding_table).
_NORM_LEAVES = {"scale": "gamma", "weight": "gamma", "bias": "beta", "offset": "beta", "mean": "moving_mean",
                "var": "moving_variance"}
_EMBEDDING_LEAVES = {"embedding": "embedding_table", "embeddings": "embedding_table"}


def key_name(key: Any) -> str:
    """One key-path entry as text: a dict key, an attribute name or a sequence index."""
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _mindspore_name(path: tuple[Any, ...], norm_map: bool) -> str:
    parts = [key_name(k) for k in path]
    if norm_map and len(parts) >= 2:
        if NORM_LAYER.search(parts[-2]):
            parts[-1] = _NORM_LEAVES.get(parts[-1], parts[-1])
        elif EMBEDDING_LAYER.match(parts[-2]):
            parts[-1] = _EMBEDDING_LEAVES.get(parts[-1], parts[-1])
    return ".".join(parts) if parts else "param"


def is_row_sparse(leaf: Any) -> bool:
    """Whether a gradient leaf is row-sparse (a :class:`msadam.RowTensor` or a row-sparse BCOO)."""
    if isinstance(leaf, msadam.RowTensor):
        return True
    try:
        from jax.experimental import sparse
    except ImportError:  # pragma: no cover - jax.experimental.sparse ships with jax
        return False
    return isinstance(leaf, sparse.BCOO)


def mindspore_names(tree: Any, *, norm_map: bool = True,
                    is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """A pytree like ``tree`` whose leaves are MindSpore parameter names (key paths joined with ``.``).

    With ``norm_map`` (default), the leaves of a normalization layer (a key-path entry matching
    [`NORM_LAYER`][msadam_jax.names.NORM_LAYER]) are renamed as MindSpore names them: ``scale``/``weight`` -> ``gamma``,
    ``bias``/``offset`` -> ``beta``, ``mean``/``var`` -> ``moving_mean``/``moving_variance``; an
    embedding layer's table ([`EMBEDDING_LAYER`][msadam_jax.names.EMBEDDING_LAYER], leaf ``embedding``) is
    ``embedding_table``.
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: _mindspore_name(path, norm_map), tree,
                                            is_leaf=is_leaf)


def row_tensor(grad: Any) -> msadam.RowTensor:
    """A row-sparse gradient as [`msadam.RowTensor`][msadam.RowTensor] (for ``msadam.Adam`` on the jax backend).

    Accepts a RowTensor (returned as is) or a ``jax.experimental.sparse.BCOO`` whose sparse
    dimension is the first one (``n_batch == 0``, ``n_sparse == 1``: what ``jnp.take`` of an
    embedding table's gradient looks like). Repeated indices are kept, not summed: MindSpore's
    sparse paths depend on them.
    """
    if isinstance(grad, msadam.RowTensor):
        return grad
    from jax.experimental import sparse

    if not isinstance(grad, sparse.BCOO):
        raise TypeError(f"Expected a msadam.RowTensor or a jax.experimental.sparse.BCOO, got {type(grad).__name__}.")
    if grad.n_batch != 0 or grad.n_sparse != 1:
        raise ValueError(f"A row-sparse BCOO has n_batch == 0 and n_sparse == 1 (rows), got n_batch={grad.n_batch}, "
                         f"n_sparse={grad.n_sparse} for shape {grad.shape}: pass it dense (grad.todense()).")
    return msadam.RowTensor(grad.indices[:, 0], grad.data, tuple(int(d) for d in np.shape(grad)))
