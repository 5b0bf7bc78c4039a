"""MindSpore's Adam kernels on ``torch.Tensor``s, bit-exact with msadam's NumPy reference on the CPU.

Every function mirrors one of :mod:`msadam.backends.numpy_kernels` operation for operation, in
place, under ``torch.no_grad()`` (parameters may require grad; ``nn.Parameter`` objects are never
replaced):

* :func:`adam_step_` — the dense step of a list of tensors. For float32 it reproduces MindSpore's
  nnacl ``AdamFp32`` rounding: the fused multiply-adds of its 8-wide vector loop (``a*b + c`` of
  float32 inputs rounded once, :func:`fma32`) and the
  double-precision scalar loop of the last ``size % 8`` elements of each tensor. Tensors are
  processed in chunks of at most :func:`chunk_size` elements with reused scratch: a large tensor
  chunk by chunk through views (no copy), small tensors packed together into one chunk (so 1,000
  tiny tensors cost a few dozen torch calls, not 20,000). float16 tensors run the same float32
  kernel on float32 copies, rounded back (as MindSpore's CPU does, ``numpy_kernels.VIA_FLOAT32``);
  other dtypes use the plain formula.
* :func:`sparse_step_` — MindSpore's row-sparse paths (``SparsePath.COMPOSITE``/``FUSED``, lazy or not).
* :func:`dense_step` — dispatch: the optional compiled kernel ``msadam_torch.native.adam_step_``
  when importable (and not disabled by ``MSADAM_TORCH_NATIVE=0``), else :func:`adam_step_`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from msadam.backend import SparseGrad, SparsePath, StepHyper
from msadam.backends.numpy_kernels import SIMD_WIDTH, centralizes

__all__ = [
    "adam_step_",
    "centralize",
    "chunk_size",
    "coo_to_row_parts",
    "dense_step",
    "merge_duplicates",
    "native_kernel",
    "preprocess",
    "sparse_step_",
    "sqrt",
]

Tensor = torch.Tensor
AdamStep = Callable[..., bool]  # adam_step_(params, grads, m, v, vhat, hyper) -> handled
ENV_NATIVE = "MSADAM_TORCH_NATIVE"  # "0" disables the compiled kernel

# Elements per pass. On the CPU the scratch (float32 buffers and the float64 temporaries of fma32, a few MiB shared by
# the intra-op threads) stays mostly in L2 while each torch call has enough work to amortise its
# dispatch (measured: 2**16 to 2**17 are best, 2**15 and 2**18 ~20% slower).
_CHUNK = {"cpu": 1 << 17}
_CHUNK_DEFAULT = 1 << 20  # accelerators: fewer, larger launches
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)  # dtypes NumPy computes on the CPU, zero-copy


def chunk_size(device: torch.device) -> int:
    """The number of elements :func:`adam_step_` processes per pass on ``device``."""
    return _CHUNK.get(device.type, _CHUNK_DEFAULT)


# ----------------------------------------------------------------------------- preprocessing


def centralize(g: Tensor) -> Tensor:
    """``g - mean(g, axes 1..ndim-1)`` (MindSpore's Ascend-only ``Centralization`` formula).

    On the CPU the means come from NumPy on a zero-copy view, so their rounding (NumPy's pairwise
    summation) is the reference's to the last bit; elsewhere ``torch.mean`` (last-bit differences).
    """
    axes = tuple(range(1, g.ndim))
    if g.device.type == "cpu" and g.dtype in _NUMPY_FLOATS:
        host = g.detach().numpy()
        mean = torch.from_numpy(np.asarray(host.mean(axis=axes, keepdims=True, dtype=host.dtype)))
    else:
        mean = g.mean(dim=axes, keepdim=True, dtype=g.dtype)
    return g - mean


def preprocess(g: Tensor, w_rows: Tensor | None, hyper: StepHyper) -> Tensor:
    """Weight decay, centralization and loss scale, in MindSpore's order (``numpy_kernels.preprocess``).

    ``g + weight_decay * w`` (``_tensor_apply_decay``), centralization, ``g * (1/loss_scale)``
    (``tensor_grad_scale``). Never modifies ``g``; returns ``g`` itself when nothing applies.
    """
    out = g
    if hyper.weight_decay is not None:  # w * cast(weight_decay, w.dtype) + g, in the parameter's dtype
        assert w_rows is not None
        out = w_rows * _scalar(hyper.weight_decay, w_rows) + out
    if hyper.centralize and centralizes(tuple(out.shape)):
        out = centralize(out)
    if hyper.grad_scale is not None:  # g * cast(1 / loss_scale, g.dtype)
        out = out * _scalar(hyper.grad_scale, out)
    return out


def _scalar(value: Any, like: Tensor) -> Tensor:
    """A 0-d tensor of ``like``'s dtype: MindSpore casts a hyper-parameter to the array's dtype (``F.cast``)."""
    return torch.tensor(float(value), dtype=like.dtype)


def sqrt(x: Tensor, out: Tensor | None = None) -> Tensor:
    """A correctly rounded square root, as IEEE ``sqrt`` (NumPy's, and MindSpore's C ``sqrtf``/``sqrt``).

    torch's CPU ``sqrt`` goes through MKL's vector math, accurate to < 1 ulp but not correctly rounded
    (~17% of float32 roots differ from IEEE by one ulp), so on the CPU the root is NumPy's, computed
    on zero-copy views. CUDA's ``sqrt`` is IEEE. Elsewhere the root is taken in float64 and rounded:
    a float32's root is at least ``2**-51`` (relative) away from a float32 rounding midpoint, so a
    float64 root within a few ulps rounds to the IEEE float32 one.
    """
    if x.device.type == "cpu" and x.dtype in _NUMPY_FLOATS:
        if out is None:
            return torch.from_numpy(np.sqrt(x.detach().numpy()))
        np.sqrt(x.detach().numpy(), out=out.detach().numpy())
        return out
    root = torch.sqrt(x) if x.device.type == "cuda" or x.dtype == torch.float64 else torch.sqrt(x.double())
    return root.to(x.dtype) if out is None else out.copy_(root)


def _without_preprocessing(hyper: StepHyper) -> StepHyper:
    return dataclasses.replace(hyper, weight_decay=None, centralize=False, grad_scale=None)


def _dense_grad(g: Tensor, w: Tensor) -> Tensor:
    """A gradient as a strided tensor on its parameter's device."""
    if g.layout != torch.strided:
        g = g.to_dense()  # the core checked it as a dense gradient: its value is the dense sum
    return g if g.device == w.device else g.to(w.device)


# ----------------------------------------------------------------------------- dense float32: the plan


@dataclass(frozen=True)
class _Segment:
    """One pass: a piece ``[start, start + size)`` of one tensor (a view), or several whole small tensors."""

    members: tuple[int, ...]
    sizes: tuple[int, ...]  # the members' sizes (when packed)
    start: int
    size: int
    tail: Tensor | None  # positions in the segment that MindSpore's scalar loop updates

    @property
    def packed(self) -> bool:
        return len(self.members) > 1


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _plan(numels: Sequence[int], chunk: int, device: torch.device) -> list[_Segment]:
    """Segments covering every element once: tensors above ``chunk / 2`` alone, in near-equal pieces
    (multiples of 8, so each tensor's scalar tail lies in one piece); smaller ones packed, never split."""
    segments: list[_Segment] = []
    run: list[int] = []

    def segment(members: Sequence[int], start: int, size: int) -> None:
        tails: list[int] = []
        offset = -start
        for i in members:
            n = numels[i]
            tails.extend(p for p in range(offset + n - n % SIMD_WIDTH, offset + n) if 0 <= p < size)
            offset += n
        tail = torch.tensor(tails, dtype=torch.int64, device=device) if tails else None
        segments.append(_Segment(tuple(members), tuple(numels[i] for i in members), start, size, tail))

    def flush() -> None:
        if run:
            segment(run, 0, sum(numels[i] for i in run))
            run.clear()

    for i, n in enumerate(numels):
        if n == 0:
            continue
        if n > chunk // 2:
            flush()
            step = _ceil_div(_ceil_div(n, _ceil_div(n, chunk)), SIMD_WIDTH) * SIMD_WIDTH
            for start in range(0, n, step):
                segment([i], start, min(step, n - start))
        else:
            if sum(numels[j] for j in run) + n > chunk:
                flush()
            run.append(i)
    flush()
    return segments


class _Scratch:
    """Reused float32 buffers of one plan: the update, the denominator, the gradient, and for packing."""

    def __init__(self, size: int, device: torch.device, packs: int) -> None:
        def f32() -> Tensor:
            return torch.empty(size, dtype=torch.float32, device=device)

        self.narrow, self.denom, self.grad = f32(), f32(), f32()
        self.packs = [f32() for _ in range(packs)]


def _cached_plan(cache: dict[str, Any], device: torch.device, numels: tuple[int, ...], arrays: int,
                 ) -> tuple[list[_Segment], _Scratch]:
    key = (str(device), numels, arrays)  # a bucket's shapes never change: one plan per device
    plans = cache.setdefault("torch_plans", {})
    if key not in plans:
        segments = _plan(numels, chunk_size(device), device)
        size = max((s.size for s in segments), default=0)
        packs = arrays if any(s.packed for s in segments) else 0
        plans[key] = (segments, _Scratch(size, device, packs))
    return plans[key]


# ----------------------------------------------------------------------------- dense float32: the kernel


def fma32(a: Tensor, b: Tensor | float, c: Tensor) -> Tensor:
    """``a * b + c`` for float32 tensors, rounded once to float32 (``numpy_kernels.fma32``).

    The product is exact in float64; the float64 sum is made round-to-odd (TwoSum error, then one
    ulp towards it when the sum landed on an even mantissa), which then rounds to float32 correctly.
    """
    p = a.double() * (b.double() if isinstance(b, Tensor) else b)
    c64 = c.double()
    total = p + c64
    bb = total - p
    err = (p - (total - bb)) + (c64 - bb)
    nudge = (err != 0) & torch.isfinite(err) & ((total.view(torch.int64) & 1) == 0)
    if bool(nudge.any()):
        toward = torch.where(err > 0, torch.full_like(total, math.inf), torch.full_like(total, -math.inf))
        total = torch.where(nudge, torch.nextafter(total, toward), total)
    return total.float()


def _body(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor | None, g: Tensor, hyper: StepHyper, s: _Scratch) -> None:
    """nnacl ``AdamFp32``'s vector loop (``numpy_kernels._fused_body``), on flat float32 tensors.

    ``m = fma(g - m, 1-b1, m)``; ``v = fma(fma(g, g, -v), 1-b2, v)``; Nesterov numerator
    ``fma(1-b1, g, m*b1)``; ``w -= (lr_t * numerator) / (sqrt(v) + eps)``. Each fma is rounded once
    (:func:`fma32`).
    """
    n = w.numel()
    t32, d32 = s.narrow[:n], s.denom[:n]
    one = np.float32(1.0)
    c1, c2 = float(one - hyper.beta1), float(one - hyper.beta2)
    torch.sub(g, m, out=t32)
    m.copy_(fma32(t32, c1, m))
    v.copy_(fma32(fma32(g, g, v.neg()), c2, v))
    second = v
    if vhat is not None:
        torch.where(vhat < v, v, vhat, out=vhat)  # MindSpore's max: a NaN v keeps vhat, a NaN vhat stays
        second = vhat
    if hyper.use_nesterov and not hyper.use_amsgrad:
        torch.mul(m, float(hyper.beta1), out=t32)
        t32.copy_(fma32(g, c1, t32)).mul_(float(hyper.lr_t))
    else:
        torch.mul(m, float(hyper.lr_t), out=t32)
    sqrt(second, out=d32).add_(float(hyper.eps))
    w.sub_(t32.div_(d32))


def _scalar_loop(w: Tensor, m: Tensor, second: Tensor, g: Tensor, hyper: StepHyper) -> Tensor:
    """nnacl ``AdamFp32``'s scalar remainder loop (``numpy_kernels._scalar_loop``): the new ``w``.

    C's ``sqrt`` is double, so ``w - lr*num / (sqrt(v) + eps)`` runs in double; the Nesterov numerator
    contracts as ``fma(m, b1, (1-b1)*g)``.
    """
    numerator = m
    if hyper.use_nesterov and not hyper.use_amsgrad:
        numerator = fma32(m, float(hyper.beta1), g * float(np.float32(1.0) - hyper.beta1))
    scaled = (numerator * float(hyper.lr_t)).double()
    update = scaled.div_(sqrt(second.double()).add_(float(hyper.eps)))
    return w.double().sub_(update).float()


def _segment_step(seg: _Segment, flat: Sequence[Sequence[Tensor]], g_flat: Sequence[Tensor], hyper: StepHyper,
                  s: _Scratch) -> None:
    """One segment: gather (views, or packed copies), preprocess into scratch, update, scatter back.

    ``flat`` holds the flat views of ``[w, m, v(, vhat)]``, ``g_flat`` those of the gradients.
    """
    n = seg.size
    if seg.packed:
        work = [torch.cat([xs[i] for i in seg.members], out=buf[:n]) for xs, buf in zip(flat, s.packs, strict=True)]
        g = torch.cat([g_flat[i] for i in seg.members], out=s.grad[:n])
    else:
        i, piece = seg.members[0], slice(seg.start, seg.start + n)
        work = [xs[i][piece] for xs in flat]
        g = g_flat[i][piece]
    w, m, v = work[:3]
    vhat = work[3] if len(work) > 3 else None
    if hyper.weight_decay is not None:  # g = w * weight_decay + g
        torch.add(torch.mul(w, float(hyper.weight_decay), out=s.narrow[:n]), g, out=s.grad[:n])
        g = s.grad[:n]
    if hyper.grad_scale is not None:
        g = torch.mul(g, float(hyper.grad_scale), out=s.grad[:n])
    old_tail = None if seg.tail is None else w.index_select(0, seg.tail)
    _body(w, m, v, vhat, g, hyper, s)
    if seg.tail is not None and old_tail is not None:
        second = v if vhat is None else vhat
        new_tail = _scalar_loop(old_tail, m[seg.tail], second[seg.tail], g[seg.tail], hyper)
        w.index_copy_(0, seg.tail, new_tail)
    if seg.packed:
        for xs, buf in zip(flat, work, strict=True):
            torch._foreach_copy_([xs[i] for i in seg.members], list(buf.split(seg.sizes)))


def _flat_views(cache: dict[str, Any], work: list[list[Tensor]]) -> list[list[Tensor]]:
    """``view(-1)`` of every tensor, kept between steps while the bucket holds the same tensors."""
    tensors = [x for xs in work for x in xs]
    cached = cache.get("torch_views")
    if cached is None or len(cached[0]) != len(tensors) or not all(map(operator.is_, cached[0], tensors)):
        cached = (tensors, [[x.view(-1) for x in xs] for xs in work])
        cache["torch_views"] = cached
    return cached[1]


def _adam_fp32(arrays: list[list[Tensor]], grads: list[Tensor], hyper: StepHyper, cache: dict[str, Any]) -> None:
    """float32 tensors of one device (``arrays`` = ``[w, m, v(, vhat)]`` lists), MindSpore's rounding."""
    # Work on contiguous tensors; a non-contiguous one (rare) goes through a copy that is written back.
    contiguous = all(x.is_contiguous() for xs in arrays for x in xs)
    work = arrays if contiguous else [[x.contiguous() for x in xs] for xs in arrays]
    device = work[0][0].device
    segments, scratch = _cached_plan(cache, device, tuple(w.numel() for w in work[0]), len(work))
    flat = _flat_views(cache if contiguous else {}, work)
    g_flat = [g.contiguous().view(-1) for g in grads]
    for seg in segments:
        _segment_step(seg, flat, g_flat, hyper, scratch)
    for xs, ys in zip(arrays, work, strict=True):
        for x, y in zip(xs, ys, strict=True):
            if x is not y:
                x.copy_(y)


def _rounded(value: np.float32 | float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype`` (NumPy's ``scalar.astype(dtype)``), as a Python float."""
    return float(torch.tensor(float(value), dtype=torch.float64).to(dtype).item())


def _adam_plain(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor | None, g: Tensor, hyper: StepHyper) -> None:
    """The formula in the tensors' own dtype (``numpy_kernels._adam_plain``), for dtypes other than float32."""
    if hyper.use_amsgrad and vhat is not None and w.dtype == torch.float64:
        _amsgrad_float64(w, m, v, vhat, g, hyper)
        return
    b1, b2 = _rounded(hyper.beta1, w.dtype), _rounded(hyper.beta2, w.dtype)
    c1, c2 = _rounded(1.0 - b1, w.dtype), _rounded(1.0 - b2, w.dtype)  # `one - b1` in the dtype
    m.mul_(b1).add_(g * c1)
    v.mul_(b2).add_((g * g) * c2)
    amsgrad = hyper.use_amsgrad and vhat is not None
    if amsgrad and vhat is not None:
        torch.where(vhat < v, v, vhat, out=vhat)  # MindSpore's max: a NaN v keeps vhat, a NaN vhat stays
        second = vhat
    else:
        second = v
    step = m * b1 + g * c1 if hyper.use_nesterov and not amsgrad else m.clone()
    step.div_(sqrt(second).add_(_rounded(hyper.eps, w.dtype)))
    step.mul_(_rounded(hyper.lr_t, w.dtype))
    w.sub_(step)


def _amsgrad_float64(w: Tensor, m: Tensor, v: Tensor, vhat: Tensor, g: Tensor, hyper: StepHyper) -> None:
    """MindSpore's float64 ``ApplyAdamWithAmsgradV2`` (``numpy_kernels._amsgrad_float64``): double scalars,
    ``m += (g - m) * (1 - beta1)``, ``v += (g*g - v) * (1 - beta2)``, ``w -= new_lr * m / (sqrt(vhat) + eps)``."""
    one, new_lr = 1.0, float(hyper.lr_t64)  # Python floats are doubles: the float32 scalars widen exactly
    m.add_((g - m).mul_(one - float(hyper.beta1)))
    v.add_((g * g).sub_(v).mul_(one - float(hyper.beta2)))
    torch.where(vhat < v, v, vhat, out=vhat)  # std::max(vhat, v): a NaN v keeps vhat
    w.sub_((m * new_lr).div_(torch.sqrt(vhat).add_(float(hyper.eps))))


def _adam_via_fp32(arrays: list[list[Tensor]], grads: list[Tensor], hyper: StepHyper, cache: dict[str, Any]) -> None:
    """float16 tensors (``numpy_kernels._adam_via_float32``): decay and loss scale in float16, then the float32
    kernel on float32 copies of ``w``, ``m``, ``v`` (``vhat``) and the gradient, rounded back to nearest even."""
    grads = [preprocess(g, w, hyper).float() for g, w in zip(grads, arrays[0], strict=True)]
    wide = [[x.float() for x in xs] for xs in arrays]
    # A cache of its own: the float32 copies are new tensors at every step (the plan, keyed by sizes, is reused).
    _adam_fp32(wide, grads, _without_preprocessing(hyper), cache.setdefault("torch_via_fp32", {}))
    for xs, ys in zip(arrays, wide, strict=True):
        torch._foreach_copy_(xs, ys)


@torch.no_grad()
def adam_step_(params: Sequence[Tensor], grads: Sequence[Tensor], m: Sequence[Tensor], v: Sequence[Tensor],
               vhat: Sequence[Tensor] | None, hyper: StepHyper, *, cache: dict[str, Any] | None = None) -> bool:
    """One dense step of every tensor, in place (the torch implementation; always returns ``True``).

    ``grads`` are the raw gradients (same shapes and dtypes as ``params``); weight decay,
    centralization and the loss scale are applied here, as ``hyper`` says. ``cache`` keeps the
    chunk plan and scratch between steps (pass the bucket's; ``None`` allocates per call).
    """
    cache = {} if cache is None else cache
    grads = [_dense_grad(g, w) for g, w in zip(grads, params, strict=True)]
    if hyper.centralize:  # needs whole rows: preprocess per tensor, then a kernel without preprocessing
        grads = [preprocess(g, w, hyper) for g, w in zip(grads, params, strict=True)]
        hyper = _without_preprocessing(hyper)
    amsgrad = hyper.use_amsgrad and vhat is not None
    arrays = [list(params), list(m), list(v)] + ([list(vhat)] if amsgrad and vhat is not None else [])
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, w in enumerate(params):
        groups.setdefault((w.device, w.dtype), []).append(i)
    for (_, dtype), members in groups.items():
        if dtype == torch.float32:
            _adam_fp32([[xs[i] for i in members] for xs in arrays], [grads[i] for i in members], hyper, cache)
            continue
        if dtype == torch.float16:
            _adam_via_fp32([[xs[i] for i in members] for xs in arrays], [grads[i] for i in members], hyper, cache)
            continue
        for i in members:
            g = preprocess(grads[i], params[i], hyper)
            _adam_plain(params[i], m[i], v[i], vhat[i] if amsgrad and vhat is not None else None, g, hyper)
    return True


# ----------------------------------------------------------------------------- dispatch


@functools.cache
def _import_native() -> tuple[AdamStep | None, str | None]:
    try:
        from msadam_torch import native
    except Exception as exc:  # not built, no compiler, ...: the torch kernel is always there
        return None, f"{type(exc).__name__}: {exc}"
    kernel = getattr(native, "adam_step_", None)
    return (kernel, None) if callable(kernel) else (None, "msadam_torch.native has no adam_step_")


def native_kernel() -> AdamStep | None:
    """``msadam_torch.native.adam_step_`` when importable and not disabled (``MSADAM_TORCH_NATIVE=0``)."""
    if os.environ.get(ENV_NATIVE, "1") == "0":
        return None
    return _import_native()[0]


@torch.no_grad()
def dense_step(params: Sequence[Tensor], grads: Sequence[Tensor], m: Sequence[Tensor], v: Sequence[Tensor],
               vhat: Sequence[Tensor] | None, hyper: StepHyper, cache: dict[str, Any] | None = None) -> None:
    """One dense step: the compiled kernel when available and willing, else :func:`adam_step_`.

    The compiled kernel gets preprocessed gradients and a ``hyper`` without decay, centralization or
    loss scale, so it gives MindSpore's numbers whether or not it implements those itself.
    """
    native = native_kernel()
    if native is not None:
        grads = [preprocess(_dense_grad(g, w), w, hyper) for g, w in zip(grads, params, strict=True)]
        hyper = _without_preprocessing(hyper)
        if native(params, grads, m, v, vhat, hyper):
            return
    adam_step_(params, grads, m, v, vhat, hyper, cache=cache)


# ----------------------------------------------------------------------------- sparse


def merge_duplicates(indices: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """Unique indices and the sum of their values (``P.Unique`` + ``UnsortedSegmentSum``).

    ``index_add_`` adds in occurrence order on the CPU (as NumPy's ``add.at``); CUDA uses atomics.
    """
    unique, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    summed = values.new_zeros((unique.shape[0], *values.shape[1:]))
    return unique, summed.index_add_(0, inverse, values)


def _last_occurrence(indices: Tensor) -> tuple[Tensor, Tensor]:
    """Unique indices and the position of each one's last occurrence (``ScatterUpdate``'s winner)."""
    unique, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    positions = torch.arange(indices.shape[0], device=indices.device)
    last = torch.zeros_like(unique).scatter_reduce_(0, inverse, positions, "amax", include_self=False)
    return unique, last


def _all_rows(w: Tensor, m: Tensor, v: Tensor, rows: Tensor, values: Tensor, hyper: StepHyper,
              composite: bool) -> None:
    """The non-lazy sparse step: every row decays and moves; ``values`` scatter-add at ``rows``.

    Composite (``_run_opt_with_sparse``): ``rows`` may repeat, squares add per occurrence, and
    Nesterov's ``m_temp = next_m * 10`` / ``m = m_temp / 10`` round-trip is kept. Fused
    (``FusedSparseAdam``): ``rows`` are the merged unique indices.
    """
    one = np.float32(1.0)
    c1, c2 = float(one - hyper.beta1), float(one - hyper.beta2)
    m.mul_(float(hyper.beta1)).index_add_(0, rows, values * c1)
    v.mul_(float(hyper.beta2)).index_add_(0, rows, (values * values) * c2)
    numerator = m
    if hyper.use_nesterov:
        numerator = (m * float(hyper.beta1)).index_add_(0, rows, values * c1)
        if composite:  # a device 0-d tensor: CUDA would turn a division by a host scalar into a reciprocal
            ten = torch.tensor(10.0, dtype=m.dtype, device=m.device)
            m.copy_(torch.div(m * ten, ten))
    w.sub_(numerator.div(sqrt(v).add_(float(hyper.eps))).mul_(float(hyper.lr_t)))


def _touched_rows(w: Tensor, m: Tensor, v: Tensor, rows: Tensor, values: Tensor, hyper: StepHyper,
                  unique: bool) -> None:
    """The lazy sparse step, in O(touched rows): gather ``m``, ``v`` per occurrence, update, scatter back.

    Composite (``_run_lazy_opt_with_sparse``): each occurrence's step is scatter-added into ``w`` and
    ``m``, ``v`` are scatter-updated (the last occurrence wins). Fused (``FusedSparseLazyAdam``,
    ``unique`` merged rows): the same operations are the dense formula on the touched rows.
    """
    one = np.float32(1.0)
    c1, c2 = float(one - hyper.beta1), float(one - hyper.beta2)
    next_m = m.index_select(0, rows).mul_(float(hyper.beta1)).add_(values * c1)
    next_v = v.index_select(0, rows).mul_(float(hyper.beta2)).add_((values * values) * c2)
    numerator = next_m * float(hyper.beta1) + values * c1 if hyper.use_nesterov else next_m
    w.index_add_(0, rows, numerator.div(sqrt(next_v).add_(float(hyper.eps))).mul_(-float(hyper.lr_t)))
    if not unique:
        rows, last = _last_occurrence(rows)
        next_m, next_v = next_m.index_select(0, last), next_v.index_select(0, last)
    m.index_copy_(0, rows, next_m)
    v.index_copy_(0, rows, next_v)


@torch.no_grad()
def sparse_step_(w: Tensor, m: Tensor, v: Tensor, grad: SparseGrad, hyper: StepHyper) -> None:
    """One row-sparse step of ``w`` along ``grad.path`` (``numpy_kernels.composite_sparse`` / ``fused_sparse``).

    Values are preprocessed per occurrence (decay reads ``w[indices]``), then merged when
    ``grad.deduplicate`` ('GPU'/'Ascend' target with ``opt.unique``) or on the fused path.
    """
    indices = grad.indices.to(device=w.device, dtype=torch.int64).reshape(-1)
    values = grad.values.to(device=w.device)
    w_rows = w.index_select(0, indices) if hyper.weight_decay is not None else None
    values = preprocess(values, w_rows, hyper).to(w.dtype)  # float16: NumPy would keep float32 here
    unique = grad.deduplicate or grad.path is SparsePath.FUSED
    if unique:
        indices, values = merge_duplicates(indices, values)
    if grad.lazy:
        _touched_rows(w, m, v, indices, values, hyper, unique)
    else:
        _all_rows(w, m, v, indices, values, hyper, composite=grad.path is SparsePath.COMPOSITE)


def coo_to_row_parts(grad: Tensor) -> tuple[Tensor, Tensor]:
    """``(indices, values)`` of a row-sparse COO gradient (``sparse_dim == 1``), repeats kept.

    ``nn.Embedding(sparse=True)`` produces an *uncoalesced* gradient with one row per lookup, and
    MindSpore's sparse paths depend on those repeats (per-occurrence squares, last-occurrence
    updates), so the gradient is never coalesced (``coalesce()`` would sum repeated rows, turning the
    default path into the de-duplicated one). The public ``indices()``/``values()`` refuse an
    uncoalesced tensor, so for one the documented ``_indices()``/``_values()`` accessors are used
    (torch.sparse's docs name them for exactly this case).
    """
    if grad.layout != torch.sparse_coo:
        raise TypeError(f"Expected a sparse COO tensor, got layout {grad.layout}.")
    if grad.sparse_dim() != 1:
        raise ValueError(f"A row-sparse gradient has sparse_dim 1 (rows), got {grad.sparse_dim()} for shape "
                         f"{tuple(grad.shape)}: pass it dense (grad.to_dense()).")
    if grad.is_coalesced():
        return grad.indices()[0], grad.values()
    return grad._indices()[0], grad._values()
