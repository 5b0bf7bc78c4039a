"""Float32 rounding control under XLA: where MindSpore fuses a multiply-add, and where it must not.

MindSpore's CPU Adam kernel (nnacl ``AdamFp32``) computes some ``a*b + c`` with one rounding (an
FMA instruction) and its other operations (weight decay, loss scale, the sparse composites) as
separate kernels, each product rounded to float32 before it is added. XLA's CPU compiler contracts
*every* float ``a*b + c`` it sees into an FMA (LLVM with fp-contraction on; neither
``optimization_barrier``, ``reduce_precision`` nor a float64 round trip stops it, measured with
jaxlib 0.10), so both directions need care:

* :func:`rounded` — a product that must be rounded on its own: its bits are OR-ed with a zero the
  compiler cannot see (a traced ``int32`` argument), which LLVM cannot fold, so the multiply cannot
  be fused into the add that follows. One integer OR per element.
* :func:`fma` — one rounding of ``a*b + c``: written ``a*b + c`` for XLA to contract (``"contract"``,
  the fast path), or computed exactly in float64 (``"emulate"``, used where :func:`fma_mode` finds
  that the platform does not contract, or when ``MSADAM_JAX_FMA=emulate``).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from msadam.backends.numpy_kernels import fma32 as reference_fma32

__all__ = ["ENV_FMA", "FmaMode", "divide_exactly", "fma", "fma_emulated", "fma_mode", "rounded", "x64"]

Array = Any
FmaMode = Literal["contract", "emulate"]
ENV_FMA = "MSADAM_JAX_FMA"  # "auto" (default), "contract" or "emulate"

_INT_OF_WIDTH = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}


def x64() -> Any:
    """A context in which float64 exists (``jax.enable_x64``); used only inside traced kernels."""
    return jax.enable_x64(True)


def rounded(x: Array, zero: Array) -> Array:
    """``x`` as stored in its dtype: the operation that produced it is never fused into what follows.

    ``zero`` must be a traced integer zero (a kernel argument): ``bits(x) | zero`` is ``bits(x)``,
    but only at run time, so XLA/LLVM cannot contract ``rounded(a*b) + c`` into ``fma(a, b, c)``.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    int_type = _INT_OF_WIDTH[jnp.dtype(x.dtype).itemsize]
    bits = jax.lax.bitcast_convert_type(x, int_type)
    return jax.lax.bitcast_convert_type(bits | zero.astype(int_type), x.dtype)


def divide_exactly(x: Array, divisor: float, zero: Array) -> Array:
    """``x / divisor``, correctly rounded, for a constant ``divisor``.

    XLA rewrites a division by a broadcast scalar into a multiplication by its reciprocal (seen on
    sharded arrays even for a traced scalar), which rounds differently unless the divisor is a power
    of two. Here the divisor is an array as large as ``x`` whose every element is ``divisor`` only at
    run time (``divisor + float(bits(x) & zero)``), so XLA keeps the element-wise division.
    """
    int_type = _INT_OF_WIDTH[jnp.dtype(x.dtype).itemsize]
    nothing = (jax.lax.bitcast_convert_type(x, int_type) & zero.astype(int_type)).astype(x.dtype)
    return x / (jnp.asarray(divisor, x.dtype) + nothing)


# A float64 keeps 29 more fraction bits than a float32; a sum whose extra bits are exactly 1000...0
# sits on a float32 tie, the one case where rounding twice differs from rounding once (see
# msadam.backends.numpy_kernels.fma32, whose algorithm this is, branch-free).
_TIE_MASK, _TIE = (1 << 29) - 1, 1 << 28
_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def fma_emulated(a: Array, b: Array, c: Array) -> Array:
    """``a*b + c`` of float32 values rounded once to float32, computed exactly in float64.

    The float64 product is exact; the float64 sum rounds to float32 correctly except on a float32
    tie (or below float32's normal range), where it is made round-to-odd with its TwoSum error.
    Contraction cannot change it: every product here is exact in float64.
    """
    with x64():
        f64 = jnp.float64
        p = jnp.asarray(a, f64) * jnp.asarray(b, f64)
        c64 = jnp.asarray(c, f64)
        s = p + c64
        bits = jax.lax.bitcast_convert_type(s, jnp.int64)
        bb = s - p
        err = (p - (s - bb)) + (c64 - bb)
        suspect = ((bits & _TIE_MASK) == _TIE) | (jnp.abs(s) < _F32_MIN_NORMAL)
        nudge = suspect & (err != 0) & jnp.isfinite(err) & ((bits & 1) == 0)
        s = jnp.where(nudge, jnp.nextafter(s, jnp.copysign(jnp.inf, err)), s)
        return s.astype(jnp.float32)


def fma(a: Array, b: Array, c: Array, mode: FmaMode) -> Array:
    """``a*b + c`` rounded once (float32 inputs), by contraction or by emulation (see the module)."""
    if mode == "emulate":
        return fma_emulated(a, b, c)
    return a * b + c


def _probe_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Products and addends where fused and unfused rounding differ (random ones and exact ties)."""
    rng = np.random.default_rng(20261125)
    a = rng.standard_normal(4096).astype(np.float32)
    b = rng.standard_normal(4096).astype(np.float32)
    c = rng.standard_normal(4096).astype(np.float32)
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24: the product needs 25 bits; with c = -1 a single
    # rounding keeps the 2**-24, two roundings lose it.
    a[:8] = b[:8] = np.float32(1 + 2.0**-12)
    c[:8] = np.float32(-1.0)
    return a, b, c


@functools.cache
def _contracts(platform: str) -> bool:
    """Whether XLA on ``platform`` contracts ``a*b + c`` into one rounding (an FMA), as nnacl does."""
    a, b, c = _probe_inputs()
    device = jax.devices(platform)[0]

    with jax.ensure_compile_time_eval():  # run now, even when first asked while tracing
        fused = jax.jit(lambda a, b, c: a * b + c)(*jax.device_put((a, b, c), device))
    return bool(np.array_equal(np.asarray(fused), reference_fma32(a, b, c)))


def fma_mode(platform: str | None = None) -> FmaMode:
    """How :func:`fma` computes on ``platform`` (default: JAX's default backend).

    ``MSADAM_JAX_FMA=contract|emulate`` forces a mode; by default (``auto``) a one-off probe checks
    that XLA contracts ``a*b + c`` into one rounding there, and falls back to emulation if not.
    """
    choice = os.environ.get(ENV_FMA, "auto").strip().lower() or "auto"
    if choice not in ("auto", "contract", "emulate"):
        raise ValueError(f"${ENV_FMA} must be 'auto', 'contract' or 'emulate', got {choice!r}.")
    if choice != "auto":
        return "contract" if choice == "contract" else "emulate"
    return "contract" if _contracts(platform or jax.default_backend()) else "emulate"
