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

Everything a kernel could trip over is refused here, before the optimizer changes any state, so
that on every backend a bad gradient is a clear error and never a half-made step. Where MindSpore
raises for the same mistake its class is kept (tests/test_failed_steps.py records what MindSpore
2.10 does, case by case); where the natural Python class differs, the exception is both:

- an array of another framework, or any object that is no array: :class:`GradientTypeError`, a
  ``TypeError`` and a ``NotImplementedError`` (MindSpore: "cannot be converted to MindSpore type");
  ``None``, a ``str`` or a ragged list: :class:`GradientValueError`, a ``TypeError`` and a ``ValueError``
  (MindSpore: "cannot find fn match given args");
- ``RowTensor`` indices outside the table: :class:`RowIndexError`, a ``ValueError`` and a
  ``RuntimeError`` (MindSpore's default scatter-add path raises ``RuntimeError`` after it has already
  decayed ``m`` and advanced its step; its fused ``target='CPU'`` kernels drop such rows silently);
- ``RowTensor`` indices that are not 1-D integers, or values that are not one row of the parameter
  per index: ``TypeError``, as MindSpore's ``RowTensor`` and scatter kernels;
- a gradient on another device than its parameter: ``ValueError``; of another layout (a torch sparse
  CSR tensor for a dense parameter): ``TypeError`` (MindSpore has no counterpart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from msadam.backend import Backend
from msadam.tensor import Parameter, RowTensor, Tensor

__all__ = ["CheckedSparse", "GradientTypeError", "GradientValueError", "Prescaled", "RowIndexError",
           "check_gradients"]


class GradientTypeError(TypeError, NotImplementedError):
    """A gradient that is no array msadam can take (another framework's, or any other object).

    Also a ``NotImplementedError``: what ``mindspore.nn.Adam`` raises for a value it cannot convert.
    """


class GradientValueError(TypeError, ValueError):
    """A gradient that is ``None``, a ``str`` or a ragged list: also a ``ValueError``, as in MindSpore."""


class RowIndexError(ValueError, RuntimeError):
    """``RowTensor`` indices outside ``[0, rows)``: also a ``RuntimeError``, as MindSpore's scatter kernels raise."""


@dataclass(frozen=True)
class Prescaled:
    """A dense gradient already multiplied by the loss scale in its own dtype, then cast (skip the scale)."""

    array: Any


@dataclass(frozen=True)
class CheckedSparse:
    """A row-sparse gradient whose indices and values were checked against its parameter."""

    indices: Any  # native int array
    values: Any  # native array, the parameter's dtype


_HOST_VALUES = (np.ndarray, np.generic, float, int, list, tuple)


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _host(value: Any, what: str, backend: Backend) -> np.ndarray:
    """A host value (NumPy array or scalar, Python number or sequence) as a NumPy array of numbers."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise GradientValueError(f"For 'Adam', the {what} cannot be converted to an array: {exc}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"For 'Adam', the {what} must be numeric, but got an array of {array.dtype} "
                        f"(from {_type_name(value)}) for the {backend.name!r} backend.")
    return array


def _native(backend: Backend, value: Any, what: str = "gradient") -> Any:
    if isinstance(value, Tensor | Parameter):
        value = value.asnumpy()
    if backend.owns(value):
        return value
    if isinstance(value, _HOST_VALUES):
        return backend.from_numpy(_host(value, what, backend))
    _refuse(backend, value, what)


def _refuse(backend: Backend, value: Any, what: str) -> NoReturn:
    """Raise the error for a value that is neither this backend's array nor a host value."""
    foreign = "" if type(value).__module__.partition(".")[0] in ("builtins", "msadam") else (
        " (an array of another framework: msadam does not move arrays between frameworks; convert it, "
        "e.g. to NumPy, first)")
    kinds = ["a NumPy array"] if backend.name == "numpy" else [f"a {backend.name} array", "a NumPy array"]
    if what == "gradient":
        kinds.append("a RowTensor")
    error = GradientValueError if value is None or isinstance(value, str) else GradientTypeError
    raise error(f"For 'Adam', a {what} for the {backend.name!r} backend must be {', '.join(kinds[:-1])}"
                f"{' or ' if len(kinds) > 1 else ''}{kinds[-1]}, but got {_type_name(value)}{foreign}.")


def _placement(array: Any) -> tuple[Any, Any] | None:
    """``(device, layout)`` of an array that carries both as values, else ``None``.

    PyTorch's ``torch.device`` (``type``, ``index``) and ``layout`` are compared, because torch never
    moves an operand between devices inside an in-place kernel: a gradient elsewhere than its
    parameter (another GPU, the CPU, the ``meta`` device) would fail in the middle of a step.
    NumPy (``device == "cpu"``), JAX and TensorFlow (strings, shardings) are not compared: their
    arrays are on the host, or the framework places and copies operands itself.
    """
    device = getattr(array, "device", None)
    if device is None or not (hasattr(device, "type") and hasattr(device, "index")):
        return None
    return device, getattr(array, "layout", None)


def _check_placement(param: Parameter, native: Any, what: str) -> None:
    expected, found = _placement(param.data), _placement(native)
    if expected is None or found is None:
        return
    if found[1] != expected[1]:
        raise TypeError(f"For 'Adam', the {what} of parameter '{param.name}' must have the parameter's layout "
                        f"({expected[1]}), but got {found[1]}.")
    if found[0] != expected[0]:
        raise ValueError(f"For 'Adam', the {what} of parameter '{param.name}' must be on the parameter's device "
                         f"({expected[0]}), but it is on {found[0]}.")


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
    _check_placement(param, native, "gradient")
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


def _sparse_indices(backend: Backend, param: Parameter, indices: Any) -> tuple[np.ndarray, Any]:
    """RowTensor indices as ``(host copy, native array)``, checked to be a 1-D integer array."""
    what = "RowTensor indices"
    if isinstance(indices, Tensor | Parameter):
        indices = indices.asnumpy()
    if backend.owns(indices):
        _check_placement(param, indices, what)
        host, native = np.asarray(backend.to_numpy(indices)), indices
    elif isinstance(indices, _HOST_VALUES):
        host, native = _host(indices, what, backend), None
    else:
        _refuse(backend, indices, what)
    if host.dtype.kind not in "iu":
        raise TypeError(f"For 'Adam', the {what} of parameter '{param.name}' must be integers, but got {host.dtype}.")
    if host.ndim != 1:
        raise TypeError(f"For 'Adam', the {what} of parameter '{param.name}' must be 1-D (one row index per "
                        f"row of values), but got shape {host.shape}.")
    return host, native


def _check_sparse(backend: Backend, param: Parameter, grad: RowTensor) -> CheckedSparse:
    if grad.dense_shape != param.shape:
        raise ValueError(f"For 'Adam', the RowTensor gradient of parameter '{param.name}' has dense_shape "
                         f"{grad.dense_shape}, but the parameter's shape is {param.shape}.")
    if not param.shape:
        raise ValueError(f"For 'Adam', parameter '{param.name}' is a scalar: it has no rows for a RowTensor.")
    indices, native_indices = _sparse_indices(backend, param, grad.indices)
    values = _native(backend, grad.values, "RowTensor values")
    _check_placement(param, values, "RowTensor values")
    values_shape = backend.shape(values)
    if values_shape != (indices.shape[0], *param.shape[1:]):
        raise TypeError(f"For 'Adam', RowTensor values of parameter '{param.name}' must have shape "
                        f"{(indices.shape[0], *param.shape[1:])} (one row per index), but got {values_shape}.")
    _check_dtype(param, backend.dtype(values), "RowTensor values")
    rows = param.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        # MindSpore's default path raises RuntimeError (after it has written m or w and its step), its
        # fused target='CPU' kernels drop such rows silently; msadam refuses them all, before any change.
        raise RowIndexError(f"For 'Adam', RowTensor indices of parameter '{param.name}' must be in [0, {rows}), "
                            f"but got values in [{indices.min()}, {indices.max()}].")
    if native_indices is None:
        native_indices = backend.from_numpy(indices)
    return CheckedSparse(native_indices, values)


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
