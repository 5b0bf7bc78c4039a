"""Step-time gradient checks: every gradient is checked before any state changes.

MindSpore's errors are part of the contract: gradients must be a ``tuple`` (a list is a
``RuntimeError``), their count must match (``RuntimeError``), a shape mismatch is a ``ValueError``.

Dtypes follow MindSpore's implicit conversion: the Adam primitive puts ``var`` and ``gradient`` in
one dtype group (``ops/operations/nn_ops.py``, ``Adam``), so a gradient is cast to the parameter's
dtype unless that would change the parameter's type (a float gradient of higher precision, e.g.
float64 for float32: ``TypeError``). Integer, bool and lower-precision float gradients are cast —
but the steps before the kernel run in the gradient's own dtype: weight decay (``AddN`` of
``w * wd`` and ``g``) is a ``TypeError`` for them, and the loss scale multiplies by
``cast(1 / loss_scale, g.dtype)`` (0 for an int gradient when ``loss_scale > 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from msadam.backend import Backend
from msadam.tensor import Parameter, RowTensor, Tensor

__all__ = ["CheckedSparse", "Prescaled", "check_gradients"]


@dataclass(frozen=True)
class Prescaled:
    """A dense gradient already multiplied by the loss scale in its own dtype, then cast (skip the scale)."""

    array: Any


@dataclass(frozen=True)
class CheckedSparse:
    """A row-sparse gradient whose indices and values were checked against its parameter."""

    indices: Any  # native int array
    values: Any  # native array, the parameter's dtype


def _native(backend: Backend, value: Any) -> Any:
    if isinstance(value, Tensor | Parameter):
        value = value.asnumpy()
    if backend.owns(value):
        return value
    if isinstance(value, np.ndarray | np.generic | float | int | list | tuple):
        return backend.from_numpy(np.asarray(value))
    raise TypeError(
        f"A gradient for the {backend.name!r} backend must be a {backend.name} array, a NumPy array or a "
        f"RowTensor, but got {type(value).__name__}."
    )


def _check_dtype(param: Parameter, dtype: np.dtype, what: str, expected: np.dtype | None = None) -> None:
    if dtype != (param.dtype if expected is None else expected):
        raise TypeError(
            f"For 'Adam', the {what} of parameter '{param.name}' must have dtype {param.dtype} "
            f"(the parameter's), but got {dtype}."
        )


def _promotes_parameter(grad_dtype: np.dtype, param_dtype: np.dtype) -> bool:
    """Whether MindSpore would have to change the parameter's type to take this gradient."""
    if grad_dtype.kind in "biu":
        return False
    return grad_dtype.kind == "c" or param_dtype.kind != "f" or grad_dtype.itemsize > param_dtype.itemsize


def _check_dense(
    backend: Backend,
    param: Parameter,
    grad: Any,
    expected: tuple[tuple[int, ...], np.dtype],
    decays: bool,
    grad_scale: np.float32 | None,
) -> Any:
    native = grad if backend.owns(grad) else _native(backend, grad)
    shape = backend.shape(native)
    if shape != expected[0]:
        raise ValueError(
            f"For 'Adam', the gradient of parameter '{param.name}' must have shape {expected[0]}, but got {shape}."
        )
    dtype = backend.dtype(native)
    if dtype == expected[1]:
        return native
    if _promotes_parameter(dtype, expected[1]):
        _check_dtype(param, dtype, "gradient", expected[1])
    if decays:  # AddN((w * weight_decay, g)) with g of another dtype (optimizer.py, _tensor_apply_decay)
        raise TypeError(f"For 'AddN', the weight decay of parameter '{param.name}' ({expected[1]}) cannot be "
                        f"added to a gradient of dtype {dtype}: the dtypes must be the same.")
    if grad_scale is None:
        return backend.cast(native, expected[1])
    # tensor_grad_scale: grad * cast(1 / loss_scale, grad.dtype), in the gradient's dtype. A rare path,
    # so it runs on the host rather than asking every backend for mixed-dtype arithmetic.
    host = np.asarray(backend.to_numpy(native))
    scaled = (host * np.asarray(grad_scale).astype(host.dtype)).astype(host.dtype)
    return Prescaled(backend.from_numpy(scaled.astype(expected[1])))


