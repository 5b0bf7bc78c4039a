"""Learning-rate schedules, as ``mindspore.nn``'s (MindSpore 2.10, ``nn/learning_rate_schedule.py``).

A schedule is called with the global step and returns that step's learning rate. The built-in ones
validate their arguments in MindSpore's order, with its exception classes and messages, and compute
in float32 with MindSpore's operations in its order, quirks included (each marked ``MindSpore quirk``
beside the source line it copies): their numbers are bit-identical to MindSpore on CPU (glibc).

The global step may be a Python ``int``, a NumPy integer array of shape ``()`` or ``(1,)`` (the
optimizer passes its ``global_step``: int32, shape ``(1,)``) or a :class:`msadam.Tensor`. The
result is a float32 :class:`msadam.Tensor` of the step's shape.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from msadam.tensor import Tensor

__all__ = [
    "CosineDecayLR",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "NaturalExpDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
]

StepLike: TypeAlias = "int | np.integer[Any] | np.ndarray | Tensor"
_f32 = np.float32


# --- validators: the logic (and so the exception classes) of mindspore/_checkparam.py --------------


def _prefix(name: str, cls_name: str | None) -> str:
    return f"For '{cls_name}', the '{name}'" if cls_name else f"The '{name}'"


def _check_legal(value: Any, prefix: str) -> None:
    # _checkparam: `math.isinf(v) or math.isnan(v) or np.isinf(v) or np.isnan(v)`. Kept verbatim: an
    # int beyond float range raises OverflowError (math.isinf) and one beyond uint64 TypeError
    # (np.isinf), exactly as in MindSpore.
    if math.isinf(value) or math.isnan(value) or np.isinf(value) or np.isnan(value):
        raise ValueError(f"{prefix} must be a legal value, but got '{value}'.")


def _check_number(value: Any, name: str, cls_name: str | None, *, kind: type[int] | type[float], strict: bool) -> None:
    """``_checkparam._check_number(value, 0, GT or GE, kind, ...)``: a ``kind`` (not bool), finite, > or >= 0."""
    prefix = _prefix(name, cls_name)
    if not isinstance(value, kind):
        raise TypeError(f"{prefix} must be {kind.__name__}, but got '{type(value).__name__}'")
    _check_legal(value, prefix)
    if isinstance(value, bool) or not (value > 0 if strict else value >= 0):
        msg = (
            f"{prefix} must be {kind.__name__} and must {'>' if strict else '>='} 0, "
            f"but got '{value}' with type '{type(value).__name__}'."
        )
        raise TypeError(msg) if isinstance(value, bool) else ValueError(msg)


_check_positive_int = functools.partial(_check_number, kind=int, strict=True)
_check_positive_float = functools.partial(_check_number, kind=float, strict=True)
_check_non_negative_float = functools.partial(_check_number, kind=float, strict=False)


def _check_is_float(value: Any, name: str, cls_name: str | None) -> None:
    """``_checkparam.check_is_float`` (redundant after the positive-float check, kept for fidelity)."""
    prefix = f"For '{cls_name}', the" if cls_name else "The"
    if not isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"{prefix} type of '{name}' must be 'float', but got '{type(value).__name__}'.")
    _check_legal(value, f"{prefix} '{name}'")


def _check_bool(value: Any, name: str, cls_name: str) -> None:
    """``_checkparam.check_value_type(name, value, [bool], cls_name)``."""
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{cls_name}', the type of '{name}' should be 'bool', but got type '{type(value).__name__}'."
        )


def _check_float_type(value: Any, name: str, cls_name: str) -> None:
    """The explicit ``isinstance(x, float)`` checks of ``CosineDecayLR``/``PolynomialDecayLR``/``WarmUpLR``."""
    if not isinstance(value, float):
        raise TypeError(
            f"For '{cls_name}', the argument '{name}' must be type of float, but got '{name}' type: {type(value)}."
        )


def _check_inputs(learning_rate: Any, decay_rate: Any, decay_steps: Any, is_stair: Any, cls_name: str) -> None:
    """``learning_rate_schedule._check_inputs``, in its order: decay_steps first, is_stair last."""
    _check_positive_int(decay_steps, "decay_steps", cls_name)
    _check_positive_float(learning_rate, "learning_rate", cls_name)
    _check_is_float(learning_rate, "learning_rate", cls_name)
    _check_positive_float(decay_rate, "decay_rate", cls_name)
    _check_is_float(decay_rate, "decay_rate", cls_name)
    _check_bool(is_stair, "is_stair", cls_name)


# --- MindSpore's CPU kernels, as they compute one step (a one-element tensor) -----------------------


@functools.cache
def _libm_powf() -> Callable[[float, float], float] | None:
    """The C library's ``powf``: what MindSpore's CPU ``Pow`` kernel calls for a one-element float32 input."""
    try:
        powf = ctypes.CDLL("libm.so.6").powf  # glibc; else whatever the platform calls its C math library
    except OSError:
        name = ctypes.util.find_library("m")
        if name is None:  # e.g. Windows: the float64 fallback
            return None
        powf = ctypes.CDLL(name).powf
    powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    return powf


def _pow(base: Any, exponent: Any) -> np.ndarray:
    """``ops.Pow`` in float32, element by element with C ``powf`` (MindSpore's one-element CPU path).

    Without a loadable C math library, ``pow`` in float64 rounded to float32 (differs from glibc's
    ``powf`` by one ulp in about 1 case in 1500).
    """
    b, e = np.broadcast_arrays(np.asarray(base, _f32), np.asarray(exponent, _f32))
    powf = _libm_powf()
    if powf is None:
        return np.power(b.astype(np.float64), e.astype(np.float64)).astype(_f32)
    out = [powf(float(x), float(y)) for x, y in zip(b.flat, e.flat, strict=True)]
    return np.array(out, dtype=_f32).reshape(b.shape)


def _sin(x: np.ndarray) -> np.ndarray:
    """``ops.Sin`` in float32: MindSpore's CPU kernel gives ``sin`` correctly rounded (= float64 sin, rounded)."""
    return np.sin(np.asarray(x, np.float64)).astype(_f32)


def _cast_f32(global_step: StepLike) -> np.ndarray:
    """``P.Cast(global_step, mstype.float32)``: the step as a float32 array of its own shape."""
    array = global_step.asnumpy() if isinstance(global_step, Tensor) else np.asarray(global_step)
    return array.astype(_f32)


def _out(value: np.ndarray) -> Tensor:
    return Tensor(np.asarray(value, dtype=_f32))  # every value is float32 already; asarray keeps 0-d shapes


# --- schedules -------------------------------------------------------------------------------------


class LearningRateSchedule:
    """Base class of learning-rate schedules, as ``mindspore.nn.LearningRateSchedule``.

    Subclasses override [`construct`][msadam.LearningRateSchedule.construct]; calling the schedule calls
    ``construct(global_step)``. A subclass may return a Python float, a NumPy value or a
    [`msadam.Tensor`][msadam.Tensor]; the optimizer reads it as a float32 scalar.
    """

    @property
    def cls_name(self) -> str:
        """The class name, as ``mindspore.nn.Cell.cls_name``."""
        return type(self).__name__

    def construct(self, global_step: Any) -> Any:
        """The learning rate at ``global_step``. Must be overridden."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, so ``type(self).from_config(config)`` rebuilds the schedule.

        The built-in schedules define it (frameworks' optimizers serialize a schedule this way, e.g.
        ``msadam_tensorflow.Adam.get_config``); a user's subclass must override it to be serialized.
        """
        raise NotImplementedError(f"{self.cls_name} does not define get_config(), so it cannot be serialized.")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """The schedule [`get_config`][msadam.LearningRateSchedule.get_config] describes.

        Its arguments are checked again.
        """
        return cls(**config)

    def __call__(self, global_step: Any) -> Any:
        # MindSpore's kernels overflow to inf silently; so do these (no NumPy RuntimeWarning).
        with np.errstate(all="ignore"):
            return self.construct(global_step)

    def __repr__(self) -> str:
        return f"{self.cls_name}()"


class _DecayLR(LearningRateSchedule):
    """The common part of the three ``(learning_rate, decay_rate, decay_steps, is_stair)`` schedules."""

    def _setup(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool) -> None:
        _check_inputs(learning_rate, decay_rate, decay_steps, is_stair, self.cls_name)
        self.learning_rate = learning_rate
        self.decay_rate = decay_rate
        self.decay_steps = decay_steps
        self.is_stair = is_stair

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "decay_rate": self.decay_rate,
                "decay_steps": self.decay_steps, "is_stair": self.is_stair}

    def _progress(self, global_step: StepLike) -> np.ndarray:
        """``p = cast(global_step, float32) / decay_steps``, floored when ``is_stair`` (Exponential, Inverse)."""
        p = _cast_f32(global_step) / _f32(self.decay_steps)
        return np.floor(p) if self.is_stair else p  # p = ops.Floor()(p)


