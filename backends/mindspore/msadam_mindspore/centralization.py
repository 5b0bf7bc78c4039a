"""Ascend's gradient ``Centralization`` kernel, emulated with portable MindSpore ops (see :mod:`.runtime`)."""

from __future__ import annotations

from typing import Any

from mindspore import nn, ops


class Centralization(nn.Cell):
    """``x - ReduceMean(keep_dims=True)(x, axis)``: what ``inner.Centralization`` computes on Ascend.

    Called by MindSpore as ``op_gc(gradient, axis)`` with ``axis = [1, ..., ndim-1]``
    (``mindspore/nn/optim/optimizer.py`` lines 883 and 899); exactly the recorder's ``_Centralization``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mean = ops.ReduceMean(keep_dims=True)

    def construct(self, x: Any, axis: Any) -> Any:
        return x - self.mean(x, tuple(axis))
