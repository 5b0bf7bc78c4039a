"""The TensorFlow backend: MindSpore's Adam on ``tf.Variable`` parameters, updated in place.

Parameters are variables — a ``tf.Variable`` handed in (a model's weight) is updated in place and
stays the same object; a value built from NumPy (``Parameter(array, backend="tensorflow")``) becomes
a new variable when an optimizer takes it. Gradients are ``tf.Tensor``s (or NumPy arrays). The
optimizer state (``m``, ``v``, ``vhat``) is non-trainable variables shaped like the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from msadam.backend import Bucket, SparseGrad, SparsePath, StepHyper
from msadam.tensor import RowTensor
from msadam_tensorflow import kernels, steps
from msadam_tensorflow.rounding import fma_mode
from msadam_tensorflow.sparse import row_tensor

__all__ = ["TensorflowBackend"]

Tensor = Any


def _keras_tf_variable(array: object) -> object:
    """The ``tf.Variable`` behind a Keras 3 variable (its public ``value``), else ``None``.

    Keras 3's ``keras.Variable`` is not a ``tf.Variable``; with the TensorFlow backend its ``value``
    is the ``tf.Variable`` that holds the weight. Checked by module name, so Keras is never imported here.
    """
    if not type(array).__module__.startswith("keras"):
        return None
    return getattr(array, "value", None)


def _variable(value: Tensor) -> tf.Variable:
    return value if isinstance(value, tf.Variable) else tf.Variable(value, trainable=True)


class TensorflowBackend:
    """MindSpore's Adam on ``tf.Variable``s (see the module docstring)."""

    name = "tensorflow"

    def version(self) -> str:
        return str(tf.__version__)

    def devices(self) -> list[str]:
        return [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()]

    def owns(self, array: object) -> bool:
        return isinstance(array, tf.Tensor | tf.Variable) or isinstance(_keras_tf_variable(array), tf.Variable)

    def adopt(self, array: object) -> Tensor:
        """A Keras 3 variable (TensorFlow backend) as the ``tf.Variable`` it wraps, so that a step
        updates the model's weight in place; any other array as it is."""
        wrapped = _keras_tf_variable(array)
        return wrapped if isinstance(wrapped, tf.Variable) else array

    def from_numpy(self, array: np.ndarray) -> Tensor:
        return tf.constant(np.array(array, copy=True))

    def all_finite(self, arrays: Sequence[Tensor]) -> bool:
        """Whether every element of every array is finite, read back once (``msadam_compat.amp.all_finite``).
        Integer and bool arrays are finite (``tf.math.is_finite`` takes floating types only)."""
        checks = [tf.reduce_all(tf.math.is_finite(a)) for a in arrays if a.dtype.is_floating]
        return bool(tf.reduce_all(tf.stack(checks))) if checks else True

    def to_numpy(self, array: Tensor) -> np.ndarray:
        return np.asarray(array.numpy())

    def synchronize(self, arrays: Sequence[Tensor]) -> None:
        """Wait for the work writing these arrays: read one element of the last (ops run in order per device)."""
        if arrays:
            tf.reshape(arrays[-1], [-1])[:1].numpy()

    def allocator_memory(self, reset: bool = False) -> tuple[int, int] | None:
        """TensorFlow's allocator statistics for the first GPU, else the CPU (None where it keeps none:
        on the CPU, only the BFC allocator that oneDNN brings counts)."""
        device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
        try:
            if reset:
                tf.config.experimental.reset_memory_stats(device)
            info = tf.config.experimental.get_memory_info(device)
        except (ValueError, tf.errors.OpError):
            return None
        return int(info["current"]), int(info["peak"])

    def shape(self, array: Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in array.shape)

    def dtype(self, array: Tensor) -> np.dtype:
        return np.dtype(array.dtype.as_numpy_dtype)

    def cast(self, array: Tensor, dtype: np.dtype) -> Tensor:
        target = tf.as_dtype(np.dtype(dtype))
        return array if array.dtype == target else tf.cast(array, target)

    def assign(self, target: Tensor, value: Tensor) -> Tensor:
        if isinstance(target, tf.Variable):
            target.assign(value)
            return target
        return tf.identity(value)

    def new_bucket(self, params: Sequence[Tensor], use_amsgrad: bool) -> Bucket:
        variables = [_variable(p) for p in params]

        def zeros() -> list[tf.Variable]:
            return [tf.Variable(tf.zeros_like(p), trainable=False) for p in variables]

        return Bucket(variables, zeros(), zeros(), zeros() if use_amsgrad else None, {"fma": fma_mode()})

    def dense_step(self, bucket: Bucket, grads: Sequence[Tensor], hyper: StepHyper) -> None:
        if not bucket.params:
            return
        for i, w in enumerate(bucket.params):  # a user's set_data on a plain tensor: adopt it as a variable
            if not isinstance(w, tf.Variable):
                bucket.params[i] = _variable(w)
        cfg = kernels.Config(hyper.use_nesterov, hyper.use_amsgrad, hyper.centralize,
                             bucket.cache.get("fma") or fma_mode())
        steps.dense_step(bucket.params, bucket.m, bucket.v, bucket.vhat if hyper.use_amsgrad else None,
                         [tf.convert_to_tensor(g) for g in grads], kernels.scalars(hyper), cfg)

    def as_row_tensor(self, grad: object) -> RowTensor | None:
        """A ``tf.IndexedSlices`` (an embedding's or ``tf.gather``'s gradient) as a RowTensor, repeats kept."""
        return row_tensor(grad) if isinstance(grad, tf.IndexedSlices) else None

    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        cfg = kernels.SparseConfig(hyper.use_nesterov, grad.lazy, grad.path is SparsePath.COMPOSITE,
                                   grad.deduplicate)
        steps.sparse_step_eager(bucket.params[index], bucket.m[index], bucket.v[index],
                                   tf.convert_to_tensor(grad.indices), tf.convert_to_tensor(grad.values),
                                   kernels.scalars(hyper), cfg)

    def __repr__(self) -> str:
        return "TensorflowBackend()"
