"""MindSpore's Adam kernels as pure NumPy functions: the reference every backend is checked against.

Every function updates its state arrays in place and computes in the arrays' dtype with float32
host scalars, as MindSpore's CPU kernels do. Names follow MindSpore's ops:
``adam`` (``P.Adam`` / ``ApplyAdamWithAmsgradV2``), ``composite_sparse`` (``adam.py``'s
``_run_opt_with_sparse`` / ``_run_lazy_opt_with_sparse``), ``fused_sparse`` (``FusedSparseAdam`` /
``FusedSparseLazyAdam``).
"""

from __future__ import annotations

import numpy as np

from msadam.backend import StepHyper

__all__ = [
    "adam",
    "centralize",
    "centralizes",
    "composite_sparse",
    "fused_sparse",
    "merge_duplicates",
    "preprocess",
]


def centralizes(shape: tuple[int, ...]) -> bool:
    """Whether MindSpore's gradient centralization touches a gradient of this shape.

    ``optimizer.py`` ``_tensor_apply_grad_centralization``: only ``ndim >= 2`` and ``shape[1] % 16 == 0``.
    """
    return len(shape) >= 2 and shape[1] % 16 == 0


def centralize(g: np.ndarray) -> np.ndarray:
    """``g - mean(g, axes 1..ndim-1)``: the formula of MindSpore's (Ascend-only) ``Centralization`` op."""
    axes = tuple(range(1, g.ndim))
    return g - g.mean(axis=axes, keepdims=True, dtype=g.dtype)


def preprocess(g: np.ndarray, w_rows: np.ndarray, hyper: StepHyper) -> np.ndarray:
    """Weight decay, centralization and loss scale of one gradient, in MindSpore's order.

    ``g + weight_decay * w`` (``_tensor_apply_decay``), then centralization, then ``g * (1/loss_scale)``
    (``tensor_grad_scale``). ``w_rows`` is the parameter (or, for a sparse gradient, its gathered rows).
    Never modifies ``g`` (it belongs to the caller); returns ``g`` itself when nothing applies.
    """
    out = g
    if hyper.weight_decay is not None:
        out = w_rows * hyper.weight_decay + out
    if hyper.centralize and centralizes(out.shape):
        out = centralize(out)
    if hyper.grad_scale is not None:
        out = out * hyper.grad_scale
    return out


def adam(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, vhat: np.ndarray | None, g: np.ndarray, hyper: StepHyper
) -> None:
    """One dense step, in place (``g`` already preprocessed).

    ``m = beta1*m + (1-beta1)*g``; ``v = beta2*v + (1-beta2)*g*g``;
    amsgrad: ``vhat = max(vhat, v)``, ``w -= lr_t * m / (sqrt(vhat) + eps)`` (no Nesterov form exists);
    nesterov: ``w -= lr_t * (beta1*m + (1-beta1)*g) / (sqrt(v) + eps)``; else ``w -= lr_t * m / (sqrt(v) + eps)``.
    """
    one = np.float32(1.0)
    b1, b2 = hyper.beta1, hyper.beta2
    m *= b1
    m += (one - b1) * g
    v *= b2
    v += (one - b2) * (g * g)
    if hyper.use_amsgrad and vhat is not None:
        np.maximum(vhat, v, out=vhat)
        denom = np.sqrt(vhat)
    else:
        denom = np.sqrt(v)
    denom += hyper.eps
    step = b1 * m + (one - b1) * g if hyper.use_nesterov and not hyper.use_amsgrad else m.copy()
    step /= denom
    step *= hyper.lr_t
    w -= step


def merge_duplicates(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique indices and the sum of their values (``P.Unique`` + ``UnsortedSegmentSum``)."""
    unique, inverse = np.unique(indices, return_inverse=True)
    summed = np.zeros((unique.shape[0], *values.shape[1:]), dtype=values.dtype)
    np.add.at(summed, inverse.reshape(-1), values)
    return unique, summed


def _last_occurrence(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique indices and, for each, the position of its last occurrence (``ScatterUpdate``'s winner)."""
    reversed_unique, reversed_pos = np.unique(indices[::-1], return_index=True)
    return reversed_unique, indices.shape[0] - 1 - reversed_pos


def composite_sparse(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, indices: np.ndarray, values: np.ndarray, lazy: bool,
    hyper: StepHyper,
) -> None:
    """MindSpore's Python scatter-add path (``adam.py``: ``_run_opt_with_sparse`` with ``target`` true).

    Repeated indices are not merged. Not lazy: every row of ``m``, ``v`` decays, then
    ``m += scatter_add((1-beta1)*values)``, ``v += scatter_add((1-beta2)*values**2)`` (squares per
    occurrence), every row of ``w`` moves; Nesterov's numerator is ``beta1*m + scatter_add((1-beta1)*values)``.
    Lazy (``_run_lazy_opt_with_sparse``): gather ``m``, ``v`` per occurrence, ``scatter_add`` each
    occurrence's step into ``w``, ``scatter_update`` ``m`` and ``v`` (the last occurrence wins).
    """
    one = np.float32(1.0)
    b1, b2, lr_t, eps = hyper.beta1, hyper.beta2, hyper.lr_t, hyper.eps
    if not lazy:
        m *= b1
        v *= b2
        np.add.at(m, indices, (one - b1) * values)
        np.add.at(v, indices, (one - b2) * (values * values))
        if hyper.use_nesterov:
            numerator = b1 * m
            np.add.at(numerator, indices, (one - b1) * values)
        else:
            numerator = m
        w -= lr_t * (numerator / (np.sqrt(v) + eps))
        return
    next_m = m[indices] * b1 + values * (one - b1)
    next_v = v[indices] * b2 + values * values * (one - b2)
    numerator = b1 * next_m + values * (one - b1) if hyper.use_nesterov else next_m
    np.add.at(w, indices, -lr_t * (numerator / (np.sqrt(next_v) + eps)))
    rows, last = _last_occurrence(indices)
    m[rows] = next_m[last]
    v[rows] = next_v[last]


def fused_sparse(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, indices: np.ndarray, values: np.ndarray, lazy: bool,
    hyper: StepHyper,
) -> None:
    """MindSpore's host kernels ``FusedSparseAdam`` / ``FusedSparseLazyAdam`` (``opt.target = 'CPU'``).

    Repeated indices are merged first. Not lazy: the dense formula on every row with the merged
    gradient (zero on untouched rows). MindSpore's non-lazy Nesterov form moves untouched rows with a
    stale workspace value (undefined); msadam uses ``beta1*m + (1-beta1)*G`` with the merged ``G``.
    Lazy: the dense formula on the touched rows only.
    """
    one = np.float32(1.0)
    b1, b2, lr_t, eps = hyper.beta1, hyper.beta2, hyper.lr_t, hyper.eps
    rows, grad = merge_duplicates(indices, values)
    if lazy:
        m_rows = m[rows] * b1 + (one - b1) * grad
        v_rows = v[rows] * b2 + (one - b2) * (grad * grad)
        numerator = b1 * m_rows + (one - b1) * grad if hyper.use_nesterov else m_rows
        w[rows] -= lr_t * (numerator / (np.sqrt(v_rows) + eps))
        m[rows] = m_rows
        v[rows] = v_rows
        return
    m *= b1
    v *= b2
    m[rows] += (one - b1) * grad
    v[rows] += (one - b2) * (grad * grad)
    if hyper.use_nesterov:
        numerator = b1 * m
        numerator[rows] += (one - b1) * grad
    else:
        numerator = m
    w -= lr_t * (numerator / (np.sqrt(v) + eps))
