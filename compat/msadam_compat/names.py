"""Name maps between a framework's parameter names and MindSpore's checkpoint names.

MindSpore's names are what a ``.ckpt`` holds and what drive ``nn.Adam``'s default weight-decay
filter (no decay for names containing ``beta``/``gamma``). Frameworks name the same weights
differently:

| layer                     | PyTorch / Keras / flax        | MindSpore             |
| ------------------------- | ----------------------------- | --------------------- |
| LayerNorm, BatchNorm, ... | ``weight`` / ``scale``        | ``gamma``             |
|                           | ``bias`` / ``offset``         | ``beta``              |
| BatchNorm statistics      | ``running_mean`` / ``mean``   | ``moving_mean``       |
|                           | ``running_var`` / ``var``     | ``moving_variance``   |
| Embedding                 | ``weight`` / ``embedding``    | ``embedding_table``   |
| paths                     | ``net/dense/kernel``          | ``net.dense.kernel``  |

A [`NameMap`][msadam_compat.names.NameMap] is a two-way table ``framework name <-> MindSpore name``. Build one from a
model ([`torch_names`][msadam_compat.names.torch_names], [`keras_names`][msadam_compat.names.keras_names],
[`flax_names`][msadam_compat.names.flax_names]: they use the backends' type-aware rules), or from a dict, and extend it
with [`NameMap.update`][msadam_compat.names.NameMap.update] for layers the rules do not know.
[`NameMap.to_mindspore`][msadam_compat.names.NameMap.to_mindspore] renames a whole state dict for
``ms.save_checkpoint``; [`NameMap.from_mindspore`][msadam_compat.names.NameMap.from_mindspore] renames what
``ms.load_checkpoint`` returns back. Names only: layouts are not converted (a Keras or flax ``Dense`` kernel is
``(in, out)``, MindSpore's ``weight`` is ``(out, in)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["NameMap", "flax_names", "keras_names", "torch_names"]

V = TypeVar("V")


class NameMap(Mapping[str, str]):
    """A two-way, extendable map ``framework name -> MindSpore name``.

    As a ``Mapping`` it maps framework names to MindSpore names; names it does not list are kept
    as they are in both directions. Two framework names mapping to one MindSpore name is a
    ``ValueError`` (the checkpoint would lose one of them).
    """

    def __init__(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._forward: dict[str, str] = {}
        self._backward: dict[str, str] = {}
        self.update(pairs)

    def update(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> NameMap:
        """Add (or replace) entries ``framework name -> MindSpore name``; returns the map itself.

        All-or-nothing: on a ``TypeError`` or ``ValueError`` the map is unchanged.
        """
        items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
        forward, backward = dict(self._forward), dict(self._backward)
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(s, str) for s in item)):
                raise TypeError(f"A name map entry must be a pair of str (framework name, MindSpore name), but got "
                                f"{item!r}.")
            framework, mindspore = item
            previous = forward.pop(framework, None)
            if previous is not None:
                del backward[previous]
            if mindspore in backward:
                raise ValueError(f"Both {backward[mindspore]!r} and {framework!r} map to the MindSpore name "
                                 f"{mindspore!r}.")
            forward[framework], backward[mindspore] = mindspore, framework
        self._forward, self._backward = forward, backward
        return self

    def __getitem__(self, name: str) -> str:
        return self._forward[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._forward)

    def __len__(self) -> int:
        return len(self._forward)

    def __repr__(self) -> str:
        return f"NameMap({self._forward!r})"

    def mindspore_name(self, name: str) -> str:
        """The MindSpore name of framework name ``name`` (``name`` itself if unmapped)."""
        return self._forward.get(name, name)

    def framework_name(self, name: str) -> str:
        """The framework name of MindSpore name ``name`` (``name`` itself if unmapped)."""
        return self._backward.get(name, name)

    def inverse(self) -> NameMap:
        """The map the other way round (MindSpore name -> framework name)."""
        return NameMap(self._backward)

    def to_mindspore(self, values: Mapping[str, V]) -> dict[str, V]:
        """``values`` (a state dict keyed by framework names) keyed by MindSpore names."""
        return _rename(values, self.mindspore_name)

    def from_mindspore(self, values: Mapping[str, V]) -> dict[str, V]:
        """``values`` keyed by MindSpore names (e.g. ``ms.load_checkpoint``'s) keyed by framework names.

        Optimizer state follows its parameter: ``moment1.ln.gamma`` becomes ``moment1.ln.weight``.
        """
        return _rename(values, self._state_aware_framework_name)

    def _state_aware_framework_name(self, name: str) -> str:
        if name in self._backward:
            return self._backward[name]
        prefix, dot, rest = name.partition(".")
        if dot and prefix in _STATE_PREFIXES and rest in self._backward:
            return f"{prefix}.{self._backward[rest]}"
        return name


# mindspore/nn/optim/adam.py: the optimizer's state Parameters are "<prefix>.<parameter name>".
_STATE_PREFIXES = frozenset({"moment1", "moment2", "vhat"})


def _rename(values: Mapping[str, V], rename: Any) -> dict[str, V]:
    renamed: dict[str, V] = {}
    origin: dict[str, str] = {}
    for name, value in values.items():
        new = rename(name)
        if new in renamed:
            raise ValueError(f"{origin[new]!r} and {name!r} both become {new!r}.")
        renamed[new], origin[new] = value, name
    return renamed


def _backend_module(module: str, distribution: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"This name map needs {module} (pip install {distribution}): {exc}") from exc


def torch_names(module: Any) -> NameMap:
    """The map for a ``torch.nn.Module``'s parameters and buffers (its ``state_dict()`` keys).

    Norm layers (``BatchNorm*``, ``InstanceNorm*``, ``LayerNorm``, ``GroupNorm``) map
    ``weight``/``bias``/``running_mean``/``running_var`` to ``gamma``/``beta``/``moving_mean``/
    ``moving_variance``; ``nn.Embedding``'s ``weight`` is ``embedding_table``
    (``msadam_torch.mindspore_names``).
    """
    names = _backend_module("msadam_torch.names", "msadam-torch").mindspore_names(module)
    return NameMap(names)


def keras_names(model: Any) -> NameMap:
    """The map for a Keras model's variables: ``variable.path`` (``net/dense/kernel``) -> MindSpore name.

    Slashes become dots; a normalization layer's ``scale`` is ``gamma``, an ``Embedding``'s
    ``embeddings`` is ``embedding_table`` (``msadam_tensorflow.names.mindspore_name``; Keras's
    ``BatchNormalization``/``LayerNormalization`` already say ``gamma``/``beta``/``moving_*``).
    """
    names = _backend_module("msadam_tensorflow.names", "msadam-tensorflow")
    return NameMap((names.variable_path(v), names.mindspore_name(v)) for v in model.variables)


def flax_names(tree: Any) -> NameMap:
    """The map for a pytree of parameters (flax ``params``, haiku, or a plain dict).

    Keys are the dotted key paths (``Dense_0.kernel``); a normalization layer's ``scale``/``bias``
    are ``gamma``/``beta``, its ``mean``/``var`` ``moving_mean``/``moving_variance``, and ``Embed``'s
    ``embedding`` is ``embedding_table`` (``msadam_jax.mindspore_names``).
    """
    names = _backend_module("msadam_jax.names", "msadam-jax")
    jax = importlib.import_module("jax")
    plain = names.mindspore_names(tree, norm_map=False)
    mapped = names.mindspore_names(tree)
    return NameMap(zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(mapped), strict=True))
