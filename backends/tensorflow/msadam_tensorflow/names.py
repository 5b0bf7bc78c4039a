"""MindSpore names for Keras variables: the path with dots, norm and embedding weights renamed.

A MindSpore parameter's name drives the default weight-decay filter (no decay when it contains
``beta`` or ``gamma``, ``Optimizer._init_opt_attrs``) and its checkpoint names. A Keras 3 variable
knows only its path (``net/dense/kernel``): [`mindspore_name`][msadam_tensorflow.names.mindspore_name] joins it with
dots and, for the weights of a normalization or embedding layer (the path entry before the weight's own name matches
[`NORM_LAYER`][msadam_tensorflow.names.NORM_LAYER] or [`EMBEDDING_LAYER`][msadam_tensorflow.names.EMBEDDING_LAYER], as
Keras's automatic layer names do), maps the weight's name to MindSpore's
([`NORM_WEIGHTS`][msadam_tensorflow.names.NORM_WEIGHTS],
[`EMBEDDING_WEIGHTS`][msadam_tensorflow.names.EMBEDDING_WEIGHTS]):

* ``LayerNormalization``/``GroupNormalization`` ``gamma``, ``beta`` and ``BatchNormalization``
  ``moving_mean``/``moving_variance``: MindSpore's norm layers use the same names;
* ``RMSNormalization`` ``scale`` -> ``gamma``;
* ``Embedding`` ``embeddings`` -> ``embedding_table`` (``nn.Embedding``).

Both maps are plain dicts a user may extend; a layer named freely (``name="final"``) is matched by
the patterns only if its name says so — pass ``names=`` to
[`msadam_tensorflow.Adam`][msadam_tensorflow.keras_optimizer.Adam] then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["EMBEDDING_LAYER", "EMBEDDING_WEIGHTS", "NORM_LAYER", "NORM_WEIGHTS", "NameSource", "mindspore_name",
           "name_function", "variable_path"]

NORM_LAYER = re.compile(r"(norm|^ln(_|\d|$))", re.IGNORECASE)
"""A path entry naming a normalization layer (Keras's automatic names: ``layer_normalization_1``,
``rms_normalization``, ``batch_normalization``; also ``norm``, ``ln_f``, ``LayerNorm``)."""
EMBEDDING_LAYER = re.compile(r"^embed(ding)?(_?\d*)$", re.IGNORECASE)
"""A path entry naming an embedding layer (Keras: ``embedding``, ``embedding_3``; also ``embed``)."""
NORM_WEIGHTS: dict[str, str] = {"scale": "gamma"}
"""Keras norm-layer weight names -> MindSpore's (names MindSpore shares with Keras are left as they are)."""
EMBEDDING_WEIGHTS: dict[str, str] = {"embeddings": "embedding_table"}
"""Keras embedding weight names -> MindSpore's."""

NameSource = Mapping[str, str] | Callable[[Any], str]
"""What [`msadam_tensorflow.Adam`][msadam_tensorflow.keras_optimizer.Adam] accepts as ``names``: a map from variable
path (or MindSpore-style dotted path) to name, or a function of the variable."""


def variable_path(variable: Any) -> str:
    """A Keras (or ``tf``) variable's path: ``path``, else ``name`` without the ``:0`` suffix."""
    path = getattr(variable, "path", None) or getattr(variable, "name", "")
    return str(path).split(":")[0]


def mindspore_name(variable: Any, norm_map: bool = True) -> str:
    """A Keras variable's MindSpore-style name (see the module docstring).

    ``net/dense/kernel`` -> ``net.dense.kernel``; ``net/rms_normalization/scale`` ->
    ``net.rms_normalization.gamma``; ``net/embedding/embeddings`` -> ``net.embedding.embedding_table``.
    With ``norm_map=False``, only the dots.
    """
    parts = variable_path(variable).split("/")
    if norm_map and len(parts) >= 2:
        if NORM_LAYER.search(parts[-2]):
            parts[-1] = NORM_WEIGHTS.get(parts[-1], parts[-1])
        elif EMBEDDING_LAYER.match(parts[-2]):
            parts[-1] = EMBEDDING_WEIGHTS.get(parts[-1], parts[-1])
    return ".".join(parts)


def name_function(names: NameSource | None) -> Callable[[Any], str]:
    """``names`` as a function of a variable: the default :func:`mindspore_name`; a mapping is looked up
    by path (``net/dense/kernel``) or dotted path (``net.dense.kernel``), falling back to the default."""
    if names is None:
        return mindspore_name
    if callable(names):
        return names
    if not isinstance(names, Mapping):
        raise TypeError(f"'names' must be a mapping from variable path to name, or a function of the variable, "
                        f"but got {type(names)}.")
    table = dict(names)

    def lookup(variable: Any) -> str:
        path = variable_path(variable)
        return str(table.get(path, table.get(path.replace("/", "."), mindspore_name(variable))))

    return lookup
