"""MindSpore's Adam kernels as pure NumPy functions: the reference every backend is checked against.

Every function updates its state arrays in place and computes in the arrays' dtype with float32
host scalars, as MindSpore's CPU kernels do — except the dense step of float16 arrays, which runs
the float32 kernel on float32 copies and rounds the results back, as MindSpore's CPU does (see
:data:`VIA_FLOAT32`). Names follow MindSpore's ops:
``adam`` (``P.Adam`` / ``ApplyAdamWithAmsgradV2``), ``composite_sparse`` (``adam.py``'s
``_run_opt_with_sparse`` / ``_run_lazy_opt_with_sparse``), ``fused_sparse`` (``FusedSparseAdam`` /
``FusedSparseLazyAdam``).
"""

from __future__ import annotations

import numpy as np

from msadam.backend import StepHyper

__all__ = [
    "CHUNK",
    "SIMD_WIDTH",
    "VIA_FLOAT32",
    "adam",
    "centralize",
    "centralizes",
    "composite_sparse",
    "fma32",
    "fused_sparse",
    "merge_duplicates",
    "preprocess",
    "scalar_tail",
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
    if hyper.weight_decay is not None:  # w * cast(weight_decay, w.dtype) + g (optimizer.py, _tensor_apply_decay)
        out = w_rows * hyper.weight_decay.astype(w_rows.dtype) + out
    if hyper.centralize and centralizes(out.shape):
        out = centralize(out)
    if hyper.grad_scale is not None:  # g * cast(1 / loss_scale, g.dtype) (tensor_grad_scale)
        out = out * hyper.grad_scale.astype(out.dtype)
    return out


# MindSpore's float32 CPU Adam kernel (nnacl ``AdamFp32``) runs 8 floats per AVX step, compiled with
# fused multiply-adds, and the last ``size % 8`` elements of each tensor in a scalar C loop whose
# ``sqrt`` (C's double ``sqrt``) puts the division and the subtraction from ``w`` in double precision.
# Reproducing both makes the reference bit-exact with MindSpore on the CPU (to 1e-9 where MindSpore
# splits one large tensor across threads at boundaries that are not multiples of 8).
SIMD_WIDTH = 8


CHUNK = 1 << 15  # elements per pass: the float64 scratch of the fused multiply-adds stays in cache


def scalar_tail(size: int) -> np.ndarray:
    """Flat indices of the elements MindSpore's kernel updates in its scalar loop (the last ``size % 8``)."""
    return np.arange(size - size % SIMD_WIDTH, size)


def adam(
    w: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vhat: np.ndarray | None,
    g: np.ndarray,
    hyper: StepHyper,
    tail: np.ndarray | None = None,
) -> None:
    """One dense step, in place (``g`` already preprocessed).

    ``m = beta1*m + (1-beta1)*g``; ``v = beta2*v + (1-beta2)*g*g``;
    amsgrad: ``vhat = max(vhat, v)``, ``w -= lr_t * m / (sqrt(vhat) + eps)`` (no Nesterov form exists);
    nesterov: ``w -= lr_t * (beta1*m + (1-beta1)*g) / (sqrt(v) + eps)``; else ``w -= lr_t * m / (sqrt(v) + eps)``.

    For float32, MindSpore's rounding is reproduced (see ``SIMD_WIDTH``): ``tail`` lists the flat
    indices its scalar loop handles (default: :func:`scalar_tail` of the whole array). float16 arrays
    go through the same float32 kernel, on float32 copies rounded back (:data:`VIA_FLOAT32`); other
    dtypes use the formula in their own dtype.
    """
    if w.dtype in VIA_FLOAT32:
        _adam_via_float32(w, m, v, vhat, g, hyper, tail)
        return
    if w.dtype != np.float32:
        _adam_plain(w, m, v, vhat, g, hyper)
        return
    amsgrad = hyper.use_amsgrad and vhat is not None
    arrays = [w, m, v] + ([vhat] if amsgrad and vhat is not None else [])
    flats = [x.reshape(-1) for x in arrays]
    fw, fm, fv = flats[:3]
    fsecond = flats[3] if amsgrad else fv
    fg = np.ascontiguousarray(g, dtype=np.float32).reshape(-1)
    tail = scalar_tail(fw.size) if tail is None else tail
    old_tail_w = fw[tail].copy()
    _fused_body(fw, fm, fv, flats[3] if amsgrad else None, fg, hyper)
    if tail.size:
        fw[tail] = _scalar_loop(old_tail_w, fm[tail], fsecond[tail], fg[tail], hyper)
    for array, flat in zip(arrays, flats, strict=True):
        if not np.shares_memory(array, flat):  # a non-contiguous array: reshape copied it
            array[...] = flat.reshape(array.shape)


# A float64 keeps 29 more fraction bits than a float32: a float64 whose 29 extra bits are exactly
# 1000...0 lies on a float32 tie, the only place where rounding twice can differ from rounding once.
_TIE_MASK, _TIE = np.int64((1 << 29) - 1), np.int64(1 << 28)
_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def fma32(a: np.ndarray, b: np.ndarray | np.float32, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` for float32 inputs, rounded once to float32 — what an FMA instruction gives.

    The product is exact in float64, and the float64 sum rounds to float32 correctly except where
    it landed exactly on a float32 tie (or in float32's subnormal range, which keeps fewer bits).
    Those few elements are made *round-to-odd* (TwoSum gives the sum's exact error; a sum on an
    even mantissa is nudged one ulp towards it), which then rounds to float32 as the exact sum would.
    """
    p = np.multiply(a, b, dtype=np.float64)
    c64 = np.broadcast_to(np.asarray(c, dtype=np.float64), p.shape)
    s = p + c64
    suspect = ((s.view(np.int64) & _TIE_MASK) == _TIE) | (np.abs(s) < _F32_MIN_NORMAL)
    if suspect.any():
        ps, cs, ss = p[suspect], c64[suspect], s[suspect]
        bb = ss - ps
        err = (ps - (ss - bb)) + (cs - bb)
        nudge = (err != 0) & np.isfinite(err) & ((ss.view(np.int64) & 1) == 0)
        s[suspect] = np.where(nudge, np.nextafter(ss, np.copysign(np.inf, err)), ss)
    return s.astype(np.float32)


def _fused_body(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, vhat: np.ndarray | None, g: np.ndarray, hyper: StepHyper
) -> None:
    """nnacl ``AdamFp32``'s vector loop on flat float32 arrays, with its fused multiply-adds.

    ``m = fma(g - m, 1-b1, m)``; ``v = fma(fma(g, g, -v), 1-b2, v)``; Nesterov numerator
    ``fma(1-b1, g, m*b1)``; ``w -= (lr_t * numerator) / (sqrt(v) + eps)`` (see :func:`fma32`).
    """
    one = np.float32(1.0)
    c1, c2 = one - hyper.beta1, one - hyper.beta2
    nesterov = hyper.use_nesterov and not hyper.use_amsgrad
    narrow, denom = np.empty(min(w.size, CHUNK), np.float32), np.empty(min(w.size, CHUNK), np.float32)
    for start in range(0, w.size, CHUNK):
        stop = min(w.size, start + CHUNK)
        t32, d32 = narrow[: stop - start], denom[: stop - start]
        gs, ms, vs, ws = g[start:stop], m[start:stop], v[start:stop], w[start:stop]
        np.subtract(gs, ms, out=t32)
        ms[...] = fma32(t32, c1, ms)
        vs[...] = fma32(fma32(gs, gs, -vs), c2, vs)
        second = vs
        if vhat is not None:
            second = vhat[start:stop]
            # MindSpore's ApplyAdamWithAmsgradV2 (CPU) takes `vhat < v ? v : vhat`: a NaN v leaves vhat
            # as it was and a NaN vhat stays; np.maximum would let a NaN v through.
            np.copyto(second, vs, where=second < vs)
        if nesterov:
            np.multiply(ms, hyper.beta1, out=t32)
            t32[...] = fma32(gs, c1, t32)
            np.multiply(t32, hyper.lr_t, out=t32)
        else:
            np.multiply(ms, hyper.lr_t, out=t32)
        np.sqrt(second, out=d32)
        np.add(d32, hyper.eps, out=d32)
        np.divide(t32, d32, out=t32)
        np.subtract(ws, t32, out=ws)


def _scalar_loop(
    w: np.ndarray, m: np.ndarray, second: np.ndarray, g: np.ndarray, hyper: StepHyper
) -> np.ndarray:
    """nnacl ``AdamFp32``'s scalar remainder loop: new ``w`` for already-updated ``m`` and ``v``.

    C's ``sqrt`` is double, so ``w - lr*num / (sqrt(v) + eps)`` is evaluated in double; the Nesterov
    numerator contracts as ``fma(m, b1, (1-b1)*g)``.
    """
    one = np.float32(1.0)
    numerator = fma32(m, hyper.beta1, (one - hyper.beta1) * g) if hyper.use_nesterov and not hyper.use_amsgrad else m
    scaled = (hyper.lr_t * numerator).astype(np.float64)
    update = scaled / (np.sqrt(second.astype(np.float64)) + np.float64(hyper.eps))
    return (w.astype(np.float64) - update).astype(np.float32)


# MindSpore 2.10 registers its CPU ``Adam`` kernel for float32 only (``adam_cpu_kernel.cc``: one
# ``KernelAttr``, all float32; its float16 branch is never selected). For a
# float16 parameter its kernel selection takes that float32 kernel and inserts casts: float32 copies
# of ``w``, ``m``, ``v`` and the (already decayed and scaled, in float16) gradient go through nnacl
# ``AdamFp32`` — fused multiply-adds, double-precision scalar tail, float32 ``eps`` — and the new
# ``w``, ``m``, ``v`` are cast back to float16, rounded to nearest even. Measured against MindSpore
# 2.10 on CPU: bit for bit (plain, Nesterov, weight decay, loss scale; sizes to 20,000; moments
# underflowing or overflowing float16), where the formula in float16 differs everywhere (eps = 1e-8
# is 0 in float16) and the float32 formula without the fused multiply-adds by up to 58 ulps.
VIA_FLOAT32 = (np.dtype(np.float16),)


def _adam_via_float32(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, vhat: np.ndarray | None, g: np.ndarray, hyper: StepHyper,
    tail: np.ndarray | None,
) -> None:
    """The float32 kernel on float32 copies of ``w``, ``m``, ``v`` (``vhat``) and ``g``, rounded back in place."""
    narrow = [w, m, v] + ([vhat] if hyper.use_amsgrad and vhat is not None else [])
    wide = [x.astype(np.float32) for x in narrow]
    adam(wide[0], wide[1], wide[2], wide[3] if len(wide) > 3 else None, np.asarray(g, np.float32), hyper, tail)
    for x, y in zip(narrow, wide, strict=True):
        x[...] = y  # float32 -> float16: round to nearest even, as MindSpore's Cast


def _adam_plain(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, vhat: np.ndarray | None, g: np.ndarray, hyper: StepHyper
) -> None:
    """The formula in the arrays' own dtype, for dtypes other than float32 and float16 (float64, bfloat16)."""
    if hyper.use_amsgrad and vhat is not None and w.dtype == np.float64:
        _amsgrad_float64(w, m, v, vhat, g, hyper)
        return
    one = np.asarray(1.0, w.dtype)
    b1, b2 = hyper.beta1.astype(w.dtype), hyper.beta2.astype(w.dtype)
    m *= b1
    m += (one - b1) * g
    v *= b2
    v += (one - b2) * (g * g)
    if hyper.use_amsgrad and vhat is not None:
        np.copyto(vhat, v, where=vhat < v)  # MindSpore's max: a NaN v keeps vhat (see _fused_body)
    second = vhat if hyper.use_amsgrad and vhat is not None else v
    step = b1 * m + (one - b1) * g if hyper.use_nesterov and not hyper.use_amsgrad else m.copy()
    step /= np.sqrt(second) + hyper.eps.astype(w.dtype)
    step *= hyper.lr_t.astype(w.dtype)
    w -= step


def _amsgrad_float64(
    w: np.ndarray, m: np.ndarray, v: np.ndarray, vhat: np.ndarray, g: np.ndarray, hyper: StepHyper
) -> None:
    """MindSpore's ``ApplyAdamWithAmsgradV2`` CPU kernel for float64 (``LaunchApplyAdamWithAmsgradV2<double>``).

    Its float32 scalars (``lr``, the beta powers, ``beta1``, ``beta2``, ``eps``) are widened to
    double, and ``new_lr = lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` is computed in double
    (:attr:`StepHyper.lr_t64`, not the float32 ``lr_t``); then per element, in double:
    ``m += (g - m) * (1 - beta1)``; ``v += (g*g - v) * (1 - beta2)``; ``vhat = max(vhat, v)``;
    ``w -= new_lr * m / (sqrt(vhat) + eps)``.
    """
    one, new_lr = np.float64(1.0), hyper.lr_t64
    m += (g - m) * (one - np.float64(hyper.beta1))
    v += (g * g - v) * (one - np.float64(hyper.beta2))
    np.copyto(vhat, v, where=vhat < v)  # std::max(vhat, v): a NaN v keeps vhat
    w -= new_lr * m / (np.sqrt(vhat) + np.float64(hyper.eps))


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
            # adam.py stashes `m_temp = next_m * 10` and restores `m = m_temp / 10`: two float32 roundings.
            ten = np.asarray(10.0, m.dtype)
            m[...] = (m * ten) / ten
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
