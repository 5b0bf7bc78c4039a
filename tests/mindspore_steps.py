"""Stepping a real ``mindspore.nn.Adam`` with ``RowTensor`` gradients, for the live tests.

PyNative mode rejects a ``RowTensor`` argument, so a sparse step is a small Cell whose ``@jit``
``construct`` builds ``RowTensorInner(indices, values, dense_shape)`` and calls the optimizer (as
``msadam_mindspore`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def sparse_caller(mindspore: ModuleType) -> Callable[[Any, tuple[int, ...]], Any]:
    """``Cell(opt, shape)(indices, values)`` calls ``opt((RowTensorInner(indices, values, shape),))`` in a graph."""
    from mindspore.common.sparse_tensor import RowTensorInner

    class SparseStep(mindspore.nn.Cell):  # type: ignore[name-defined]
        def __init__(self, opt: Any, dense_shape: tuple[int, ...]) -> None:
            super().__init__(auto_prefix=False)  # keep the Parameters' names
            self.opt = opt
            self.dense_shape = dense_shape

        @mindspore.jit
        def construct(self, indices: Any, values: Any) -> Any:
            return self.opt((RowTensorInner(indices, values, self.dense_shape),))

    return SparseStep