class ExponentialDecayLR(_DecayLR):
    """Exponential decay: ``lr(t) = learning_rate * decay_rate ** p``.

    ``p = t / decay_steps``, or ``floor(t / decay_steps)`` when ``is_stair``. All in float32.

    Args:
        learning_rate: the initial learning rate, a ``float > 0``.
        decay_rate: the decay rate, a ``float > 0``.
        decay_steps: steps per decay period, an ``int > 0``.
        is_stair: decay once every ``decay_steps`` steps instead of continuously.

    Raises:
        TypeError / ValueError: as MindSpore, checking ``decay_steps``, ``learning_rate``,
            ``decay_rate``, ``is_stair`` in that order.
    """

    def __init__(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False) -> None:
        self._setup(learning_rate, decay_rate, decay_steps, is_stair)  # own __init__: error messages name the class

    def construct(self, global_step: StepLike) -> Tensor:
        p = self._progress(global_step)
        # return self.learning_rate * self.pow(self.decay_rate, p)
        return _out(_f32(self.learning_rate) * _pow(self.decay_rate, p))


class NaturalExpDecayLR(_DecayLR):
    """Natural exponential decay: ``lr(t) = learning_rate * e ** (-decay_rate * p)``.

    ``p = t`` (the raw step, **not** divided by ``decay_steps``), or, when ``is_stair``,
    ``p = floor(t / decay_steps) * decay_steps``. ``e`` is ``math.e`` rounded to float32 and raised
    with a float32 power, not ``exp``. MindSpore's documentation says ``p = t / decay_steps``; its code,
    reproduced here, never divides by ``decay_steps``.

    Args:
        learning_rate: the initial learning rate, a ``float > 0``.
        decay_rate: the decay rate per step, a ``float > 0``.
        decay_steps: the stair width, an ``int > 0`` (only used when ``is_stair``).
        is_stair: hold the rate constant over each ``decay_steps`` window.

    Raises:
        TypeError / ValueError: as [`ExponentialDecayLR`][msadam.ExponentialDecayLR].
    """

    def __init__(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False) -> None:
        self._setup(learning_rate, decay_rate, decay_steps, is_stair)  # own __init__: error messages name the class
        self.math_e = math.e

    def construct(self, global_step: StepLike) -> Tensor:
        p = _cast_f32(global_step)  # p = self.cast(global_step, mstype.float32)
        if self.is_stair:
            # MindSpore quirk: p = ops.FloorDiv()(p, self.decay_steps) * self.decay_steps -- the
            # stair start step, never divided by decay_steps (the documented formula is p = floor(t/d)).
            d = _f32(self.decay_steps)
            p = np.floor(p / d) * d
        # MindSpore quirk: return self.learning_rate * self.pow(self.math_e, -self.decay_rate * p)
        # -- pow(float32(e), x), not exp(x).
        return _out(_f32(self.learning_rate) * _pow(self.math_e, _f32(-self.decay_rate) * p))


