"""Which parameter dtypes MindSpore's Adam kernels take on each path: the refusals, checked before a step.

Measured with MindSpore 2.10 on CPU (``docs/semantics.md``, *Half precision* and *float64 and other
dtypes*). ``mindspore.nn.Adam`` accepts a parameter of any dtype when it is built (its moments are
clones of the parameters, of the same dtype) and fails at the first step, when its graph is
compiled, wherever a kernel cannot take it — always with a ``TypeError``, and before any state
changes:

- **bfloat16**, every path: ``P.Adam`` takes float16 or float32 gradients only ("the input
  argument[grad] must be a type of {Float16, Float32, ...}, but got Tensor[BFloat16]"), and the
  AMSGrad, offload and sparse kernels cannot take it either.
- **float16 with AMSGrad**: ``ApplyAdamWithAmsgradV2`` puts the parameter in one dtype group with
  the float32 beta powers and learning rate, and a float16 ``Parameter`` cannot be converted to
  float32 ("Data type conversion is not supported for a 'Parameter' ...").
- **float16 with** ``use_offload=True``: ``AdamNoUpdateParam`` takes float32 only.
- **float16 with a** ``RowTensor`` **gradient**, on every sparse path: ``ScatterAdd`` (the default
  composite, lazy or not) and ``FusedSparseAdam`` / ``FusedSparseLazyAdam`` (``target='CPU'``)
  cannot convert the float16 ``Parameter`` to float32.
- **float64** wherever a kernel is float16/float32 only: the dense ``P.Adam`` step (plain,
  Nesterov, ``use_lazy`` with a dense gradient; a float32 gradient is cast to float64 first, and
  refused the same), ``AdamNoUpdateParam`` (``use_offload``) and the fused sparse kernels
  (``target='CPU'``). Two paths take float64 and run in it: ``ApplyAdamWithAmsgradV2``
  (``use_amsgrad=True``, with its own double formula: ``numpy_kernels._amsgrad_float64``) and the
  composite sparse path (``ScatterAdd`` and friends), both reproduced bit for bit.
- **Any other dtype** (integers, bool, complex): every path; no kernel takes it, and the
  ``Parameter`` cannot be converted.

A float16 parameter's dense step with ``P.Adam`` works (the float32 kernel on float32 copies,
rounded back: :data:`msadam.backends.numpy_kernels.VIA_FLOAT32`). float32 parameters are never refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from msadam.gradients import CheckedSparse

__all__ = ["check_parameter", "check_step_dtypes", "refusal"]

_FLOAT32, _FLOAT16, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64)


def refusal(dtype: np.dtype, *, use_amsgrad: bool, use_offload: bool, sparse: bool,
            fused: bool = False) -> str | None:
    """Why MindSpore's Adam refuses a parameter of ``dtype`` on this path (``None`` if it takes it).

    ``sparse``: the parameter's gradient is a ``RowTensor``; ``fused``: the sparse step runs the
    fused host kernels (``opt.target = 'CPU'`` set explicitly, :class:`msadam.sparse.SparseStrategy`).
    """
    if dtype == _FLOAT32:
        return None
    if dtype.name == "bfloat16":
        return ("MindSpore's Adam kernels take float16 and float32 parameters only (P.Adam: 'the input "
                "argument[grad] must be a type of {Float16, Float32}, but got Tensor[BFloat16]')")
    if dtype == _FLOAT16:
        return _float16_refusal(use_amsgrad=use_amsgrad, use_offload=use_offload, sparse=sparse)
    if dtype == _FLOAT64:
        return _float64_refusal(use_amsgrad=use_amsgrad, use_offload=use_offload, sparse=sparse, fused=fused)
    return ("no Adam kernel takes it, and a Parameter's dtype cannot be converted ('Data type conversion is "
            "not supported for a Parameter'); MindSpore's Adam steps floating-point parameters only")


def _float16_refusal(*, use_amsgrad: bool, use_offload: bool, sparse: bool) -> str | None:
    if use_amsgrad:
        return ("ApplyAdamWithAmsgradV2 (use_amsgrad=True) takes the parameter in one dtype group with the float32 "
                "beta powers and learning rate, and a float16 Parameter cannot be converted to float32")
    if use_offload:
        return "AdamNoUpdateParam (use_offload=True) takes float32 only"
    if sparse:
        return ("MindSpore's sparse kernels (ScatterAdd; FusedSparseAdam / FusedSparseLazyAdam with target='CPU') "
                "cannot convert a float16 Parameter to float32")
    return None


def _float64_refusal(*, use_amsgrad: bool, use_offload: bool, sparse: bool, fused: bool) -> str | None:
    if use_offload:
        return "AdamNoUpdateParam (use_offload=True) takes float32 only"
    if sparse:
        if fused:
            return ("FusedSparseAdam / FusedSparseLazyAdam (target='CPU') take float16 and float32 only; "
                    "the default composite sparse path runs in float64")
        return None
    if use_amsgrad:
        return None  # ApplyAdamWithAmsgradV2 runs in float64
    return ("P.Adam takes float16 and float32 gradients only (the gradient is cast to the float64 parameter's "
            "dtype first); use_amsgrad=True or a RowTensor gradient on the default sparse path run in float64")


def check_step_dtypes(params: Sequence[Any], expected: Sequence[tuple[tuple[int, ...], np.dtype]],
                      checked: Sequence[Any], use_amsgrad: bool, use_offload: bool, fused: bool = False) -> None:
    """Raise MindSpore's ``TypeError`` if any parameter's dtype is refused on the path its gradient takes.

    ``params`` are the optimizer's Parameters (for their names), ``expected`` their ``(shape, dtype)``,
    ``checked`` their checked gradients (:func:`msadam.gradients.check_gradients`), ``fused`` whether
    sparse gradients take the fused host kernels. Called once the gradients are checked, before any
    state changes (MindSpore fails when it compiles the step).
    """
    for param, (_, dtype), grad in zip(params, expected, checked, strict=True):
        if dtype != _FLOAT32:
            check_parameter(param.name, dtype, use_amsgrad=use_amsgrad, use_offload=use_offload,
                            sparse=isinstance(grad, CheckedSparse), fused=fused)


def check_parameter(name: str, dtype: np.dtype, *, use_amsgrad: bool, use_offload: bool, sparse: bool,
                    fused: bool = False) -> None:
    """MindSpore's ``TypeError`` if its Adam refuses parameter ``name`` of ``dtype`` on this path (see :func:`refusal`).

    For the framework adapters (``msadam_jax.adam``, ``msadam_tensorflow.Adam``) as for ``msadam.Adam``.
    """
    reason = refusal(np.dtype(dtype), use_amsgrad=use_amsgrad, use_offload=use_offload, sparse=sparse, fused=fused)
    if reason is not None:
        raise TypeError(f"For 'Adam', parameter '{name}' has dtype {np.dtype(dtype)}, which MindSpore 2.10 cannot "
                        f"step here: {reason}. mindspore.nn.Adam raises TypeError at its first step; "
                        "use float32 parameters.")
