"""The few ``mindspore/_checkparam.py`` validators that ``dynamic_lr``, ``amp`` and the loss scale managers use.

They mirror MindSpore 2.10's code line for line, quirks included, so that the same argument
raises the same exception class with the same message:

- ``_check_number`` (``_checkparam.py`` line 192) tests the type with ``isinstance`` first
  (``bool`` passes as ``int`` there), then ``math.isinf``/``math.isnan``/``numpy.isinf``/``numpy.isnan``
  — so an ``int`` of 2**64 or more is a ``TypeError`` raised by NumPy's ``isinf`` and one beyond
  float range an ``OverflowError`` raised by ``math.isinf`` — then rejects ``bool`` (``TypeError``)
  and the relation (``ValueError``).
- ``numpy.float64`` passes as ``float`` (it subclasses it); ``numpy.float32`` and ``numpy.int64`` do not.

msadam's own ``msadam.validation`` always names a primitive (``"For 'Adam', ..."``); these
functions take ``prim_name=None`` as MindSpore's do (``"The 'x' ..."``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "check_is_float",
    "check_non_negative_float",
    "check_positive_float",
    "check_positive_int",
    "check_value_type",
]


def _check_number(arg_value: Any, value: int, rel: str, arg_type: type[int] | type[float], arg_name: str | None,
                  prim_name: str | None) -> Any:
    """``_checkparam._check_number`` (line 192); ``rel`` is ``">"`` or ``">="``."""
    prim = f"For '{prim_name}', the " if prim_name else "The "
    name = f"'{arg_name}'" if arg_name else "input value"
    prim_info = prim + name
    if isinstance(arg_value, arg_type):
        # line 206: the four tests in this order (math first: OverflowError for huge ints; then NumPy).
        if math.isinf(arg_value) or math.isnan(arg_value) or np.isinf(arg_value) or np.isnan(arg_value):
            raise ValueError(f"{prim_info} must be a legal value, but got '{arg_value}'.")
    else:
        raise TypeError(f"{prim_info} must be {arg_type.__name__}, but got '{type(arg_value).__name__}'")
    type_mismatch = isinstance(arg_value, bool)  # line 211: bool is an int, but rejected here
    rel_ret = arg_value > value if rel == ">" else arg_value >= value
    if type_mismatch or not rel_ret:
        msg = (f"{prim_info} must be {arg_type.__name__} and must {rel} {value}, "
               f"but got '{arg_value}' with type '{type(arg_value).__name__}'.")
        if type_mismatch:
            raise TypeError(msg)
        raise ValueError(msg)
    return arg_value


def check_positive_int(arg_value: Any, arg_name: str | None = None, prim_name: str | None = None) -> Any:
    """An ``int > 0`` (not ``bool``): ``_checkparam.check_positive_int`` (line 323)."""
    return _check_number(arg_value, 0, ">", int, arg_name, prim_name)


def check_positive_float(arg_value: Any, arg_name: str | None = None, prim_name: str | None = None) -> Any:
    """A finite ``float > 0``: ``_checkparam.check_positive_float`` (line 417)."""
    return _check_number(arg_value, 0, ">", float, arg_name, prim_name)


def check_non_negative_float(arg_value: Any, arg_name: str | None = None, prim_name: str | None = None) -> Any:
    """A finite ``float >= 0``: ``_checkparam.check_non_negative_float`` (line 465)."""
    return _check_number(arg_value, 0, ">=", float, arg_name, prim_name)


def check_is_float(arg_value: Any, arg_name: str | None = None, prim_name: str | None = None) -> Any:
    """A finite ``float`` (not ``bool``): ``_checkparam.check_is_float`` → ``check_is_number`` (line 227)."""
    prim = f"For '{prim_name}', the" if prim_name else "The"
    name = f"'{arg_name}'" if arg_name else "input value"
    if isinstance(arg_value, float) and not isinstance(arg_value, bool):
        if math.isinf(arg_value) or math.isnan(arg_value) or np.isinf(arg_value) or np.isnan(arg_value):
            raise ValueError(f"{prim} {name} must be a legal float, but got '{arg_value}'.")
    else:
        raise TypeError(f"{prim} type of {name} must be 'float', but got '{type(arg_value).__name__}'.")
    return arg_value


def check_value_type(arg_name: str, arg_value: Any, valid_types: Iterable[type] | type,
                     prim_name: str | None = None) -> Any:
    """``TypeError`` unless ``arg_value`` is one of ``valid_types`` (``_checkparam.check_value_type``, line 721).

    ``bool`` is rejected unless listed. Returns ``arg_value`` (MindSpore rounds a float to 6
    digits when ``float`` is not listed — and then rejects it anyway, so that never shows).
    """
    types = tuple(valid_types) if isinstance(valid_types, Iterable) else (valid_types,)

    def _raise() -> None:
        names = [t.__name__ if hasattr(t, "__name__") else str(t) for t in types]
        prefix = f"For '{prim_name}', the" if prim_name else "The"
        shown = names if len(types) > 1 else names[0]
        raise TypeError(f"{prefix} type of '{arg_name}' should be {'one of ' if len(types) > 1 else ''}"
                        f"'{shown}', but got type '{type(arg_value).__name__}'.")

    if (isinstance(arg_value, bool) and bool not in types) or not isinstance(arg_value, types):
        _raise()
    return arg_value