class InverseDecayLR(_DecayLR):
    """Inverse-time decay: ``lr(t) = learning_rate / (1 + decay_rate * p)``.

    ``p = t / decay_steps``, or ``floor(t / decay_steps)`` when ``is_stair``. All in float32.

    Args and errors: as [`ExponentialDecayLR`][msadam.ExponentialDecayLR].
    """

    def __init__(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False) -> None:
        self._setup(learning_rate, decay_rate, decay_steps, is_stair)  # own __init__: error messages name the class

    def construct(self, global_step: StepLike) -> Tensor:
        p = self._progress(global_step)
        # MindSpore quirk: return self.learning_rate / (1 + self.decay_rate * p) -- a Python float divided
        # by a Tensor runs on CPU as learning_rate * (1 / x) in float32 (two roundings), not as x / y.
        reciprocal = _f32(1.0) / (_f32(1.0) + _f32(self.decay_rate) * p)
        return _out(_f32(self.learning_rate) * reciprocal)


class CosineDecayLR(LearningRateSchedule):
    """Cosine decay: ``lr(t) = min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * min(t, decay_steps) / decay_steps))``.

    Computed as MindSpore does: ``cos(x)`` as ``sin(pi * (p + 0.5))`` in float32 (so the value at
    ``decay_steps`` is ``min_lr`` up to float32 rounding, not exactly), with ``0.5 * (max_lr - min_lr)``
    in float64 first.

    Args:
        min_lr: the final learning rate, a ``float >= 0``.
        max_lr: the initial learning rate, a ``float > 0`` and ``> min_lr``.
        decay_steps: steps to decay over, an ``int > 0``; the rate stays at ``min_lr`` after.

    Raises:
        TypeError / ValueError: as MindSpore, checking ``min_lr`` (type, then ``>= 0``), ``max_lr``,
            ``decay_steps``, then ``min_lr < max_lr`` (``ValueError``).
    """

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int) -> None:
        _check_float_type(min_lr, "min_lr", self.cls_name)
        _check_non_negative_float(min_lr, "min_lr", self.cls_name)
        _check_positive_float(max_lr, "max_lr", self.cls_name)
        _check_is_float(max_lr, "max_lr", self.cls_name)
        _check_positive_int(decay_steps, "decay_steps", self.cls_name)
        if min_lr >= max_lr:
            raise ValueError(
                "For 'CosineDecayLR', the 'max_lr' must be greater than the 'min_lr', "
                f"but got 'max_lr' value: {max_lr}, 'min_lr' value: {min_lr}."
            )
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.decay_steps = decay_steps
        self.math_pi = math.pi
        self.delta = 0.5 * (max_lr - min_lr)  # MindSpore: in Python (float64), cast to float32 on use

    def get_config(self) -> dict[str, Any]:
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "decay_steps": self.decay_steps}

    def construct(self, global_step: StepLike) -> Tensor:
        # p = self.cast(self.min(global_step, self.decay_steps), mstype.float32). Rounding to float32
        # is monotonic, so casting first and taking the minimum after gives the same value.
        d = _f32(self.decay_steps)
        p = np.minimum(_cast_f32(global_step), d)
        # MindSpore quirk: cos(pi * p / d) written as
        # self.min_lr + self.delta * (1.0 + self.sin(self.math_pi * (p / self.decay_steps + 0.5)))
        angle = _f32(self.math_pi) * (p / d + _f32(0.5))
        return _out(_f32(self.min_lr) + _f32(self.delta) * (_f32(1.0) + _sin(angle)))


