"""MindSpore names for torch parameters: norm-layer name maps and names stored on tensors.

MindSpore names drive the weight-decay filter (no decay for names containing ``beta``/``gamma``,
without groups) and the state/checkpoint names (``moment1.<name>``). torch calls a LayerNorm's
scale ``weight``; MindSpore calls it ``gamma``. See docs/torch.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

from torch import nn

__all__ = ["NAME_ATTRIBUTE", "NameMap", "mindspore_names", "name_parameters", "renamer"]

NAME_ATTRIBUTE = "msadam_name"
"""The attribute [`name_parameters`][msadam_torch.names.name_parameters] sets on a tensor: its MindSpore name (read by
[`msadam_torch.Adam`][msadam_torch.optim.Adam])."""

NameMap = Mapping[str, str] | Callable[[str], str] | str | None

_NORM_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_NORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _mindspore_name(module: nn.Module, name: str) -> str:
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    if isinstance(owner, _NORM_TYPES):
        attr = _NORM_NAMES.get(attr, attr)
    elif isinstance(owner, nn.Embedding) and attr == "weight":
        attr = "embedding_table"
    return f"{prefix}.{attr}" if prefix else attr


def mindspore_names(module: nn.Module) -> dict[str, str]:
    """``{torch name: MindSpore name}`` for every parameter and buffer of ``module``.

    Norm layers (BatchNorm, InstanceNorm, LayerNorm, GroupNorm): ``weight``/``bias``/``running_mean``/
    ``running_var`` -> ``gamma``/``beta``/``moving_mean``/``moving_variance``; ``nn.Embedding``:
    ``weight`` -> ``embedding_table``; other names are kept. Names drive MindSpore's weight-decay
    filter (none for names containing ``beta``/``gamma``) and the state names (``moment1.<name>``).
    """
    named = itertools.chain(module.named_parameters(remove_duplicate=False),
                            module.named_buffers(remove_duplicate=False))
    return {name: _mindspore_name(module, name) for name, _ in named}


def renamer(name_map: NameMap, module: nn.Module | None = None) -> Callable[[str], str]:
    if name_map is None:
        return str
    if isinstance(name_map, str):
        if name_map != "mindspore":
            raise ValueError(f"name_map must be 'mindspore', a mapping or a callable, but got {name_map!r}.")
        if module is None:
            raise ValueError("name_map='mindspore' needs the model: pass name_map=msadam_torch.mindspore_names(model), "
                             "or name the parameters first with msadam_torch.name_parameters(model).")
        name_map = mindspore_names(module)
    if isinstance(name_map, Mapping):
        table = name_map
        return lambda name: table.get(name, name)
    if callable(name_map):
        return name_map
    raise TypeError(f"name_map must be None, 'mindspore', a mapping or a callable, but got {type(name_map).__name__}.")


def name_parameters(module: nn.Module, name_map: NameMap = "mindspore") -> list[tuple[str, nn.Parameter]]:
    """Give each parameter of ``module`` a MindSpore name, stored on the tensor
    ([`NAME_ATTRIBUTE`][msadam_torch.names.NAME_ATTRIBUTE]).

    Optimizers built from plain ``model.parameters()`` — like the per-rank ones of ZeroRedundancyOptimizer
    — then use it. ``name_map``: ``'mindspore'`` ([`mindspore_names`][msadam_torch.names.mindspore_names]), a mapping, a
    callable or None. Returns the ``(name, parameter)`` pairs, usable as ``Adam``'s ``params``.
    """
    rename = renamer(name_map, module)
    named = [(rename(name), param) for name, param in module.named_parameters()]
    for name, param in named:
        setattr(param, NAME_ATTRIBUTE, name)
    return named
