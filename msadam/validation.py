"""Argument checks with MindSpore's semantics, exception classes and messages.

Each function mirrors one of ``mindspore/_checkparam.py``'s validators, including their quirks:
``bool`` is never accepted where it is not listed (although it is an ``int``), ``numpy.float64``
passes as ``float`` (it subclasses it), and NaN/inf are a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "MindSporeQuirkWarning",
    "check_adam_args",
    "check_bool",
    "check_non_negative_float",
    "check_open_unit_interval",
    "check_positive_float",
    "check_value_type",
]

_PRIM = "Adam"


class MindSporeQuirkWarning(UserWarning):
    """msadam reproduces a MindSpore behaviour that is probably not what the caller meant.

    The numbers stay MindSpore's (that is the point of msadam); the warning says what happened and
    how to write what was likely intended. Silence it with ``warnings.filterwarnings("ignore",
    category=msadam.MindSporeQuirkWarning)``.
    """


def _type_names(valid_types: tuple[type, ...]) -> str:
    names = [t.__name__ for t in valid_types]
    return f"one of '{names}'" if len(names) > 1 else f"'{names[0]}'"


def check_value_type(arg_name: str, arg_value: Any, valid_types: tuple[type, ...], prim_name: str = _PRIM) -> Any:
    """``TypeError`` unless ``arg_value`` is one of ``valid_types`` (``_checkparam.check_value_type``).

    ``bool`` is rejected unless listed, as MindSpore does (``check_value_type``, line 738).
    """
    rejected_bool = isinstance(arg_value, bool) and bool not in valid_types
    if rejected_bool or not isinstance(arg_value, valid_types):
        raise TypeError(
            f"For '{prim_name}', the type of '{arg_name}' should be {_type_names(valid_types)}, "
            f"but got type '{type(arg_value).__name__}'."
        )
    return arg_value


def check_bool(arg_name: str, arg_value: Any, prim_name: str = _PRIM) -> bool:
    """``TypeError`` unless ``arg_value`` is a ``bool``."""
    return bool(check_value_type(arg_name, arg_value, (bool,), prim_name))


def _check_float(arg_name: str, arg_value: Any, positive: bool, prim_name: str) -> float:
    # _checkparam._check_number: type first (TypeError), then NaN/inf (ValueError), then the bound.
    prefix = f"For '{prim_name}', the '{arg_name}'"
    if not isinstance(arg_value, float) or isinstance(arg_value, bool):
        raise TypeError(f"{prefix} must be float, but got '{type(arg_value).__name__}'")
    if math.isinf(arg_value) or math.isnan(arg_value):
        raise ValueError(f"{prefix} must be a legal value, but got '{arg_value}'.")
    if (arg_value <= 0.0) if positive else (arg_value < 0.0):
        bound = "greater than 0.0" if positive else "greater than or equal to 0.0"
        raise ValueError(f"{prefix} must be float and must {bound}, but got '{arg_value}'.")
    return float(arg_value)


def check_positive_float(arg_name: str, arg_value: Any, prim_name: str = _PRIM) -> float:
    """A finite ``float > 0`` (``_checkparam.check_positive_float``)."""
    return _check_float(arg_name, arg_value, True, prim_name)


def check_non_negative_float(arg_name: str, arg_value: Any, prim_name: str = _PRIM) -> float:
    """A finite ``float >= 0`` (``_checkparam.check_non_negative_float``)."""
    return _check_float(arg_name, arg_value, False, prim_name)


def check_open_unit_interval(arg_name: str, arg_value: Any, prim_name: str = _PRIM) -> float:
    """A float in ``(0.0, 1.0)`` (``check_float_range(..., INC_NEITHER)``; NumPy scalars pass the type check)."""
    if not isinstance(arg_value, float | np.ndarray | np.generic) or isinstance(arg_value, bool):
        raise TypeError(f"For '{prim_name}', the '{arg_name}' must be 'float',  but got '{type(arg_value).__name__}'.")
    # _checkparam._check_inc_rel tests `not (val <= lower or val >= upper)`, which NaN passes.
    if float(arg_value) <= 0.0 or float(arg_value) >= 1.0:
        raise ValueError(
            f"For '{prim_name}', the '{arg_name}' must be in range of (0.0, 1.0), "
            f"but got {arg_value} with type '{type(arg_value).__name__}'."
        )
    return float(arg_value)


def check_adam_args(beta1: Any, beta2: Any, eps: Any, flags: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """Adam's own checks, in ``adam.py``'s order (after ``Optimizer.__init__``'s).

    Unknown keyword arguments are a ``KeyError`` (``Adam.__init__``); then ``_check_param_value``
    (``beta1``, ``beta2``, ``eps`` types, then ranges); then the boolean flags; then the
    incompatible combinations (``use_lazy`` with ``use_offload``, ``use_amsgrad`` with either).
    """
    unknown = set(kwargs) - {"use_lazy", "use_offload"}
    if unknown:
        raise KeyError(
            "For 'Adam', invalid keys are passed as kwargs, supported keys are 'use_lazy' and "
            f"'use_offload', but got {sorted(unknown)}."
        )
    for name, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
        check_value_type(name, value, (float,))
    check_open_unit_interval("beta1", beta1)
    check_open_unit_interval("beta2", beta2)
    check_positive_float("eps", eps)
    for name, value in flags.items():
        check_bool(name, value)
    if flags["use_lazy"] and flags["use_offload"]:
        raise ValueError(
            "For 'Adam', 'use_lazy' and 'use_offload' can not both be True. "
            f"But got use_lazy={flags['use_lazy']}, use_offload={flags['use_offload']}."
        )
    if flags["use_amsgrad"] and (flags["use_lazy"] or flags["use_offload"]):
        raise ValueError(
            "For lazy Adam and Adam with offload, there is no parameter named 'use_amsgrad'. "
            f"but got 'use_amsgrad'={flags['use_amsgrad']}."
        )


def is_iterable(value: Any) -> bool:
    """``isinstance(value, typing.Iterable)``, the test MindSpore uses for params and learning rates."""
    return isinstance(value, Iterable)