class PolynomialDecayLR(LearningRateSchedule):
    """Polynomial decay: ``lr(t) = (learning_rate - end_learning_rate) * (1 - t' / d') ** power + end_learning_rate``.

    Without ``update_decay_steps``: ``t' = min(t, decay_steps)``, ``d' = decay_steps`` (the rate stays
    at ``end_learning_rate`` after). With it: ``t' = t`` and
    ``d' = decay_steps * max(ceil(t / decay_steps), 1)`` (the decay restarts every ``decay_steps``;
    the step at a multiple of ``decay_steps`` gives ``end_learning_rate``). ``learning_rate -
    end_learning_rate`` is taken in float64, the rest in float32, as MindSpore does.

    Args:
        learning_rate: the initial learning rate, a ``float > 0``.
        end_learning_rate: the final learning rate, a ``float >= 0`` (it may exceed ``learning_rate``).
        decay_steps: steps to decay over, an ``int > 0``.
        power: the polynomial's power, a ``float > 0``.
        update_decay_steps: restart the decay every ``decay_steps`` steps.

    Raises:
        TypeError / ValueError: as MindSpore, checking ``learning_rate``, ``end_learning_rate`` (type,
            then ``>= 0``), ``decay_steps``, ``update_decay_steps``, then ``power``.
    """

    def __init__(
        self,
        learning_rate: float,
        end_learning_rate: float,
        decay_steps: int,
        power: float,
        update_decay_steps: bool = False,
    ) -> None:
        # MindSpore quirk: the learning_rate checks pass no class name (messages read "The 'learning_rate'").
        _check_positive_float(learning_rate, "learning_rate", None)
        _check_is_float(learning_rate, "learning_rate", None)
        _check_float_type(end_learning_rate, "end_learning_rate", self.cls_name)
        _check_non_negative_float(end_learning_rate, "end_learning_rate", self.cls_name)
        _check_positive_int(decay_steps, "decay_steps", self.cls_name)
        _check_bool(update_decay_steps, "update_decay_steps", self.cls_name)
        _check_positive_float(power, "power", self.cls_name)
        _check_is_float(power, "power", self.cls_name)
        self.decay_steps = decay_steps
        self.start_learning_rate = learning_rate
        self.end_learning_rate = end_learning_rate
        # self.diff_learning_rate = learning_rate - end_learning_rate  (float64, cast to float32 on use)
        self.diff_learning_rate = learning_rate - end_learning_rate
        self.power = power
        self.update_decay_steps = update_decay_steps

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.start_learning_rate, "end_learning_rate": self.end_learning_rate,
                "decay_steps": self.decay_steps, "power": self.power, "update_decay_steps": self.update_decay_steps}

    def construct(self, global_step: StepLike) -> Tensor:
        step = _cast_f32(global_step)  # tmp_global_step = ops.Cast()(global_step, mstype.float32)
        decay: np.ndarray | np.float32 = _f32(self.decay_steps)  # tmp_decay_step = self.decay_steps
        if self.update_decay_steps:
            # tmp_decay_step = tmp_decay_step * self.max(self.ceil(tmp_global_step / tmp_decay_step), 1)
            decay = decay * np.maximum(np.ceil(step / decay), _f32(1.0))
        else:
            step = np.minimum(step, decay)  # tmp_global_step = self.min(tmp_global_step, tmp_decay_step)
        p = step / decay
        # lr = self.diff_learning_rate * self.pow(1.0 - p, self.power) + self.end_learning_rate
        lr = _f32(self.diff_learning_rate) * _pow(_f32(1.0) - p, self.power)
        return _out(lr + _f32(self.end_learning_rate))