def _check_sparse(backend: Backend, param: Parameter, grad: RowTensor) -> CheckedSparse:
    values = _native(backend, grad.values)
    indices_np = np.asarray(backend.to_numpy(_native(backend, grad.indices)))
    rows = param.shape[0] if param.ndim else 0
    if grad.dense_shape != param.shape:
        raise ValueError(f"For 'Adam', the RowTensor gradient of parameter '{param.name}' has dense_shape "
                         f"{grad.dense_shape}, but the parameter's shape is {param.shape}.")
    if indices_np.ndim != 1 or not np.issubdtype(indices_np.dtype, np.integer):
        raise TypeError(f"For 'Adam', RowTensor indices of parameter '{param.name}' must be a 1-D integer "
                        f"array, but got shape {indices_np.shape} and dtype {indices_np.dtype}.")
    values_shape = backend.shape(values)
    if values_shape != (indices_np.shape[0], *param.shape[1:]):
        raise ValueError(f"For 'Adam', RowTensor values of parameter '{param.name}' must have shape "
                         f"{(indices_np.shape[0], *param.shape[1:])} (one row per index), but got {values_shape}.")
    if indices_np.size and (indices_np.min() < 0 or indices_np.max() >= rows):
        raise ValueError(f"For 'Adam', RowTensor indices of parameter '{param.name}' must be in [0, {rows}), "
                         f"but got values in [{indices_np.min()}, {indices_np.max()}].")
    _check_dtype(param, backend.dtype(values), "RowTensor values")
    return CheckedSparse(_native(backend, grad.indices), values)


def check_gradients(
    backend: Backend,
    params: Sequence[Parameter],
    gradients: Any,
    sparse_allowed: str | None,
    expected: Sequence[tuple[tuple[int, ...], np.dtype]],
    decays: Sequence[bool],
    grad_scale: np.float32 | None,
    centralizes: Sequence[bool],
) -> list[Any]:
    """Check ``gradients`` against ``params``: native dense arrays, :class:`Prescaled`, :class:`CheckedSparse`.

    ``expected`` gives each parameter's ``(shape, dtype)``, ``decays`` whether it takes weight decay,
    ``grad_scale`` the loss-scale factor (``None`` for a loss scale of 1), ``centralizes`` whether the
    parameter's group has gradient centralization on (MindSpore cannot centralize a RowTensor:
    ``_tensor_apply_grad_centralization_with_sparse`` takes ``F.shape`` of it, a ``TypeError``).
    ``sparse_allowed`` is ``None`` when RowTensors are accepted, else the reason they are not
    (MindSpore registers no sparse kernel for AMSGrad or offload: ``adam.py``'s ``_adam_opt``).
    """
    if not isinstance(gradients, tuple):
        # MindSpore's graph dispatch (`Map` over the parameter tuple) rejects any other container.
        raise RuntimeError(f"For 'Adam', the gradients must be a tuple, but got {type(gradients).__name__}.")
    if len(gradients) != len(params):
        raise RuntimeError(
            f"For 'Adam', the number of gradients ({len(gradients)}) must equal the number of parameters "
            f"({len(params)})."
        )
    checked: list[Any] = []
    # Optional backend method (docs/backend-authors.md): the framework's own row-sparse gradients
    # (tf.IndexedSlices, a row-sparse BCOO, a torch sparse COO tensor) as RowTensors.
    as_row_tensor = getattr(backend, "as_row_tensor", None)
    for param, grad, shape_dtype, decay, centralize in zip(
        params, gradients, expected, decays, centralizes, strict=True
    ):
        if as_row_tensor is not None and not isinstance(grad, RowTensor):
            converted = as_row_tensor(grad)
            grad = grad if converted is None else converted
        if isinstance(grad, RowTensor):
            if sparse_allowed is not None:
                raise TypeError(f"For 'Adam', parameter '{param.name}' got a RowTensor gradient, but "
                                f"{sparse_allowed}.")
            if centralize:
                raise TypeError(f"Failed calling Shape with \"input_x=RowTensor\": parameter '{param.name}' is in "
                                "a group with grad_centralization=True, which MindSpore cannot apply to a RowTensor.")
            checked.append(_check_sparse(backend, param, grad))
        else:
            checked.append(_check_dense(backend, param, grad, shape_dtype, decay, grad_scale))
    return checked
