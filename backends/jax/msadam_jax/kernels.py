"""MindSpore's Adam kernels as pure JAX functions, bit-exact with msadam's NumPy reference on the CPU.

Each function mirrors :mod:`msadam.backends.numpy_kernels` (MindSpore's rounding included) and is
pure: it returns the new arrays, for ``jax.jit`` with donated buffers (:mod:`msadam_jax.steps`) or
for an ``optax`` transformation (:mod:`msadam_jax.transform`). Hyper-parameters enter as traced
float32 scalars (:class:`Scalars`) so that a changing learning rate or step never retraces; only
the flags (:class:`Config`) are static.

Float32 follows nnacl ``AdamFp32``: ``m = fma(g - m, 1-b1, m)``, ``v = fma(fma(g, g, -v), 1-b2, v)``,
Nesterov's numerator ``fma(g, 1-b1, m*b1)``, ``w -= (lr_t * numerator) / (sqrt(v) + eps)``, and the
last ``size % 8`` elements of every tensor through its double-precision scalar loop. Every other
product is rounded before it is added (:func:`msadam_jax.rounding.rounded`), as MindSpore's separate
kernels do. float16 runs the float32 kernel on float32 copies, rounded back (as MindSpore's CPU does,
``numpy_kernels.VIA_FLOAT32``); other dtypes use the plain formula in their own dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from msadam.backend import StepHyper
from msadam.backends.numpy_kernels import SIMD_WIDTH, centralizes
from msadam_jax.rounding import FmaMode, divide_exactly, fma, fma_emulated, rounded, x64

__all__ = [
    "Config",
    "Scalars",
    "SparseConfig",
    "centralize",
    "dense_update",
    "dense_update_split",
    "last_occurrences",
    "merge_duplicates",
    "preprocess",
    "scalars",
    "sparse_update",
    "tail_size",
]

Array = Any


class Scalars(NamedTuple):
    """One step's hyper-parameters as traced scalars (float32), and the rounding barrier's zero.

    ``lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)``; ``weight_decay`` (already times the
    loss scale) and ``grad_scale`` (``1 / loss_scale``) are ``None`` when they do not apply.
    """

    lr_t: Array
    beta1: Array
    beta2: Array
    eps: Array
    weight_decay: Array | None
    grad_scale: Array | None
    zero: Array  # int32 0, traced (see msadam_jax.rounding.rounded)
    # lr * sqrt(1 - beta2_power) / (1 - beta1_power) in float64, from the float32 values (MindSpore's float64
    # ApplyAdamWithAmsgradV2 widens its scalars to double first); only with jax_enable_x64 (float64 arrays).
    new_lr64: Array | None = None


class Config(NamedTuple):
    """The static part of a kernel: a new value compiles a new kernel."""

    nesterov: bool
    amsgrad: bool
    centralize: bool
    fma: FmaMode


def scalars(hyper: StepHyper) -> Scalars:
    """The :class:`Scalars` of a core :class:`~msadam.backend.StepHyper` (host NumPy values: traced by ``jit``)."""
    return Scalars(hyper.lr_t, hyper.beta1, hyper.beta2, hyper.eps, hyper.weight_decay, hyper.grad_scale,
                   np.int32(0), hyper.lr_t64 if jax.config.read("jax_enable_x64") else None)


def new_lr64(lr: Array, beta1_power: Array, beta2_power: Array) -> Array | None:
    """``lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` in float64, traced (``None`` without ``jax_enable_x64``,
    where no float64 parameter exists; :attr:`msadam.backend.StepHyper.lr_t64` on the host)."""
    if not jax.config.read("jax_enable_x64"):
        return None  # no float64 parameter can exist
    lr, b1p, b2p = (jnp.asarray(x, jnp.float32).astype(jnp.float64) for x in (lr, beta1_power, beta2_power))
    return lr * jnp.sqrt(1.0 - b2p) / (1.0 - b1p)


def _like(value: Array, x: Array) -> Array:
    """A hyper-parameter cast to ``x``'s dtype (MindSpore's ``F.cast``)."""
    return jnp.asarray(value).astype(x.dtype)


# ----------------------------------------------------------------------------- preprocessing


def centralize(g: Array) -> Array:
    """``g - mean(g, axes 1..ndim-1)`` (MindSpore's ``Centralization``; XLA's sum order, not NumPy's)."""
    axes = tuple(range(1, g.ndim))
    return g - jnp.mean(g, axis=axes, keepdims=True, dtype=g.dtype)


def preprocess(g: Array, w_rows: Array | None, s: Scalars, centralize_flag: bool) -> Array:
    """Weight decay, centralization and loss scale, in MindSpore's order (``numpy_kernels.preprocess``).

    ``w * weight_decay + g`` (``_tensor_apply_decay``: a Mul then an AddN), centralization,
    ``g * (1/loss_scale)`` (``tensor_grad_scale``); each product rounded on its own.
    """
    if s.weight_decay is not None and w_rows is not None:
        g = rounded(w_rows * _like(s.weight_decay, w_rows), s.zero) + g
    if centralize_flag and centralizes(tuple(g.shape)):
        g = centralize(g)
    if s.grad_scale is not None:
        g = rounded(g * _like(s.grad_scale, g), s.zero)
    return g


# ----------------------------------------------------------------------------- dense


def _scalar_loop(w: Array, m: Array, second: Array, g: Array, s: Scalars, nesterov: bool) -> Array:
    """nnacl's scalar remainder loop: new ``w`` for updated ``m``/``v``, the step in double precision.

    ``numpy_kernels._scalar_loop``: C's ``sqrt`` is double, so ``w - lr_t*num / (sqrt(v) + eps)``
    is evaluated in double; the Nesterov numerator contracts as ``fma(m, b1, (1-b1)*g)``.
    """
    one = jnp.float32(1.0)
    numerator = fma_emulated(m, s.beta1, rounded((one - s.beta1) * g, s.zero)) if nesterov else m
    scaled = rounded(s.lr_t * numerator, s.zero)
    with x64():
        f64 = jnp.float64
        update = scaled.astype(f64) / (jnp.sqrt(second.astype(f64)) + jnp.asarray(s.eps, f64))
        return (w.astype(f64) - update).astype(jnp.float32)


def tail_size(shape: tuple[int, ...], dtype: Any) -> int:
    """How many elements (the last, in C order) MindSpore's scalar loop updates: ``size % 8`` for float32
    (and float16, which runs the float32 kernel)."""
    return int(np.prod(shape, dtype=np.int64)) % SIMD_WIDTH if dtype in (jnp.float32, jnp.float16) else 0


def _wide(*arrays: Array | None) -> list[Any]:
    """float32 copies (``None`` stays ``None``): float16 runs the float32 kernel (``numpy_kernels.VIA_FLOAT32``)."""
    return [None if x is None else x.astype(jnp.float32) for x in arrays]


def _narrow(dtype: Any, *arrays: Array | None) -> list[Any]:
    """Back to ``dtype`` (float32 to float16 rounds to nearest even, as MindSpore's Cast)."""
    return [None if x is None else x.astype(dtype) for x in arrays]


def _fp32_vector_loop(m: Array, v: Array, vhat: Array | None, g: Array, s: Scalars,
                      cfg: Config) -> tuple[Array, Array, Array | None, Array, Array]:
    """nnacl ``AdamFp32``'s vector loop: ``(m, v, vhat, second, step)`` with ``w_new = w - step``."""
    one = jnp.float32(1.0)
    c1, c2 = one - s.beta1, one - s.beta2
    m = fma(g - m, c1, m, cfg.fma)
    v = fma(fma(g, g, -v, cfg.fma), c2, v, cfg.fma)
    second = v
    if cfg.amsgrad and vhat is not None:
        vhat = second = jnp.where(vhat < v, v, vhat)  # MindSpore's max: a NaN v keeps vhat
    nesterov = cfg.nesterov and not cfg.amsgrad
    numerator = fma(g, c1, rounded(m * s.beta1, s.zero), cfg.fma) if nesterov else m
    step = (numerator * s.lr_t) / (jnp.sqrt(second) + s.eps)
    return m, v, vhat, second, step


def _tail_of(w_tail: Array, m: Array, second: Array, g: Array, s: Scalars, cfg: Config) -> Array:
    """The scalar loop on the last ``len(w_tail)`` elements (``w_tail``: their old values)."""
    start = int(np.prod(m.shape, dtype=np.int64)) - int(w_tail.shape[0])
    m_tail, second_tail, g_tail = (x.reshape(-1)[start:] for x in (m, second, g))
    return _scalar_loop(w_tail, m_tail, second_tail, g_tail, s, cfg.nesterov and not cfg.amsgrad)


def _dense_fp32(w: Array, m: Array, v: Array, vhat: Array | None, g: Array, s: Scalars,
                cfg: Config, delta: bool) -> tuple[Array, Array, Array, Array | None]:
    m, v, vhat, second, step = _fp32_vector_loop(m, v, vhat, g, s, cfg)
    out = -step if delta else w - step  # w + (-step) rounds exactly as w - step
    tail = tail_size(w.shape, w.dtype)
    if tail:  # the scalar loop's elements (numpy_kernels.scalar_tail)
        w_tail = w.reshape(-1)[-tail:]
        new_tail = _tail_of(w_tail, m, second, g, s, cfg)
        out = out.reshape(-1).at[-tail:].set(new_tail - w_tail if delta else new_tail).reshape(w.shape)
    return out, m, v, vhat


def dense_update_split(w: Array, m: Array, v: Array, vhat: Array | None, g: Array, w_tail: Array | None,
                       s: Scalars, cfg: Config) -> tuple[Array, Array, Array, Array | None, Array | None]:
    """:func:`dense_update` with the scalar loop's elements returned apart: ``(w, m, v, vhat, tail)``.

    ``w`` has the vector loop's values everywhere; ``tail`` (``None`` when there is none) holds the
    last :func:`tail_size` elements' real values, computed from ``w_tail``, their old values. Kept
    apart, the big loops stay purely element-wise and XLA updates ``w`` in place; writing the tail
    into ``w`` in the same computation would make it copy every parameter (measured: 3x slower).
    """
    g = preprocess(g, w, s, cfg.centralize)
    if w.dtype == jnp.float16:  # the float32 kernel on float32 copies, rounded back (see _wide)
        w32, m32, v32, vhat32, g32, tail32 = _wide(w, m, v, vhat, g, w_tail)
        m32, v32, vhat32, second, step = _fp32_vector_loop(m32, v32, vhat32, g32, s, cfg)
        tail = _tail_of(tail32, m32, second, g32, s, cfg) if tail32 is not None else None
        new_w, m, v, vhat, tail = _narrow(w.dtype, w32 - step, m32, v32, vhat32, tail)
        return new_w, m, v, vhat, tail
    if w.dtype != jnp.float32:
        return (*_dense_plain(w, m, v, vhat, g, s, cfg, False), None)
    m, v, vhat, second, step = _fp32_vector_loop(m, v, vhat, g, s, cfg)
    tail = _tail_of(w_tail, m, second, g, s, cfg) if w_tail is not None else None
    return w - step, m, v, vhat, tail


def _dense_plain(w: Array, m: Array, v: Array, vhat: Array | None, g: Array, s: Scalars,
                 cfg: Config, delta: bool) -> tuple[Array, Array, Array, Array | None]:
    """``numpy_kernels._adam_plain``: the formula in the arrays' own dtype, every product rounded."""
    if cfg.amsgrad and vhat is not None and w.dtype == jnp.float64 and s.new_lr64 is not None:
        new_w, m, v, vhat = _amsgrad_float64(w, m, v, vhat, g, s)
        return (new_w - w if delta else new_w), m, v, vhat
    z = s.zero
    one = jnp.asarray(1.0, w.dtype)
    b1, b2 = _like(s.beta1, w), _like(s.beta2, w)
    m = rounded(m * b1, z) + rounded((one - b1) * g, z)
    v = rounded(v * b2, z) + rounded((one - b2) * rounded(g * g, z), z)
    second = v
    if cfg.amsgrad and vhat is not None:
        vhat = second = jnp.where(vhat < v, v, vhat)  # MindSpore's max: a NaN v keeps vhat
    numerator = rounded(b1 * m, z) + rounded((one - b1) * g, z) if cfg.nesterov and not cfg.amsgrad else m
    step = numerator / (jnp.sqrt(second) + _like(s.eps, w))
    step = rounded(step * _like(s.lr_t, w), z)
    return -step if delta else w - step, m, v, vhat


def _amsgrad_float64(w: Array, m: Array, v: Array, vhat: Array, g: Array,
                     s: Scalars) -> tuple[Array, Array, Array, Array]:
    """MindSpore's float64 ``ApplyAdamWithAmsgradV2`` (``numpy_kernels._amsgrad_float64``), products rounded apart."""
    z, f64 = s.zero, jnp.float64
    m = m + rounded((g - m) * (1.0 - jnp.asarray(s.beta1, f64)), z)
    v = v + rounded((rounded(g * g, z) - v) * (1.0 - jnp.asarray(s.beta2, f64)), z)
    vhat = jnp.where(vhat < v, v, vhat)  # std::max(vhat, v): a NaN v keeps vhat
    step = rounded(s.new_lr64 * m, z) / (jnp.sqrt(vhat) + jnp.asarray(s.eps, f64))
    return w - step, m, v, vhat


def dense_update(w: Array, m: Array, v: Array, vhat: Array | None, g: Array, s: Scalars,
                 cfg: Config, delta: bool = False) -> tuple[Array, Array, Array, Array | None]:
    """One dense step of one tensor: ``(w, m, v, vhat)`` after it (``vhat`` is ``None`` without AMSGrad).

    ``g`` is the raw gradient (preprocessed here). See the module docstring for the formula. With
    ``delta``, the first array is the update ``u`` instead, such that ``w + u`` (``optax.apply_updates``)
    is the new ``w``: bit for bit, except where the scalar loop's double-precision result and ``w``
    differ by more than a factor of two (then to half an ulp).
    """
    g = preprocess(g, w, s, cfg.centralize)
    if w.dtype == jnp.float32:
        return _dense_fp32(w, m, v, vhat, g, s, cfg, delta)
    if w.dtype == jnp.float16:  # the float32 kernel on float32 copies, rounded back (see _wide)
        w32, m32, v32, vhat32, g32 = _wide(w, m, v, vhat, g)
        new_w, m, v, vhat = _narrow(w.dtype, *_dense_fp32(w32, m32, v32, vhat32, g32, s, cfg, False))
        return (new_w - w if delta else new_w), m, v, vhat
    return _dense_plain(w, m, v, vhat, g, s, cfg, delta)


# ----------------------------------------------------------------------------- sparse


def merge_duplicates(indices: Array, values: Array, fill: int) -> tuple[Array, Array]:
    """Sorted unique indices (padded with ``fill``) and the sum of their values, in occurrence order.

    ``P.Unique`` + ``UnsortedSegmentSum``; XLA's CPU scatter adds in update order, as NumPy's ``add.at``.
    """
    unique, inverse = jnp.unique(indices, size=indices.shape[0], fill_value=fill, return_inverse=True)
    summed = jnp.zeros_like(values).at[inverse.reshape(-1)].add(values)
    return unique, summed


def last_occurrences(indices: Array, fill: int) -> Array:
    """``indices`` with every occurrence but the last of each index replaced by ``fill`` (dropped).

    ``ScatterUpdate`` with repeated indices keeps the last occurrence's row (the reference's
    ``_last_occurrence``); XLA leaves the winner of a repeated scatter index unspecified, so the
    losers are sent out of bounds instead.
    """
    order = jnp.argsort(indices, stable=True)
    ordered = indices[order]
    is_last = jnp.concatenate([ordered[1:] != ordered[:-1], jnp.ones((1,), bool)])
    return jnp.full_like(indices, fill).at[order].set(jnp.where(is_last, ordered, fill))


class SparseConfig(NamedTuple):
    """The static part of a sparse kernel."""

    nesterov: bool
    lazy: bool
    composite: bool  # SparsePath.COMPOSITE (else FUSED)
    deduplicate: bool  # merge repeated indices first ('GPU'/'Ascend' with opt.unique)


def _all_rows(w: Array, m: Array, v: Array, rows: Array, values: Array, s: Scalars,
              cfg: SparseConfig) -> tuple[Array, Array, Array]:
    """Non-lazy: every row decays and moves; ``values`` are scatter-added at ``rows`` (out of bounds: dropped).

    Composite (``_run_opt_with_sparse``): ``rows`` may repeat (squares add per occurrence) and Nesterov's
    ``m_temp = next_m * 10`` / ``m = m_temp / 10`` round trip is kept. Fused: ``rows`` are merged.
    As in the reference, the arithmetic is float32 (the hyper-parameters are float32 scalars; for
    a float16/bfloat16 table, ``1 - beta2`` in the table's dtype would be 0) and the results are
    stored in the table's dtype.
    """
    z = s.zero
    one = jnp.float32(1.0)
    b1, b2 = jnp.asarray(s.beta1, jnp.float32), jnp.asarray(s.beta2, jnp.float32)
    c1, c2 = one - b1, one - b2
    c1_g = rounded(values * c1, z)
    m = rounded(m * b1, z).at[rows].add(c1_g, mode="drop")
    v = rounded(v * b2, z).at[rows].add(rounded(rounded(values * values, z) * c2, z), mode="drop")
    numerator = m
    if cfg.nesterov:
        numerator = rounded(m * b1, z).at[rows].add(c1_g, mode="drop")
        if cfg.composite:
            m = divide_exactly(rounded(m * jnp.asarray(10.0, m.dtype), z), 10.0, z)
    quotient = numerator / (jnp.sqrt(v) + s.eps)
    new_w = w - rounded(quotient * s.lr_t, z)
    return new_w.astype(w.dtype), m.astype(w.dtype), v.astype(w.dtype)


def _touched_rows(w: Array, m: Array, v: Array, rows: Array, values: Array, s: Scalars,
                  nesterov: bool, unique: bool) -> tuple[Array, Array, Array]:
    """Lazy: gather ``m``, ``v`` per occurrence, update, scatter back — cost proportional to ``rows``.

    Composite (``_run_lazy_opt_with_sparse``): each occurrence's step is scatter-added into ``w``;
    ``m``, ``v`` are scatter-updated, the last occurrence winning. Fused (``unique`` rows): the dense
    formula on the touched rows. Float32 arithmetic, stored in the table's dtype (see :func:`_all_rows`).
    """
    z = s.zero
    one = jnp.float32(1.0)
    b1, b2 = jnp.asarray(s.beta1, jnp.float32), jnp.asarray(s.beta2, jnp.float32)
    c1, c2 = one - b1, one - b2
    c1_g = rounded(values * c1, z)
    next_m = rounded(m.at[rows].get(mode="fill", fill_value=0) * b1, z) + c1_g
    next_v = rounded(v.at[rows].get(mode="fill", fill_value=0) * b2, z) + \
        rounded(rounded(values * values, z) * c2, z)
    numerator = rounded(next_m * b1, z) + c1_g if nesterov else next_m
    step = rounded((numerator / (jnp.sqrt(next_v) + s.eps)) * -jnp.asarray(s.lr_t, jnp.float32), z)
    w = w.at[rows].add(step.astype(w.dtype), mode="drop")
    targets = rows if unique else last_occurrences(rows, m.shape[0])
    return (w, m.at[targets].set(next_m.astype(m.dtype), mode="drop"),
            v.at[targets].set(next_v.astype(v.dtype), mode="drop"))


def sparse_update(w: Array, m: Array, v: Array, indices: Array, values: Array, s: Scalars,
                  cfg: SparseConfig) -> tuple[Array, Array, Array]:
    """One row-sparse step of one table: ``(w, m, v)`` after it.

    ``indices`` may be padded with ``w.shape[0]`` (and ``values`` with zero rows): padding is never
    read nor written. Values are preprocessed per occurrence (decay reads ``w[indices]``), then merged
    on the fused path or when ``cfg.deduplicate`` (``numpy_kernels.composite_sparse``/``fused_sparse``).
    """
    rows = w.shape[0]
    w_rows = w.at[indices].get(mode="fill", fill_value=0) if s.weight_decay is not None else None
    values = preprocess(values, w_rows, s, False).astype(w.dtype)
    unique = cfg.deduplicate or not cfg.composite
    if unique:
        indices, values = merge_duplicates(indices, values, rows)
    if cfg.lazy:
        return _touched_rows(w, m, v, indices, values, s, cfg.nesterov, unique)
    return _all_rows(w, m, v, indices, values, s, cfg)