class WarmUpLR(LearningRateSchedule):
    """Linear warm-up: ``lr(t) = learning_rate * min(t, warmup_steps) / warmup_steps``.

    In float32; the rate stays at ``learning_rate`` after ``warmup_steps``.

    Args:
        learning_rate: the target learning rate, a ``float >= 0``. (MindSpore documents ``> 0`` but
            checks ``>= 0``; ``0.0`` is accepted here too.)
        warmup_steps: steps to warm up over, an ``int > 0``.

    Raises:
        TypeError / ValueError: as MindSpore, checking ``learning_rate`` (type, then ``>= 0``), then
            ``warmup_steps``.
    """

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        _check_float_type(learning_rate, "learning_rate", self.cls_name)
        # MindSpore quirk: validator.check_non_negative_float(learning_rate, ...) -- 0.0 passes.
        _check_non_negative_float(learning_rate, "learning_rate", self.cls_name)
        _check_positive_int(warmup_steps, "warmup_steps", self.cls_name)
        self.warmup_steps = warmup_steps
        self.learning_rate = learning_rate

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}

    def construct(self, global_step: StepLike) -> Tensor:
        # warmup_percent = self.cast(self.min(global_step, self.warmup_steps), mstype.float32) / self.warmup_steps
        # (cast-then-min equals min-then-cast: rounding to float32 is monotonic)
        w = _f32(self.warmup_steps)
        warmup_percent = np.minimum(_cast_f32(global_step), w) / w
        return _out(_f32(self.learning_rate) * warmup_percent)  # return self.learning_rate * warmup_percent
