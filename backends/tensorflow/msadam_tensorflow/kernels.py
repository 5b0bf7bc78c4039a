"""MindSpore's Adam kernels on TensorFlow, bit-exact with msadam's NumPy reference on the CPU.

* :func:`dense_update` — one dense step of one tensor as a pure function of tensors, run inside an
  XLA-compiled ``tf.function`` (:mod:`msadam_tensorflow.steps`). For float32 it is nnacl
  ``AdamFp32``: ``m = fma(g - m, 1-b1, m)``, ``v = fma(fma(g, g, -v), 1-b2, v)``, Nesterov's
  numerator ``fma(g, 1-b1, m*b1)``, ``w -= (lr_t * numerator) / (sqrt(v) + eps)``, and the last
  ``size % 8`` elements through its double-precision scalar loop (see :mod:`msadam_tensorflow.rounding`).
  float16 runs that float32 kernel on float32 copies, rounded back (as MindSpore's CPU does,
  ``numpy_kernels.VIA_FLOAT32``); other dtypes use the formula in their own dtype.
* :func:`sparse_step` — MindSpore's row-sparse paths on ``tf.Variable``s, in place (these paths have
  no fused multiply-add): the lazy paths gather and scatter only the indexed rows
  (``ResourceGather``, ``ResourceScatterAdd``/``Update``). Every product is rounded apart and the
  division by 10 kept exact, so the bits are the same eagerly, in a graph (Grappler) and under XLA.

Hyper-parameters are float32 scalar tensors (:class:`Scalars`), so changing them never retraces.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from msadam.backend import StepHyper
from msadam.backends.numpy_kernels import SIMD_WIDTH, centralizes
from msadam_tensorflow.rounding import FmaMode, divide_exactly, fma, fma_emulated, rounded

__all__ = ["Config", "Scalars", "SparseConfig", "dense_update", "scalars", "sparse_step"]

Tensor = Any


class Scalars(NamedTuple):
    """One step's hyper-parameters as float32 scalar tensors, and the rounding barrier's int32 zero.

    ``new_lr64``: ``lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` computed in float64 from the
    float32 values, for MindSpore's float64 AMSGrad kernel (:func:`_amsgrad_float64`).
    """

    lr_t: Tensor
    beta1: Tensor
    beta2: Tensor
    eps: Tensor
    weight_decay: Tensor | None
    grad_scale: Tensor | None
    zero: Tensor
    new_lr64: Tensor | None = None


class Config(NamedTuple):
    """The static part of a dense kernel."""

    nesterov: bool
    amsgrad: bool
    centralize: bool
    fma: FmaMode


class SparseConfig(NamedTuple):
    """The static part of a sparse kernel."""

    nesterov: bool
    lazy: bool
    composite: bool  # SparsePath.COMPOSITE (else FUSED)
    deduplicate: bool


def scalars(hyper: StepHyper) -> Scalars:
    """The :class:`Scalars` of a core :class:`~msadam.backend.StepHyper`."""

    def f32(value: Any) -> Tensor:
        return None if value is None else tf.constant(np.float32(value))

    return Scalars(f32(hyper.lr_t), f32(hyper.beta1), f32(hyper.beta2), f32(hyper.eps), f32(hyper.weight_decay),
                   f32(hyper.grad_scale), tf.constant(np.int32(0)), tf.constant(hyper.lr_t64))


def new_lr64(lr: Tensor, beta1_power: Tensor, beta2_power: Tensor) -> Tensor:
    """``lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` in float64 from float32 tensors, in a graph
    (:attr:`msadam.backend.StepHyper.lr_t64` on the host): MindSpore's float64 ``ApplyAdamWithAmsgradV2``
    widens its scalars to double first."""
    lr, b1p, b2p = (tf.cast(x, tf.float64) for x in (lr, beta1_power, beta2_power))
    one = tf.constant(1.0, tf.float64)
    return lr * tf.sqrt(one - b2p) / (one - b1p)


def _like(value: Tensor, x: Tensor) -> Tensor:
    return tf.cast(value, x.dtype)


def preprocess(g: Tensor, w_rows: Tensor | None, s: Scalars, centralize: bool) -> Tensor:
    """Weight decay, centralization, loss scale, in MindSpore's order, each product rounded on its own."""
    if s.weight_decay is not None and w_rows is not None:
        g = rounded(w_rows * _like(s.weight_decay, w_rows), s.zero) + g
    if centralize and centralizes(tuple(g.shape)):
        g = g - tf.reduce_mean(g, axis=list(range(1, len(g.shape))), keepdims=True)
    if s.grad_scale is not None:
        g = rounded(g * _like(s.grad_scale, g), s.zero)
    return g


