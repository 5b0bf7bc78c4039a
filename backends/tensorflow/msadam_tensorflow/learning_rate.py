"""MindSpore's dynamic learning rates as a Keras ``LearningRateSchedule``, read on the host.

``mindspore.nn.Adam`` takes, besides a number, a list or 1-D ``Tensor`` (step *i* takes element *i*)
or a ``LearningRateSchedule`` cell called with the global step. :class:`MindSporeLearningRate`
wraps any of them (msadam's own, :mod:`msadam.learning_rates` and :mod:`msadam.schedules`) for a
Keras optimizer: each step it evaluates the msadam source on the host (``tf.numpy_function``, one
float32 scalar), so the value has MindSpore's bits — no TensorFlow re-implementation of ``pow`` or
``cos`` can promise that — and fails as MindSpore fails (a list read past its end: ``RuntimeError``;
in a graph, TensorFlow reports it as an ``UnknownError`` naming it).

Keras's global step is ``optimizer.iterations``, which is 0 during the first update, as MindSpore's
``global_step`` is. A host read cannot be compiled by XLA (TensorFlow then reports an unsupported
``PyFunc`` op): under ``jit_compile=True`` use a number or a Keras schedule instead.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

import msadam
from msadam import schedules
from msadam.learning_rates import LRSource, build_lr, preprocess_lr

__all__ = ["MindSporeLearningRate", "as_mindspore", "is_dynamic"]


def as_mindspore(learning_rate: Any) -> Any:
    """A ``tf.Tensor`` of 1+ dims as a MindSpore Tensor (its values); anything else as it is."""
    if isinstance(learning_rate, tf.Tensor | tf.Variable) and len(learning_rate.shape) > 0:
        return msadam.Tensor(learning_rate.numpy())
    return learning_rate


def is_dynamic(learning_rate: Any) -> bool:
    """Whether ``learning_rate`` is one of MindSpore's dynamic kinds (a list, a 1-D array or Tensor, an
    ``msadam`` ``LearningRateSchedule``), checked as MindSpore checks it (``preprocess_lr``: a
    negative number is a ``ValueError``, a 2-D Tensor too, a string a ``TypeError``)."""
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return False
    if isinstance(learning_rate, tf.Tensor | tf.Variable) and len(learning_rate.shape) == 0:
        learning_rate = float(learning_rate.numpy())
    return bool(preprocess_lr(as_mindspore(learning_rate))[1])


@keras.saving.register_keras_serializable(package="msadam")
class MindSporeLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A MindSpore dynamic learning rate (list, 1-D array or Tensor, ``msadam`` ``LearningRateSchedule``)
    as a Keras schedule of ``optimizer.iterations`` (see the module docstring)."""

    def __init__(self, learning_rate: Any) -> None:
        learning_rate = as_mindspore(learning_rate)
        self.learning_rate = learning_rate
        self.source: LRSource = build_lr(preprocess_lr(learning_rate)[0], "learning_rate")

    def _read(self, step: np.ndarray) -> np.ndarray:
        return np.asarray(self.source(np.asarray(step, np.int32).reshape(1)), np.float32)

    def __call__(self, step: Any) -> tf.Tensor:
        value = tf.numpy_function(self._read, [tf.cast(step, tf.int32)], tf.float32, stateful=False,
                                  name="mindspore_learning_rate")
        return tf.reshape(value, ())

    def get_config(self) -> dict[str, Any]:
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            return {"schedule": type(lr).__name__, "config": lr.get_config()}
        if isinstance(lr, msadam.Tensor):
            return {"values": lr.asnumpy().tolist(), "tensor": True}
        return {"values": np.asarray(list(lr), np.float32).tolist(), "tensor": False}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MindSporeLearningRate:
        if "schedule" in config:
            schedule_type = getattr(schedules, str(config["schedule"]), None)
            if not (isinstance(schedule_type, type) and issubclass(schedule_type, schedules.LearningRateSchedule)):
                raise ValueError(f"Unknown msadam learning-rate schedule {config['schedule']!r}.")
            return cls(schedule_type.from_config(dict(config["config"])))
        values = config["values"]
        return cls(msadam.Tensor(np.asarray(values, np.float32)) if config.get("tensor") else list(values))
