"""Float32 rounding control for TensorFlow: MindSpore's fused multiply-adds, and nothing else fused.

MindSpore's CPU Adam kernel (nnacl ``AdamFp32``) rounds some ``a*b + c`` once (an FMA) and every
other product on its own. Which TensorFlow gives depends on how a function runs: in plain graph
mode every op is its own kernel (nothing is fused), while XLA (``jit_compile=True``) contracts every
``a*b + c`` it sees, as in JAX (see ``msadam_jax.rounding``). The dense step runs under XLA for
speed, so it uses the same two tools:

* :func:`rounded` — a product OR-ed bitwise with a zero XLA cannot see (a traced ``int32``), so it is
  rounded on its own; :func:`fma` — ``a*b + c`` for XLA to contract (``"contract"``, probed once), or
  computed exactly in float64 (``"emulate"``, where the probe fails or ``MSADAM_TF_FMA=emulate``).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from msadam.backends.numpy_kernels import fma32 as reference_fma32

__all__ = ["ENV_FMA", "FmaMode", "divide_exactly", "fma", "fma_emulated", "fma_mode", "rounded"]

Tensor = Any
FmaMode = Literal["contract", "emulate"]
ENV_FMA = "MSADAM_TF_FMA"

_INT_OF_WIDTH = {2: tf.int16, 4: tf.int32, 8: tf.int64}


def rounded(x: Tensor, zero: Tensor) -> Tensor:
    """``x`` as stored in its dtype: the operation that produced it is never fused into what follows."""
    if not x.dtype.is_floating:
        return x
    int_type = _INT_OF_WIDTH[x.dtype.size]
    bits = tf.bitwise.bitwise_or(tf.bitcast(x, int_type), tf.cast(zero, int_type))
    return tf.bitcast(bits, x.dtype)


def divide_exactly(x: Tensor, divisor: float, zero: Tensor) -> Tensor:
    """``x / divisor``, correctly rounded, for a constant ``divisor``.

    Both Grappler's arithmetic optimizer and XLA turn a division by a scalar into a multiplication
    by its reciprocal, which rounds differently unless the divisor is a power of two. Here the
    divisor is a tensor as large as ``x`` whose elements are ``divisor`` only at run time
    (``divisor + float(bits(x) & zero)``), so the element-wise division stays (as ``msadam_jax.rounding``).
    """
    int_type = _INT_OF_WIDTH[x.dtype.size]
    nothing = tf.cast(tf.bitwise.bitwise_and(tf.bitcast(x, int_type), tf.cast(zero, int_type)), x.dtype)
    return x / (tf.constant(divisor, x.dtype) + nothing)


_TIE_MASK, _TIE = (1 << 29) - 1, 1 << 28
_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def fma_emulated(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``a*b + c`` of float32 values rounded once, exactly in float64 (``numpy_kernels.fma32``, branch-free)."""
    f64 = tf.float64
    p = tf.cast(a, f64) * tf.cast(b, f64)
    c64 = tf.cast(c, f64)
    s = p + c64
    bits = tf.bitcast(s, tf.int64)
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    suspect = tf.logical_or(tf.equal(tf.bitwise.bitwise_and(bits, _TIE_MASK), _TIE), tf.abs(s) < _F32_MIN_NORMAL)
    even = tf.equal(tf.bitwise.bitwise_and(bits, 1), 0)
    nudge = suspect & tf.not_equal(err, 0.0) & tf.math.is_finite(err) & even
    towards = tf.where(err > 0, tf.constant(np.inf, f64), tf.constant(-np.inf, f64))
    s = tf.where(nudge, tf.math.nextafter(s, towards), s)
    return tf.cast(s, tf.float32)


def fma(a: Tensor, b: Tensor, c: Tensor, mode: FmaMode) -> Tensor:
    """``a*b + c`` rounded once (float32 inputs), by XLA's contraction or by emulation."""
    if mode == "emulate":
        return fma_emulated(a, b, c)
    return a * b + c


@functools.cache
def _contracts() -> bool:
    """Whether XLA on the CPU contracts ``a*b + c`` into one rounding (probed on ties and random values)."""
    rng = np.random.default_rng(20261125)
    a, b, c = (rng.standard_normal(4096).astype(np.float32) for _ in range(3))
    a[:8] = b[:8] = np.float32(1 + 2.0**-12)
    c[:8] = np.float32(-1.0)
    with tf.init_scope():  # run eagerly, even when first asked while tracing
        fused = tf.function(lambda a, b, c: a * b + c, jit_compile=True)(a, b, c).numpy()
    return bool(np.array_equal(fused, reference_fma32(a, b, c)))


def fma_mode() -> FmaMode:
    """``MSADAM_TF_FMA=contract|emulate``, or (``auto``, the default) what the probe finds."""
    choice = os.environ.get(ENV_FMA, "auto").strip().lower() or "auto"
    if choice not in ("auto", "contract", "emulate"):
        raise ValueError(f"${ENV_FMA} must be 'auto', 'contract' or 'emulate', got {choice!r}.")
    if choice != "auto":
        return "contract" if choice == "contract" else "emulate"
    return "contract" if _contracts() else "emulate"