def _scalar_loop(w: Tensor, m: Tensor, second: Tensor, g: Tensor, s: Scalars, nesterov: bool) -> Tensor:
    """nnacl's scalar remainder loop (``numpy_kernels._scalar_loop``): the update in double precision."""
    numerator = fma_emulated(m, s.beta1, rounded((1.0 - s.beta1) * g, s.zero)) if nesterov else m
    scaled = tf.cast(rounded(s.lr_t * numerator, s.zero), tf.float64)
    update = scaled / (tf.sqrt(tf.cast(second, tf.float64)) + tf.cast(s.eps, tf.float64))
    return tf.cast(tf.cast(w, tf.float64) - update, tf.float32)


def _dense_fp32(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor | None, g: Tensor, s: Scalars,
                cfg: Config) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    c1, c2 = 1.0 - s.beta1, 1.0 - s.beta2
    nesterov = cfg.nesterov and not cfg.amsgrad
    m = fma(g - m, c1, m, cfg.fma)
    v = fma(fma(g, g, -v, cfg.fma), c2, v, cfg.fma)
    second = v
    if cfg.amsgrad and vhat is not None:
        vhat = second = tf.where(vhat < v, v, vhat)  # MindSpore's max (not XLA's): a NaN v keeps vhat
    numerator = fma(g, c1, rounded(m * s.beta1, s.zero), cfg.fma) if nesterov else m
    new_w = w - (numerator * s.lr_t) / (tf.sqrt(second) + s.eps)
    size = int(np.prod(w.shape, dtype=np.int64))
    start = size - size % SIMD_WIDTH
    if start < size:  # the scalar loop's elements (numpy_kernels.scalar_tail)
        w_tail, m_tail, second_tail, g_tail = (tf.reshape(x, [-1])[start:] for x in (w, m, second, g))
        tail = _scalar_loop(w_tail, m_tail, second_tail, g_tail, s, nesterov)
        new_w = tf.reshape(tf.concat([tf.reshape(new_w, [-1])[:start], tail], 0), w.shape)
    return new_w, m, v, vhat


def _dense_plain(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor | None, g: Tensor, s: Scalars,
                 cfg: Config) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``numpy_kernels._adam_plain``: the formula in the arrays' own dtype, every product rounded."""
    if cfg.amsgrad and vhat is not None and w.dtype == tf.float64 and s.new_lr64 is not None:
        return _amsgrad_float64(w, m, v, vhat, g, s)
    z = s.zero
    one = tf.constant(1.0, w.dtype)
    b1, b2 = _like(s.beta1, w), _like(s.beta2, w)
    m = rounded(m * b1, z) + rounded((one - b1) * g, z)
    v = rounded(v * b2, z) + rounded((one - b2) * rounded(g * g, z), z)
    second = v
    if cfg.amsgrad and vhat is not None:
        vhat = second = tf.where(vhat < v, v, vhat)  # MindSpore's max (not XLA's): a NaN v keeps vhat
    numerator = rounded(b1 * m, z) + rounded((one - b1) * g, z) if cfg.nesterov and not cfg.amsgrad else m
    step = numerator / (tf.sqrt(second) + _like(s.eps, w))
    return w - rounded(step * _like(s.lr_t, w), z), m, v, vhat


