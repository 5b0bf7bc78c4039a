"""``mindspore.nn.dynamic_lr``: learning-rate lists, one value per step, as MindSpore 2.10 computes them.

Each function returns a Python ``list`` of ``total_step`` numbers (``piecewise_constant_lr``: of
``milestone[-1]``) to pass as ``ms.nn.Adam(params, learning_rate=lr_list)``. The arithmetic is
MindSpore's (``mindspore/nn/dynamic_lr.py``) expression for expression, in float64 Python
arithmetic, so every element is *the same float* as MindSpore's (compare with ``==``); where
MindSpore's expression differs from its documented formula, the expression wins (each such
place cites its line). With ``current_epoch = floor(i / step_per_epoch)`` for step ``i``:

- exponential: ``lr * decay_rate ** (current_epoch / decay_epoch)`` (stair: ``floor`` of the exponent)
- natural exp: ``lr * e ** (-decay_rate * current_epoch)`` (stair: ``floor(current_epoch / decay_epoch) * decay_epoch``)
- inverse: ``lr / (1 + decay_rate * current_epoch / decay_epoch)`` (stair: ``floor`` of the quotient)
- cosine: ``min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * min(current_epoch, decay_epoch) / decay_epoch))``
- polynomial: ``(lr - end_lr) * (1 - tmp_epoch / tmp_decay_epoch) ** power + end_lr``
- warmup: ``lr * min(current_epoch, warmup_epoch) / warmup_epoch``

Validation runs in MindSpore's order with its exception classes and messages (``int`` arguments
must be ``int`` and not ``bool``; ``float`` arguments must be ``float`` — ``numpy.float64`` passes,
and then the list holds ``numpy.float64`` values, as MindSpore's does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from msadam_compat._number_checks import (
    check_is_float,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
    check_value_type,
)

__all__ = [
    "cosine_decay_lr",
    "exponential_decay_lr",
    "inverse_decay_lr",
    "natural_exp_decay_lr",
    "piecewise_constant_lr",
    "polynomial_decay_lr",
    "warmup_lr",
]


def piecewise_constant_lr(milestone: list[int] | tuple[int, ...],
                          learning_rates: list[float] | tuple[float, ...]) -> list[float]:
    r"""``y[i] = x_t`` for ``i`` in ``[M_{t-1}, M_t)``: ``learning_rates[t]`` repeated up to ``milestone[t]``.

    ``milestone`` and ``learning_rates`` must be a ``tuple`` or ``list`` (``TypeError``) of equal
    length (``ValueError``). Element by element (dynamic_lr.py line 76): ``milestone[i]`` a positive
    ``int``, ``learning_rates[i]`` a finite ``float``, ``milestone`` non-decreasing (``ValueError``;
    equal milestones are accepted and add no step). The list holds the given objects themselves.
    """
    check_value_type("milestone", milestone, (tuple, list))
    check_value_type("learning_rates", learning_rates, (tuple, list))
    if len(milestone) != len(learning_rates):
        raise ValueError(f"For 'piecewise_constant_lr', "
                         f"the size of 'milestone' must be same with the size of 'learning_rates', "
                         f"but got 'milestone' size: {len(milestone)}, 'learning_rates' size: {len(learning_rates)}.")
    lr: list[float] = []
    last_item = 0
    for i, item in enumerate(milestone):
        check_positive_int(item, f"milestone[{i}]")
        check_is_float(learning_rates[i], f"learning_rates[{i}]")
        # dynamic_lr.py line 79: only a decrease is rejected, although the message says "greater than".
        if item < last_item:
            raise ValueError(f"For 'piecewise_constant_lr', "
                             f"the value of milestone[{i}] must be greater than milestone[{i - 1}], "
                             f"but got milestone[{i}]: {milestone[i]}, "
                             f"milestone[{i - 1}]: {milestone[i - 1]}.")
        lr += [learning_rates[i]] * (item - last_item)
        last_item = item
    return lr


def _check_inputs(learning_rate: Any, decay_rate: Any, total_step: Any, step_per_epoch: Any, decay_epoch: Any,
                  is_stair: Any) -> None:
    # dynamic_lr.py line 90: the ints first, then the floats, then is_stair.
    check_positive_int(total_step, "total_step")
    check_positive_int(step_per_epoch, "step_per_epoch")
    check_positive_int(decay_epoch, "decay_epoch")
    check_positive_float(learning_rate, "learning_rate")
    check_is_float(learning_rate, "learning_rate")
    check_positive_float(decay_rate, "decay_rate")
    check_is_float(decay_rate, "decay_rate")
    check_value_type("is_stair", is_stair, [bool])


def exponential_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                         decay_epoch: int, is_stair: bool = False) -> list[float]:
    r"""``lr[i] = learning_rate * decay_rate ** (current_epoch / decay_epoch)``.

    ``current_epoch = floor(i / step_per_epoch)``; with ``is_stair`` the exponent is
    ``floor(current_epoch / decay_epoch)``.
    ``TypeError`` for a non-int step count or non-float rate or non-bool ``is_stair``;
    ``ValueError`` for a rate or count ``<= 0``.
    """
    _check_inputs(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair)
    lr = []
    for i in range(total_step):  # dynamic_lr.py lines 151-155, verbatim
        if is_stair:
            lr.append(learning_rate * decay_rate ** math.floor(math.floor(i / step_per_epoch) / decay_epoch))
        else:
            lr.append(learning_rate * decay_rate ** (math.floor(i / step_per_epoch) / decay_epoch))
    return lr


def natural_exp_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                         decay_epoch: int, is_stair: bool = False) -> list[float]:
    r"""``lr[i] = learning_rate * e ** (-decay_rate * current_epoch)``, ``current_epoch = floor(i / step_per_epoch)``.

    Without ``is_stair``, ``decay_epoch`` is validated but unused (dynamic_lr.py line 208); with it,
    ``current_epoch`` becomes ``floor(current_epoch / decay_epoch) * decay_epoch`` (line 210) — a
    multiple of ``decay_epoch``, never divided by it. Computed as ``math.e ** x``, not ``math.exp(x)``
    (line 214), which can differ in the last bit. Errors as
    [`exponential_decay_lr`][msadam_compat.nn.dynamic_lr.exponential_decay_lr].
    """
    _check_inputs(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair)
    function: Callable[[int, int], int] = lambda x, y: x  # noqa: E731 - dynamic_lr.py line 208
    if is_stair:
        function = lambda x, y: math.floor(x / y) * y  # noqa: E731 - line 210
    lr = []
    for i in range(total_step):
        lr.append(learning_rate * math.e ** (-decay_rate * function(math.floor(i / step_per_epoch), decay_epoch)))
    return lr


def inverse_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                     decay_epoch: int, is_stair: bool = False) -> list[float]:
    r"""``lr[i] = learning_rate / (1 + decay_rate * current_epoch / decay_epoch)``.

    ``current_epoch = floor(i / step_per_epoch)``; with ``is_stair``,
    ``lr[i] = learning_rate / (1 + decay_rate * floor(current_epoch / decay_epoch))``. Note the
    non-stair order: ``(decay_rate * current_epoch) / decay_epoch`` (line 273). Errors as
    [`exponential_decay_lr`][msadam_compat.nn.dynamic_lr.exponential_decay_lr].
    """
    _check_inputs(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair)
    lr = []
    for i in range(total_step):  # dynamic_lr.py lines 269-273, verbatim
        if is_stair:
            lr.append(learning_rate / (1 + decay_rate * math.floor(math.floor(i / step_per_epoch) / decay_epoch)))
        else:
            lr.append(learning_rate / (1 + decay_rate * math.floor(i / step_per_epoch) / decay_epoch))
    return lr


def cosine_decay_lr(min_lr: float, max_lr: float, total_step: int, step_per_epoch: int,
                    decay_epoch: int) -> list[float]:
    r"""``lr[i] = min_lr + delta * (1 + cos(pi * tmp_epoch / decay_epoch))``.

    ``delta = 0.5 * (max_lr - min_lr)`` (computed once, line 336) and
    ``tmp_epoch = min(floor(i / step_per_epoch), decay_epoch)``; note ``pi * tmp_epoch`` is
    multiplied before dividing (line 340). Checks, in order: ``min_lr`` a ``float`` (``TypeError``)
    ``>= 0``; ``max_lr`` a ``float > 0``; the three counts positive ``int``; ``min_lr < max_lr``
    (``ValueError``).
    """
    if not isinstance(min_lr, float):
        raise TypeError(f"For 'cosine_decay_lr', the argument 'min_lr' must be type of float, "
                        f"but got 'min_lr' type: {type(min_lr)}.")
    check_non_negative_float(min_lr, "min_lr", None)
    check_positive_float(max_lr, "max_lr")
    check_is_float(max_lr, "max_lr")
    check_positive_int(total_step, "total_step")
    check_positive_int(step_per_epoch, "step_per_epoch")
    check_positive_int(decay_epoch, "decay_epoch")
    if min_lr >= max_lr:
        raise ValueError(f"For 'cosine_decay_lr', the 'max_lr' must be greater than the 'min_lr', "
                         f"but got 'max_lr' value: {max_lr}, 'min_lr' value: {min_lr}.")
    delta = 0.5 * (max_lr - min_lr)
    lr = []
    for i in range(total_step):
        tmp_epoch = min(math.floor(i / step_per_epoch), decay_epoch)
        lr.append(min_lr + delta * (1 + math.cos(math.pi * tmp_epoch / decay_epoch)))
    return lr


def polynomial_decay_lr(learning_rate: float, end_learning_rate: float, total_step: int, step_per_epoch: int,
                        decay_epoch: int, power: float, update_decay_epoch: bool = False) -> list[float]:
    r"""``lr[i] = (learning_rate - end) * (1 - tmp_epoch / tmp_decay_epoch) ** power + end`` (end: end_learning_rate).

    With ``current_epoch = floor(i / step_per_epoch)``: ``tmp_epoch = min(current_epoch, decay_epoch)``
    and ``tmp_decay_epoch = decay_epoch``; with ``update_decay_epoch``, ``tmp_epoch = current_epoch``
    and ``tmp_decay_epoch = decay_epoch * max(ceil(current_epoch / decay_epoch), 1)`` (line 425: the
    ``max(..., 1)`` keeps epoch 0 from dividing by zero). ``end_learning_rate`` may exceed
    ``learning_rate`` (the rate then grows). Checks, in order: ``learning_rate`` a ``float > 0``;
    ``end_learning_rate`` a ``float >= 0``; ``power`` a ``float > 0``; the three counts positive
    ``int``; ``update_decay_epoch`` a ``bool``.
    """
    check_positive_float(learning_rate, "learning_rate")
    check_is_float(learning_rate, "learning_rate")
    if not isinstance(end_learning_rate, float):
        raise TypeError(f"For 'polynomial_decay_lr', the argument 'end_learning_rate' must be type of float, "
                        f"but got 'end_learning_rate' type: {type(end_learning_rate)}.")
    check_non_negative_float(end_learning_rate, "end_learning_rate", None)
    check_positive_float(power, "power")
    check_is_float(power, "power")
    check_positive_int(total_step, "total_step")
    check_positive_int(step_per_epoch, "step_per_epoch")
    check_positive_int(decay_epoch, "decay_epoch")
    check_value_type("update_decay_epoch", update_decay_epoch, [bool])

    origin_decay_epoch = decay_epoch
    function: Callable[[int, int], tuple[int, int]] = lambda x, y: (x, min(x, y))  # noqa: E731 - line 423
    if update_decay_epoch:
        function = lambda x, y: (origin_decay_epoch * max(math.ceil(y / origin_decay_epoch), 1), y)  # noqa: E731

    lr = []
    delta = learning_rate - end_learning_rate
    for i in range(total_step):
        current_epoch = math.floor(i / step_per_epoch)
        decay_epoch, tmp_epoch = function(decay_epoch, current_epoch)
        lr.append(delta * (1 - tmp_epoch / decay_epoch) ** power + end_learning_rate)
    return lr


def warmup_lr(learning_rate: float, total_step: int, step_per_epoch: int, warmup_epoch: int) -> list[float]:
    r"""``lr[i] = learning_rate * tmp_epoch / warmup_epoch``.

    ``tmp_epoch = min(floor(i / step_per_epoch), warmup_epoch)``, multiplied before dividing
    (line 492). Checks, in order: ``learning_rate`` a ``float`` (``TypeError``) ``>= 0``
    (``ValueError``); ``warmup_epoch``, ``total_step``, ``step_per_epoch`` positive ``int`` (in that
    order, line 482).
    """
    if not isinstance(learning_rate, float):
        raise TypeError(f"For 'warmup_lr', the argument 'learning_rate' must be type of float, "
                        f"but got 'learning_rate' type: {type(learning_rate)}.")
    check_non_negative_float(learning_rate, "learning_rate", None)
    check_positive_int(warmup_epoch, "warmup_epoch")
    check_positive_int(total_step, "total_step")
    check_positive_int(step_per_epoch, "step_per_epoch")

    lr = []
    for i in range(total_step):
        current_epoch = math.floor(i / step_per_epoch)
        tmp_epoch = min(warmup_epoch, current_epoch)
        lr.append(learning_rate * tmp_epoch / warmup_epoch)
    return lr
