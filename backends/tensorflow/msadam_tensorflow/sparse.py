"""``tf.IndexedSlices`` gradients as :class:`msadam.RowTensor` (for ``msadam.Adam`` on the tensorflow backend)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

import msadam

__all__ = ["row_tensor"]


def row_tensor(grad: Any) -> msadam.RowTensor:
    """A ``tf.IndexedSlices`` (what ``tf.gather`` and embedding lookups differentiate to) as a RowTensor.

    Repeated indices are kept, not summed: MindSpore's sparse paths depend on them. A RowTensor is
    returned as is.
    """
    if isinstance(grad, msadam.RowTensor):
        return grad
    if not isinstance(grad, tf.IndexedSlices):
        raise TypeError(f"Expected a tf.IndexedSlices or a msadam.RowTensor, got {type(grad).__name__}.")
    if grad.dense_shape is None:
        raise ValueError("A tf.IndexedSlices without a dense_shape cannot be a RowTensor: its table size is unknown.")
    return msadam.RowTensor(grad.indices, grad.values, tuple(int(d) for d in grad.dense_shape.numpy()))
