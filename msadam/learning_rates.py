"""Learning-rate and weight-decay kinds, as ``mindspore.nn.Optimizer`` preprocesses and reads them.

``learning_rate`` may be a ``float``/``int`` (fixed), a 0-d ``Tensor`` (fixed), a 1-D ``Tensor`` or
any ``Iterable`` (dynamic: step *i* takes element *i*), or a ``LearningRateSchedule`` (dynamic:
called with the global step). Fixed learning rates live in a float32 ``Parameter`` the user may
change between steps (``opt.learning_rate.set_data(...)``), exactly as in MindSpore.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from msadam import validation
from msadam.schedules import LearningRateSchedule
from msadam.tensor import Parameter, Tensor

__all__ = [
    "DynamicWeightDecay",
    "FixedLR",
    "IteratorLR",
    "LRSource",
    "ScheduleLR",
    "UncallableLR",
    "build_lr",
    "preprocess_lr",
    "preprocess_weight_decay",
]

PreprocessedLR = float | Tensor | LearningRateSchedule


def _host_parameter(value: np.ndarray, name: str) -> Parameter:
    """A Parameter on the NumPy backend: hyper-parameters and step counters stay on the host."""
    return Parameter(value, name=name, backend="numpy")


def _as_float32_scalar(value: Any) -> np.float32:
    return np.float32(np.asarray(value, dtype=np.float32).reshape(()))


def preprocess_lr(learning_rate: Any) -> tuple[PreprocessedLR, bool]:
    """Check one learning rate and normalise it; returns ``(value, is_dynamic)``.

    ``Optimizer._preprocess_single_lr``: ``float``/``int`` (``True`` is ``1.0``) must be finite and
    ``>= 0``; a 0-d ``Tensor`` (a ``Parameter`` too: MindSpore's is a Tensor) is fixed (no sign
    check); a ``LearningRateSchedule`` is kept; a ``Tensor`` of 2+ dims is a ``ValueError``; any
    other ``Iterable`` becomes a float32 vector (``np.array(list(lr))``, so ``'a'`` fails with
    ``ValueError`` and a 0-d array with ``TypeError``);
    anything else is a ``TypeError``.
    """
    if isinstance(learning_rate, Parameter):
        # mindspore.Parameter is a Tensor: a 0-d one is a fixed rate, 1-D a dynamic one, 2-D a ValueError.
        learning_rate = Tensor(learning_rate.asnumpy())
    if isinstance(learning_rate, float | int):
        value = validation.check_non_negative_float("learning rate", float(learning_rate), "Optimizer")
        return value, False
    if isinstance(learning_rate, Tensor) and learning_rate.ndim == 0:
        return Tensor(learning_rate.asnumpy(), dtype=np.float32), False
    if isinstance(learning_rate, LearningRateSchedule):
        return learning_rate, True
    if isinstance(learning_rate, Tensor):
        if learning_rate.ndim > 1:
            raise ValueError(
                "For 'Optimizer', if 'learning_rate' is Tensor type, then the dimension of it should "
                f"be 0 or 1, but got {learning_rate.ndim}."
            )
        return Tensor(learning_rate.asnumpy(), dtype=np.float32), True
    if validation.is_iterable(learning_rate):
        vector = np.array(list(learning_rate)).astype(np.float32)
        return Tensor(vector), True
    raise TypeError(
        "For 'Optimizer', the argument 'learning_rate' must be int, float, Tensor, Iterable or "
        f"LearningRateSchedule, but got {type(learning_rate)}."
    )


class FixedLR:
    """A fixed learning rate held by a float32 Parameter.

    ``converted``: beside a dynamic group learning rate MindSpore wraps it in ``_ConvertToCell``,
    whose ``construct`` returns ``learning_rate + 1.0 - 1.0`` — in float32, so e.g. 0.01 reads back
    as 0.0099999905. msadam reproduces the rounding.
    """

    dynamic = False

    def __init__(self, value: float | Tensor, name: str) -> None:
        self.learning_rate = _host_parameter(np.asarray(value, dtype=np.float32).reshape(()), name)
        self.converted = False

    def __call__(self, global_step: np.ndarray) -> np.float32:
        value = _as_float32_scalar(self.learning_rate.data)
        if self.converted:
            one = np.float32(1.0)
            value = np.float32(np.float32(value + one) - one)
        return value


class IteratorLR:
    """A 1-D learning rate: step *i* takes element *i* (MindSpore's ``_IteratorLearningRate``)."""

    dynamic = True

    def __init__(self, value: Tensor, name: str) -> None:
        self.learning_rate = _host_parameter(value.asnumpy(), name)

    def __call__(self, global_step: np.ndarray) -> np.float32:
        table = self.learning_rate.data
        step = int(np.asarray(global_step).reshape(-1)[0])
        if not 0 <= step < table.shape[0]:
            # MindSpore's Gather fails on an index past the end of the learning-rate vector.
            raise RuntimeError(
                f"For 'Optimizer', the dynamic learning rate '{self.learning_rate.name}' has "
                f"{table.shape[0]} values, so it cannot be read at global step {step}."
            )
        return np.float32(table[step])


class ScheduleLR:
    """A ``LearningRateSchedule`` called with the global step (the schedule object is the source)."""

    dynamic = True

    def __init__(self, schedule: LearningRateSchedule) -> None:
        self.schedule = schedule

    def __call__(self, global_step: np.ndarray) -> np.float32:
        return _as_float32_scalar(self.schedule(global_step.copy()))


class UncallableLR:
    """A 2+-dim learning rate built from an iterable: MindSpore keeps the Tensor and fails when it calls it.

    ``_preprocess_single_lr`` turns any iterable into a Tensor without a dimension check, and
    ``_build_single_lr`` returns a 2-D one unchanged; ``get_lr`` then calls it ("not callable").
    """

    dynamic = True

    def __init__(self, value: Tensor) -> None:
        self.learning_rate = value

    def __call__(self, global_step: np.ndarray) -> np.float32:
        raise ValueError(f"The object is not callable: a learning rate of shape {self.learning_rate.shape} "
                         "must be a scalar or a 1-D vector.")


LRSource = FixedLR | IteratorLR | ScheduleLR | UncallableLR


def build_lr(value: PreprocessedLR, name: str) -> LRSource:
    """``Optimizer._build_single_lr``: a fixed value becomes a Parameter called ``name``."""
    if isinstance(value, LearningRateSchedule):
        return ScheduleLR(value)
    if isinstance(value, Tensor) and value.ndim == 1:
        return IteratorLR(value, name)
    if isinstance(value, Tensor) and value.ndim > 1:
        return UncallableLR(value)
    return FixedLR(value, name)


class DynamicWeightDecay:
    """A weight decay computed from the global step, times the loss scale (``_WrappedWeightDecay``)."""

    def __init__(self, weight_decay: Callable[[Any], Any], loss_scale: float) -> None:
        self.weight_decay = weight_decay
        self.loss_scale = np.float32(loss_scale)

    def __call__(self, global_step: np.ndarray) -> np.float32:
        return np.float32(_as_float32_scalar(self.weight_decay(global_step.copy())) * self.loss_scale)


def preprocess_weight_decay(weight_decay: Any, loss_scale: float) -> float | DynamicWeightDecay:
    """``Optimizer._preprocess_weight_decay``: a number ``>= 0`` times ``loss_scale``, or dynamic.

    MindSpore accepts a ``Cell`` for dynamic weight decay; msadam accepts a ``LearningRateSchedule``
    or any callable of the step (a deliberate extension: there is no ``Cell`` outside MindSpore).
    """
    if isinstance(weight_decay, float | int):
        value = validation.check_non_negative_float("weight_decay", float(weight_decay), "Optimizer")
        return value * loss_scale
    if callable(weight_decay) and not isinstance(weight_decay, type):
        return DynamicWeightDecay(weight_decay, loss_scale)
    raise TypeError(
        "For 'Optimizer', the argument 'Weight_decay' must be int, float or Cell.but got "
        f"{type(weight_decay)}"
    )
