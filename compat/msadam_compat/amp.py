"""``mindspore.amp``: loss scalers and ``all_finite``, over any msadam backend's arrays.

``StaticLossScaler`` and ``DynamicLossScaler`` keep MindSpore 2.10's arguments, checks, state
(``scale_value`` is a float32 ``Parameter`` named ``"scale_value"``; ``DynamicLossScaler`` adds an
int32 ``Parameter`` ``"counter"``) and float32 numbers. ``scale(inputs)`` and ``unscale(inputs)``
take one array or a nested ``tuple``/``list``/``dict`` of arrays — NumPy arrays, native arrays of
any msadam backend (``torch.Tensor``, ``jax.Array``, ``tf.Tensor``/``tf.Variable``,
``mindspore.Tensor``) or ``ms.Tensor``/``ms.Parameter`` — and return the same containers of the
same kind of arrays, in each array's dtype (amp.py lines 99-104):

    scale(g)   = g * cast(scale_value, g.dtype)
    unscale(g) = g * cast(fl32(1 / scale_value), g.dtype)

(so a float16 gradient is multiplied by the float16-rounded reciprocal, exactly as MindSpore
does; a ``tf.Variable`` gives a ``tf.Tensor`` and an ``ms.Parameter`` an ``ms.Tensor``, as
``Parameter * Tensor`` is a ``Tensor`` in MindSpore). No framework is imported here: the
arithmetic is each framework's own ``*`` with a NumPy scalar of the array's dtype (or, for a
framework that refuses NumPy scalars, a 0-d array made by its backend's ``from_numpy``).

Denormals: MindSpore runs these maps as compiled graphs (``@jit``), whose CPU kernels flush
float32/float64 subnormals to zero, both read (DAZ) and written (FTZ) — so ``fl32(1 / s)`` is 0
for ``s > 2**126``, and a subnormal gradient or product becomes ±0 (float16 is converted in
software and keeps its subnormals). The reciprocal is flushed here for every backend; the
gradients are flushed on the host path (NumPy arrays, ``ms.Tensor``, ``ms.Parameter``), while a
native array follows its framework's own denormal mode (TensorFlow and XLA flush on CPU by
default, PyTorch only after ``torch.set_flush_denormal(True)``).

``all_finite(grads)`` returns an ``ms.Tensor`` holding a bool scalar, so ``if all_finite(grads):``
works. A backend may provide an optional method ``all_finite(arrays) -> bool`` (``arrays``: a
sequence of its native arrays; true when every element of every array is finite, integer and
bool arrays always being finite) to answer without copying to the host; otherwise each array
is read with ``to_numpy`` and tested with ``numpy.isfinite``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

import msadam
from msadam import registry
from msadam_compat._number_checks import check_positive_int, check_value_type
from msadam_compat.common import Tensor
from msadam_compat.nn.loss_scale import bool_condition, check_assign, host_parameter
from msadam_compat.train.loss_scale_manager import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager

__all__ = [
    "DynamicLossScaleManager",
    "DynamicLossScaler",
    "FixedLossScaleManager",
    "LossScaleManager",
    "LossScaler",
    "StaticLossScaler",
    "all_finite",
]

# MindSpore's Tensor(int, float32) goes through int64/uint64: anything larger cannot be built.
_TENSOR_INT_LIMIT = 2**64
_FLUSHED = (np.dtype(np.float32), np.dtype(np.float64))


def _flush_denormals(array: np.ndarray) -> np.ndarray:
    """Subnormal float32/float64 values replaced by a zero of the same sign (FTZ/DAZ, as MindSpore's graph kernels)."""
    if array.dtype not in _FLUSHED:
        return array
    with np.errstate(all="ignore"):
        return np.asarray(np.where(np.abs(array) < np.finfo(array.dtype).tiny, array * 0, array))


def _multiply_host(array: np.ndarray | np.generic, factor: np.float32) -> Any:
    """``array * cast(factor, array.dtype)`` in NumPy, denormals flushed (module docstring), silently (MindSpore
    never warns on inf/NaN)."""
    with np.errstate(all="ignore"):
        typed = np.asarray(factor).astype(array.dtype)
        result = _flush_denormals(np.asarray(_flush_denormals(np.asarray(array)) * typed))
    return result if isinstance(array, np.ndarray) else result[()]  # a NumPy scalar stays a scalar


def _multiply(value: Any, factor: np.float32) -> Any:
    """One leaf of ``scale``/``unscale``: ``value * cast(factor, value.dtype)`` (amp.py lines 99-104)."""
    if isinstance(value, msadam.Tensor | msadam.Parameter):
        return Tensor(_multiply_host(value.asnumpy(), factor))
    if isinstance(value, np.ndarray | np.generic):
        return _multiply_host(value, factor)
    backend = registry.backend_for_array(value)
    if backend is None:
        # amp.py line 104 reads grad.dtype: a Python number fails there (AttributeError in MindSpore too).
        raise AttributeError(f"'{type(value).__name__}' object has no attribute 'dtype': loss scalers scale and "
                             f"unscale arrays (or tuples/lists/dicts of them).")
    dtype = backend.dtype(value)
    with np.errstate(all="ignore"):
        typed = np.asarray(factor).astype(dtype)
    result: Any = None
    with contextlib.suppress(TypeError):  # e.g. mindspore.Tensor takes Python numbers, not NumPy scalars
        result = value * typed[()]  # a NumPy scalar of the array's dtype: no promotion in any framework
    if result is None or not backend.owns(result):
        result = value * backend.from_numpy(typed)
    if not backend.owns(result) or backend.dtype(result) != dtype:
        raise TypeError(f"Scaling a {backend.name} array of dtype {dtype} gave {type(result).__name__} of dtype "
                        f"{getattr(result, 'dtype', '?')}: the backend's '*' does not keep the dtype.")
    return result


def _map(function: Callable[[Any], Any], inputs: Any) -> Any:
    """``ops.HyperMap``: ``function`` on every leaf of nested tuples, lists and dicts, keeping the structure."""
    if isinstance(inputs, tuple):
        return tuple(_map(function, item) for item in inputs)
    if isinstance(inputs, list):
        return [_map(function, item) for item in inputs]
    if isinstance(inputs, dict):
        return {key: _map(function, item) for key, item in inputs.items()}
    return function(inputs)


def _scale_of(scale_value: Any) -> np.float32:
    """The float32 loss scale held by a Parameter, Tensor or number."""
    host = scale_value.asnumpy() if isinstance(scale_value, msadam.Tensor | msadam.Parameter) else scale_value
    with np.errstate(over="ignore"):
        return np.float32(np.asarray(host, dtype=np.float32).reshape(()))


def _grad_scale_map(scale_value: Any, inputs: Any) -> Any:
    """``inputs * scale_value``, leaf by leaf in each leaf's dtype (amp.py ``_grad_scale_map``, line 108)."""
    factor = _scale_of(scale_value)
    return _map(lambda grad: _multiply(grad, factor), inputs)


def _grad_unscale_map(scale_value: Any, inputs: Any) -> Any:
    """``inputs * fl32(1 / scale_value)``, leaf by leaf (amp.py ``_grad_unscale_map``, line 113: ``ops.Reciprocal``
    in float32, then cast to each leaf's dtype)."""
    with np.errstate(all="ignore"):
        reciprocal = np.asarray(np.float32(1.0) / _scale_of(scale_value), np.float32)
    factor = np.float32(_flush_denormals(reciprocal))  # FTZ: 0 for a scale above 2**126, as in MindSpore's graph
    return _map(lambda grad: _multiply(grad, factor), inputs)


def _check_scale_value(scale_value: Any) -> Any:
    # amp.py lines 299-301 (and 387-389): type, then `< 1.0` — so NaN and inf pass, as in MindSpore.
    scale_value = check_value_type("scale_value", scale_value, [float, int])
    if scale_value < 1.0:
        raise ValueError(f"The argument 'scale_value' must be > 1, but got {scale_value}")
    if isinstance(scale_value, int) and scale_value >= _TENSOR_INT_LIMIT:
        raise RuntimeError("Cannot construct Tensor because of unsupported data type: 0.")
    return scale_value


class LossScaler(ABC):
    """``mindspore.amp.LossScaler``: the abstract base; subclasses implement ``scale``, ``unscale`` and ``adjust``.

    A custom scaler can use ``msadam_compat.amp._grad_scale_map(scale_value, inputs)`` and
    ``_grad_unscale_map`` as MindSpore's documented example does.
    """

    @abstractmethod
    def scale(self, inputs: Any) -> Any:
        """Scale ``inputs`` (an array or a tuple of arrays) by ``scale_value``."""
        raise NotImplementedError

    @abstractmethod
    def unscale(self, inputs: Any) -> Any:
        """Unscale ``inputs`` by ``scale_value``."""
        raise NotImplementedError

    @abstractmethod
    def adjust(self, grads_finite: Any) -> Any:
        """Adjust ``scale_value`` from a scalar bool Tensor saying whether the gradients are finite."""
        raise NotImplementedError


class StaticLossScaler(LossScaler):
    """``mindspore.amp.StaticLossScaler(scale_value)``: scale and unscale by a fixed constant.

    ``scale_value`` must be a ``float`` or ``int`` (not ``bool``: ``TypeError``) and not ``< 1.0``
    (``ValueError``; NaN and inf pass, as in MindSpore). It is kept as a float32 ``Parameter``
    named ``"scale_value"``. ``adjust`` returns ``False`` and changes nothing.
    """

    def __init__(self, scale_value: float | int) -> None:
        scale_value = _check_scale_value(scale_value)
        self.scale_value = host_parameter(scale_value, np.float32, "scale_value")

    def scale(self, inputs: Any) -> Any:
        """``inputs * cast(scale_value, dtype)``, leaf by leaf (see the module docstring)."""
        return _grad_scale_map(self.scale_value, inputs)

    def unscale(self, inputs: Any) -> Any:
        """``inputs * cast(fl32(1 / scale_value), dtype)``, leaf by leaf."""
        return _grad_unscale_map(self.scale_value, inputs)

    def adjust(self, grads_finite: Any) -> bool:
        """The scale is fixed: returns ``False`` (``grads_finite`` is not even looked at)."""
        return False


class DynamicLossScaler(LossScaler):
    r"""``mindspore.amp.DynamicLossScaler(scale_value, scale_factor, scale_window)``.

    Checks, in MindSpore's order (amp.py line 386): ``scale_value`` as
    [`StaticLossScaler`][msadam_compat.amp.StaticLossScaler]; then ``scale_window``, then ``scale_factor``, each a
    positive ``int`` (``TypeError`` / ``ValueError``). State: ``scale_value`` (float32 Parameter ``"scale_value"``),
    ``counter`` (int32 Parameter ``"counter"``, from 0), ``scale_factor`` and ``scale_window`` (ints).

    ``adjust(grads_finite)`` (amp.py line 421), all in float32 with ``s`` the scale, ``f`` the
    factor, ``w`` the window and ``c`` the counter:

    ```text
    s = s * f            if finite and c == w - 1 and s * f is finite
    s = s                if finite otherwise
    s = max(1, s / f)    if not finite
    c = ((c + 1) % w) * finite
    ```

    and returns ``True``. ``grads_finite`` must be a bool tensor of shape ``()`` (what
    [`all_finite`][msadam_compat.amp.all_finite] returns): a Python ``bool`` or a non-bool dtype is a ``TypeError`` and
    a shape ``(1,)`` a ``RuntimeError``, as in MindSpore.
    """

    def __init__(self, scale_value: float | int, scale_factor: int, scale_window: int) -> None:
        scale_value = _check_scale_value(scale_value)
        self.scale_value = host_parameter(scale_value, np.float32, "scale_value")
        self.scale_window = check_positive_int(scale_window, "scale_window")  # amp.py line 391: window first
        self.scale_factor = check_positive_int(scale_factor, "scale_factor")
        self.counter = host_parameter(0, np.int32, "counter")

    def scale(self, inputs: Any) -> Any:
        """``inputs * cast(scale_value, dtype)``, leaf by leaf (see the module docstring)."""
        return _grad_scale_map(self.scale_value, inputs)

    def unscale(self, inputs: Any) -> Any:
        """``inputs * cast(fl32(1 / scale_value), dtype)``, leaf by leaf."""
        return _grad_unscale_map(self.scale_value, inputs)

    def adjust(self, grads_finite: Any) -> bool:
        """Grow the scale after ``scale_window`` finite steps in a row, shrink it on a non-finite one."""
        finite = bool_condition(grads_finite)
        scale = self.scale_value.asnumpy()
        counter = self.counter.asnumpy()
        one = np.float32(1.0)
        with np.errstate(all="ignore"):
            # Tensor(float32) op Python int: MindSpore converts the int to float32 first (so 3.0 * 16777217
            # is 3.0 * 16777216.0 in float32).
            factor = np.float32(self.scale_factor)
            scale_mul_factor = scale * factor  # amp.py line 422
            new_scale = np.where(
                finite,
                np.where(counter == (self.scale_window - 1),
                         np.where(np.isfinite(scale_mul_factor), scale_mul_factor, scale),
                         scale),
                np.maximum(one, scale / factor))
            new_scale = np.asarray(new_scale, np.float32)
            new_counter = np.asarray(((counter + 1) % self.scale_window) * finite, np.int32)  # amp.py line 433
        check_assign("scale_value", scale.shape, new_scale)
        check_assign("counter", counter.shape, new_counter)
        self.scale_value.set_data(new_scale)
        self.counter.set_data(new_counter)
        return True


def _finite_groups(inputs: Any) -> list[tuple[Any, list[Any]]]:
    """The leaves of ``inputs`` grouped by backend (``None``: host NumPy arrays), checked as MindSpore does."""
    if not isinstance(inputs, tuple | list):
        # amp.py line 144: ops.addn of a single Tensor's result fails to compile.
        raise TypeError(f"Failed calling AddN with \"x={type(inputs).__name__}\". The valid calling should be: "
                        f"\"x=<list of tensor, tuple of Tensor>\" (all_finite takes a tuple or list of Tensors).")
    if not inputs:
        raise ValueError("For primitive[AddN], the concat element num must be greater than or equal to 1, but got 0.")
    groups: dict[str | None, tuple[Any, list[Any]]] = {}
    for item in inputs:
        backend: Any = None
        if isinstance(item, msadam.Parameter):
            backend, item = registry.load_backend(item.backend), item.data
        elif isinstance(item, msadam.Tensor):
            item = item.asnumpy()
        elif not isinstance(item, np.ndarray | np.generic):
            backend = registry.backend_for_array(item)
            if backend is None:  # a nested tuple, a number...: AddN/IsFinite refuse it in MindSpore
                raise TypeError(f"Failed calling AddN: all_finite takes a flat tuple or list of Tensors, but got an "
                                f"element of type {type(item).__name__}.")
        key = None if backend is None else backend.name
        groups.setdefault(key, (backend, []))[1].append(item)
    return list(groups.values())


def all_finite(inputs: tuple[Any, ...] | list[Any]) -> Tensor:
    """``mindspore.amp.all_finite(inputs)``: a bool scalar ``Tensor``, true when every element of every array is finite.

    ``inputs`` is a flat ``tuple`` or ``list`` of arrays of any backends (a single array is a
    ``TypeError`` and an empty tuple a ``ValueError``, as in MindSpore). Integer arrays are finite.
    """
    for backend, arrays in _finite_groups(inputs):
        check = getattr(backend, "all_finite", None)
        if check is not None:
            finite = bool(check(arrays))
        else:
            read = (lambda array: array) if backend is None else backend.to_numpy
            finite = all(bool(np.isfinite(np.asarray(read(array))).all()) for array in arrays)
        if not finite:
            return Tensor(np.asarray(False))
    return Tensor(np.asarray(True))
