"""Parameter grouping, as ``mindspore.nn.Optimizer.__init__`` parses it.

``params`` is a list of ``Parameter`` or a list of group dicts with the keys ``params``, ``lr``,
``weight_decay``, ``grad_centralization`` and ``order_params``. The result is one flat, ordered list
of parameters with, for each, its learning-rate source, weight decay, decay flag and
centralization flag.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from msadam import validation
from msadam.learning_rates import (
    DynamicWeightDecay,
    FixedLR,
    LRSource,
    PreprocessedLR,
    build_lr,
    preprocess_lr,
    preprocess_weight_decay,
)
from msadam.tensor import GENERATED_NAME_PREFIX, Parameter, Tensor

__all__ = ["Layout", "check_params", "check_params_iterable", "parse_params"]

GROUP_KEYS = ("params", "lr", "weight_decay", "order_params", "grad_centralization")

WeightDecay = float | DynamicWeightDecay


@dataclass
class Layout:
    """The parsed parameter list: everything per parameter, in the optimizer's order."""

    params: list[Parameter]
    lrs: list[LRSource]
    weight_decays: list[WeightDecay]
    decay_flags: list[bool]
    centralize_flags: list[bool]
    default_lr: LRSource
    default_weight_decay: WeightDecay
    is_group: bool
    is_group_lr: bool
    dynamic_lr: bool


_OWN_PACKAGES = ("msadam", "msadam_compat")  # frames a warning skips to reach the caller


def check_params_iterable(parameters: Any, what: str) -> list[Any]:
    """``Optimizer._parameters_base_check``: not None (``ValueError``), iterable (``TypeError``), not empty."""
    if parameters is None:
        raise ValueError(f"For 'Optimizer', the argument {what} can not be None.")
    if not validation.is_iterable(parameters):
        raise TypeError(f"For 'Optimizer', the argument {what} must be Iterable type, but got {type(parameters)}.")
    items = list(parameters)
    if not items:
        raise ValueError(f"For 'Optimizer', the argument {what} must not be empty.")
    return items


def _check_groups(groups: list[dict[str, Any]]) -> None:
    """``Optimizer._check_group_params``: keys, the ``order_params`` dict, element types."""
    for group in groups:
        invalid = [key for key in group if key not in GROUP_KEYS]
        if invalid:
            raise KeyError(f"For 'Optimizer', the key in group params must be one of in {list(GROUP_KEYS)}, "
                           f"but got {invalid}.")
        if "order_params" in group:
            if len(group) > 1:
                raise ValueError("For 'Optimizer', the order params dict in group parameters should only "
                                 f"include the 'order_params' key, but got {group.keys()}.")
            if not validation.is_iterable(group["order_params"]):
                raise TypeError("For 'Optimizer', the value of 'order_params' in group parameters should "
                                f"be Iterable type, but got {type(group['order_params'])}.")
            continue
        given = group["params"]  # no 'params': KeyError
        members = check_params_iterable(given, "group `params`")
        for index, param in enumerate(members):
            if not isinstance(param, Parameter):
                raise TypeError("For 'Optimizer', the element in group parameters must be Parameter type, "
                                f"but got {type(param)} at index {index}.")
        group["params"] = [] if _is_one_shot(given) else members