def _amsgrad_float64(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor, g: Tensor,
                     s: Scalars) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MindSpore's float64 ``ApplyAdamWithAmsgradV2`` (``numpy_kernels._amsgrad_float64``), products rounded apart."""
    z, f64 = s.zero, tf.float64
    one = tf.constant(1.0, f64)
    m = m + rounded((g - m) * (one - tf.cast(s.beta1, f64)), z)
    v = v + rounded((rounded(g * g, z) - v) * (one - tf.cast(s.beta2, f64)), z)
    vhat = tf.where(vhat < v, v, vhat)  # std::max(vhat, v): a NaN v keeps vhat
    step = rounded(s.new_lr64 * m, z) / (tf.sqrt(vhat) + tf.cast(s.eps, f64))
    return w - step, m, v, vhat


def dense_update(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor | None, g: Tensor, s: Scalars,
                 cfg: Config) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """One dense step of one tensor: ``(w, m, v, vhat)`` after it; ``g`` raw (preprocessed here)."""
    g = preprocess(g, w, s, cfg.centralize)
    if w.dtype == tf.float32:
        return _dense_fp32(w, m, v, vhat, g, s, cfg)
    if w.dtype == tf.float16:  # the float32 kernel on float32 copies; float32 -> float16 rounds to nearest even
        w32, m32, v32, g32 = (tf.cast(x, tf.float32) for x in (w, m, v, g))
        new = _dense_fp32(w32, m32, v32, None if vhat is None else tf.cast(vhat, tf.float32), g32, s, cfg)
        w, m, v = (tf.cast(x, tf.float16) for x in new[:3])
        return w, m, v, None if new[3] is None else tf.cast(new[3], tf.float16)
    return _dense_plain(w, m, v, vhat, g, s, cfg)


# ----------------------------------------------------------------------------- sparse


def _last_occurrences(rows: Tensor) -> tuple[Tensor, Tensor]:
    """Each repeated index once, with the position of its last occurrence (``ScatterUpdate``'s winner)."""
    order = tf.argsort(rows, stable=True)
    ordered = tf.gather(rows, order)
    is_last = tf.concat([tf.not_equal(ordered[1:], ordered[:-1]), tf.ones([1], tf.bool)], 0)
    return tf.boolean_mask(ordered, is_last), tf.boolean_mask(order, is_last)


def _work_dtype(w: Any) -> Any:
    """The sparse arithmetic's dtype: float64 for a float64 variable (MindSpore's composite path runs in it,
    with its float32 scalars widened), else float32 (the reference's float32 scalars)."""
    return tf.float64 if w.dtype == tf.float64 else tf.float32


