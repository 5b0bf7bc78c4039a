"""MindSpore's dtype names (``ms.float32``, ``ms.int32``, ...), as NumPy dtypes.

A ported script writes ``ms.Tensor(x, ms.float32)`` or compares ``t.dtype == ms.float32``; here the
dtype objects are ``numpy.dtype`` instances, so they also work anywhere NumPy takes a dtype.
``bfloat16`` needs ``ml_dtypes`` (installed with JAX and TensorFlow) and is ``None`` without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "bfloat16", "bool_", "float16", "float32", "float64", "float_", "int8", "int16", "int32", "int64", "int_",
    "to_numpy_dtype", "uint8",
]

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
# mindspore/common/dtype.py: float_ is float32 and int_ is int32 (its "default" types).
float_ = float32
int_ = int32

try:  # bfloat16 is not a NumPy type; ml_dtypes provides it (as JAX and TensorFlow do).
    import ml_dtypes

    bfloat16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    bfloat16 = None


def to_numpy_dtype(dtype: Any) -> np.dtype:
    """A MindSpore-style dtype (one of this module's, a NumPy dtype, or a name such as ``"float32"``) as NumPy's."""
    if dtype is None:
        raise TypeError("dtype must not be None here.")
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{dtype!r} is not a dtype msadam_compat understands: use ms.float32, ms.int32, ...") from exc