def _is_one_shot(members: Any) -> bool:
    """A group's ``params`` that MindSpore 2.10 finds exhausted when it builds the group: an iterator.

    ``_check_group_params`` reads it with ``list(...)`` (``optimizer.py`` 568 -> 375) and drops the
    list; ``_init_group_params`` then iterates the group's ``params`` again (lines 614 and 644), so a
    generator, ``filter``, ``map`` or ``iter(...)`` contributes no parameter (no error, the group's
    learning rate and weight decay are still checked). Reproduced, with a warning.
    """
    if iter(members) is not members:
        return False
    warnings.warn(
        f"A group's 'params' is a one-shot iterator ({type(members).__name__}): MindSpore 2.10 reads it once to "
        "check it and finds it exhausted when it builds the group, so the group has no parameters, and msadam "
        "does the same. Pass a list (e.g. list(filter(...))) to train them.", validation.MindSporeQuirkWarning,
        stacklevel=_caller_level())
    return True


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside msadam's packages, seen from the function calling this.

    So the warning names the user's line whether ``msadam.Adam`` or a subclass (``msadam_compat``'s
    ``nn.Adam``) was called.
    """
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _OWN_PACKAGES:
        frame, level = frame.f_back, level + 1
    return level


def _group_lr_length(lr: PreprocessedLR) -> int:
    return lr.size if isinstance(lr, Tensor) and lr.ndim == 1 else 0


def _order(layout: Layout, order_params: Any) -> None:
    """``Optimizer._order_and_adjust_group_params``: reorder everything by ``order_params``.

    It takes ``len(order_params)``, so an iterator without a length is a ``TypeError`` there.
    """
    if not hasattr(order_params, "__len__"):
        raise TypeError(f"object of type '{type(order_params).__name__}' has no len()")
    if len(order_params) != len(layout.params):
        raise ValueError("For 'Optimizer',the length of order parameters must be the same as the length of "
                         f"group parameters, but got order parameters' length {len(order_params)}, "
                         f"group parameters' length {len(layout.params)}.")
    names = [param.name for param in order_params]
    positions = [names.index(param.name) for param in layout.params]  # an unknown name: ValueError
    for field in ("params", "lrs", "weight_decays", "decay_flags", "centralize_flags"):
        values: list[Any] = [None] * len(positions)
        for value, position in zip(getattr(layout, field), positions, strict=True):
            values[position] = value
        setattr(layout, field, values)


def _parse_groups(
    groups: list[dict[str, Any]], default_lr: PreprocessedLR, default_dynamic: bool, weight_decay: Any,
    loss_scale: float,
) -> Layout:
    _check_groups(groups)
    # Optimizer._parse_group_params: group learning rates are checked before anything is built.
    tensor_lr_length = _group_lr_length(default_lr)
    is_group_lr, dynamic_lr, order_params = False, default_dynamic, None
    for group in groups:
        if "order_params" in group:
            order_params = group["order_params"]
            continue
        if "lr" in group:
            is_group_lr = True
            lr, dynamic = preprocess_lr(group["lr"])
            dynamic_lr = dynamic_lr or dynamic
            length = _group_lr_length(lr)
            if length and tensor_lr_length and length != tensor_lr_length:
                raise ValueError("For 'Optimizer', the Tensor type dynamic learning rate in group must be "
                                 "the same size as the argument 'learning_rate'.")
            tensor_lr_length = tensor_lr_length or length
    default_source = build_lr(default_lr, "learning_rate")
    layout = Layout([], [], [], [], [], default_source, 0.0, True, is_group_lr, dynamic_lr)
    seen_names: set[str] = set()
    stored: dict[str, Parameter] = {}
    for index, group in enumerate(groups):
        if "order_params" in group:
            continue
        # `self.group_params += group['params']` comes first in the loop and checks names (cell.py).
        _check_unique_names(group["params"], stored)
        source = build_lr(preprocess_lr(group["lr"])[0], f"learning_rate_group_{index}") if "lr" in group \
            else default_source
        decay = preprocess_weight_decay(group.get("weight_decay", weight_decay), loss_scale)
        centralize = False
        if "grad_centralization" in group:
            centralize = validation.check_value_type(
                "grad_centralization", group["grad_centralization"], (bool,), "Optimizer")
        for param in group["params"]:
            if param.name in seen_names:
                raise RuntimeError(f"For 'Optimizer', the {param.name} parameter already exists, it does not "
                                   "support repeated setting. Please check whether the optimizer parameter "
                                   "has been set multiple times.")
            seen_names.add(param.name)
            layout.params.append(param)
            layout.lrs.append(source)
            layout.weight_decays.append(decay)
            # Grouped: a group decays when its weight decay is > 0 or dynamic; names are ignored.
            layout.decay_flags.append(isinstance(decay, DynamicWeightDecay) or decay > 0)
            layout.centralize_flags.append(centralize)
    if is_group_lr and dynamic_lr:
        # Optimizer._build_single_lr: with dynamic group learning rates every fixed one is a _ConvertToCell.
        for source in layout.lrs:
            if isinstance(source, FixedLR):
                source.converted = True
    if order_params:
        _order(layout, order_params)
    layout.default_weight_decay = preprocess_weight_decay(weight_decay, loss_scale)
    return layout


def check_params(params: Any) -> list[Any]:
    """The first checks of ``Optimizer.__init__``: an iterable, not empty, all Parameters or all dicts."""
    items = check_params_iterable(params, "parameters")
    if not (all(isinstance(x, Parameter) for x in items) or all(isinstance(x, dict) for x in items)):
        raise TypeError("For 'Optimizer', all elements of the argument 'parameters' must be 'Parameter' or "
                        "'dict', please check the 'parameters'.")
    return items


def parse_params(items: list[Any], learning_rate: Any, weight_decay: Any, loss_scale: float) -> Layout:
    """Parse the checked ``items`` with the learning rate and weight decay, in ``Optimizer.__init__``'s order.

    ``loss_scale`` must already be validated (MindSpore checks it first): stored weight decays are
    multiplied by it.
    """
    default_lr, dynamic = preprocess_lr(learning_rate)
    if isinstance(items[0], dict):
        layout = _parse_groups([dict(g) for g in items], default_lr, dynamic, weight_decay, loss_scale)
    else:
        decay = preprocess_weight_decay(weight_decay, loss_scale)
        source = build_lr(default_lr, "learning_rate")
        n = len(items)
        # Ungrouped: only names containing neither 'beta' nor 'gamma' decay (Optimizer._init_opt_attrs).
        flags = [("beta" not in p.name and "gamma" not in p.name) for p in items]
        enabled = isinstance(decay, DynamicWeightDecay) or decay > 0
        layout = Layout(list(items), [source] * n, [decay] * n, [f and enabled for f in flags], [False] * n,
                        source, decay, False, False, dynamic)
    _rename_generated(layout.params)
    _check_unique_names(layout.params)
    return layout


def _check_unique_names(params: Iterable[Parameter], by_name: dict[str, Parameter] | None = None) -> None:
    """Two different Parameters with one name are a ``ValueError`` (``Cell`` attribute checks, ``cell.py``).

    Checked as MindSpore stores the parameters (``Cell._set_attr_for_parameter_in_list_or_tuple``):
    the same object twice passes here. ``by_name`` carries the names seen so far across calls.
    """
    by_name = {} if by_name is None else by_name
    for param in params:
        other = by_name.setdefault(param.name, param)
        if other is not param:
            raise ValueError(f"The value {param} , its name '{param.name}' already exists. "
                             "Please set a unique name for the parameter.")


def _rename_generated(params: Iterable[Parameter]) -> None:
    """``Cell._set_attr_for_param_or_param_tuple``: ``Parameter#<n>`` becomes ``Parameter$<k>``, k from 1.

    The user's Parameter is renamed, as MindSpore does; a second optimizer can then collide with
    a first one's ``Parameter$1`` (a ``ValueError``, as in MindSpore).
    """
    counter = 1
    seen: set[int] = set()
    for param in params:
        if id(param) in seen:
            continue
        seen.add(id(param))
        if param.name.startswith(GENERATED_NAME_PREFIX):
            param.name = f"Parameter${counter}"
            counter += 1