def _sparse_scalars(s: Scalars, work: Any) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``beta1``, ``beta2``, ``1 - beta1``, ``1 - beta2`` (computed in float32), ``lr_t``, ``eps``, cast to ``work``."""
    b1, b2, c1, c2, lr_t, eps = (tf.cast(x, work) for x in (s.beta1, s.beta2, 1.0 - s.beta1, 1.0 - s.beta2,
                                                           s.lr_t, s.eps))
    return b1, b2, c1, c2, lr_t, eps


def _all_rows(w: Any, m: Any, v: Any, rows: Tensor, values: Tensor, s: Scalars, cfg: SparseConfig) -> None:
    """Non-lazy (``numpy_kernels.composite_sparse``/``fused_sparse``): every row decays and moves.

    Every product is :func:`rounded` on its own: in a graph, Grappler's arithmetic optimizer would
    otherwise re-associate ``(g * g) * (1 - beta2)`` (a quarter of ``v``'s last bits changed), and
    XLA would contract the additions into fused multiply-adds.
    """
    work = _work_dtype(w)
    z, (b1, b2, c1, c2, lr_t, eps) = s.zero, _sparse_scalars(s, work)
    c1_g = rounded(values * c1, z)
    c2_g2 = rounded(rounded(values * values, z) * c2, z)
    at = rows[:, None]
    m_new = tf.tensor_scatter_nd_add(rounded(tf.cast(m, work) * b1, z), at, c1_g)
    v_new = tf.tensor_scatter_nd_add(rounded(tf.cast(v, work) * b2, z), at, c2_g2)
    numerator = m_new
    if cfg.nesterov:
        numerator = tf.tensor_scatter_nd_add(rounded(m_new * b1, z), at, c1_g)
        if cfg.composite:  # adam.py's m_temp = next_m * 10; m = m_temp / 10 (kept: not simplified to m)
            m_new = divide_exactly(rounded(tf.cast(m_new, m.dtype) * tf.constant(10.0, m.dtype), z), 10.0, z)
    step = rounded(lr_t * (numerator / (tf.sqrt(v_new) + eps)), z)
    w.assign(tf.cast(tf.cast(w, work) - step, w.dtype))
    m.assign(tf.cast(m_new, m.dtype))
    v.assign(tf.cast(v_new, v.dtype))


def _touched_rows(w: Any, m: Any, v: Any, rows: Tensor, values: Tensor, s: Scalars, nesterov: bool,
                  unique: bool) -> None:
    """Lazy: gather ``m``, ``v`` at ``rows``, update, scatter back — cost proportional to ``rows``.

    Products rounded on their own, as in :func:`_all_rows`.
    """
    work = _work_dtype(w)
    z, (b1, b2, c1, c2, lr_t, eps) = s.zero, _sparse_scalars(s, work)
    c1_g = rounded(values * c1, z)
    next_m = rounded(tf.cast(tf.gather(m, rows), work) * b1, z) + c1_g
    next_v = rounded(tf.cast(tf.gather(v, rows), work) * b2, z) + rounded(rounded(values * values, z) * c2, z)
    numerator = rounded(next_m * b1, z) + c1_g if nesterov else next_m
    step = rounded((numerator / (tf.sqrt(next_v) + eps)) * -lr_t, z)
    # Row scatters (ResourceScatterAdd/Update) through IndexedSlices: the variable methods that
    # tf.distribute's mirrored variables implement too (their scatter_nd_* raise NotImplementedError).
    w.scatter_add(tf.IndexedSlices(tf.cast(step, w.dtype), rows))
    if not unique:
        rows, last = _last_occurrences(rows)
        next_m, next_v = tf.gather(next_m, last), tf.gather(next_v, last)
    m.scatter_update(tf.IndexedSlices(tf.cast(next_m, m.dtype), rows))
    v.scatter_update(tf.IndexedSlices(tf.cast(next_v, v.dtype), rows))


def sparse_step(w: Any, m: Any, v: Any, indices: Tensor, values: Tensor, s: Scalars, cfg: SparseConfig) -> None:
    """One row-sparse step of the variable ``w`` (and its moments), in place, along MindSpore's paths.

    Values are preprocessed per occurrence (decay reads ``w[indices]``), merged on the fused path or
    when ``cfg.deduplicate``; the arithmetic is float32, as the reference's float32 scalars make it,
    or float64 for a float64 variable (:func:`_work_dtype`).
    """
    indices = tf.cast(indices, tf.int64)
    w_rows = tf.gather(w, indices) if s.weight_decay is not None else None
    values = tf.cast(preprocess(tf.cast(values, w.dtype), w_rows, s, False), _work_dtype(w))
    unique = cfg.deduplicate or not cfg.composite
    if unique:  # P.Unique + UnsortedSegmentSum: occurrences summed in order
        indices, position = tf.unique(indices)
        values = tf.math.unsorted_segment_sum(values, position, tf.shape(indices)[0])
    if cfg.lazy:
        _touched_rows(w, m, v, indices, values, s, cfg.nesterov, unique)
    else:
        _all_rows(w, m, v, indices, values, s, cfg)
