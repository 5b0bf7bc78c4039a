"""``mindspore.nn.FixedLossScaleUpdateCell`` and ``DynamicLossScaleUpdateCell`` (``nn/wrap/loss_scale.py``).

An update cell is what a loss scale manager's ``get_update_cell()`` returns; a training step calls
it as ``cell(loss_scale, overflow)``: it writes the new loss scale into ``loss_scale`` (a float32
``Parameter``) and returns ``overflow`` unchanged. The numbers are MindSpore's float32 ones, bit for bit.

Besides the cells, this module holds the small host-side helpers ``msadam_compat.amp`` shares
(reading a MindSpore-shaped value or any backend's native array as NumPy, and MindSpore's checks
on a boolean condition tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import msadam
from msadam import registry
from msadam_compat.common import Parameter, Tensor

__all__ = ["DynamicLossScaleUpdateCell", "FixedLossScaleUpdateCell"]


def host_value(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array when it is an array of any kind (msadam/compat ``Tensor`` or
    ``Parameter``, NumPy array or scalar, a native array of an msadam backend), else ``None``."""
    if isinstance(value, msadam.Tensor | msadam.Parameter):
        return value.asnumpy()
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    backend = registry.backend_for_array(value)
    return None if backend is None else np.asarray(backend.to_numpy(value))


def bool_condition(value: Any, prim_name: str = "Select") -> np.ndarray:
    """A boolean condition tensor as NumPy, with MindSpore's ``ops.Select`` type checks.

    A Python ``bool`` is a ``TypeError`` (PyNative ``Select`` takes only a Tensor condition, as
    MindSpore 2.10 does), so is a non-bool dtype ("Select CPU operator[Select] fail! Unsupported
    data type!"). The shape is checked by the caller against the state it assigns.
    """
    array = host_value(value)
    if array is None:
        raise TypeError(f"Failed calling {prim_name} with \"{prim_name}()(condition={type(value).__name__}, ...)\". "
                        f"The valid calling should be: \"{prim_name}()(condition=<Tensor>, ...)\".")
    if array.dtype != np.bool_:
        raise TypeError(f"{prim_name} CPU operator[{prim_name}] fail! Unsupported data type! (condition dtype "
                        f"{array.dtype}, expected bool)")
    return array


def check_assign(name: str, target_shape: tuple[int, ...], value: np.ndarray) -> None:
    """``RuntimeError`` unless ``value`` fits ``target_shape``, as ``ops.assign`` raises (e.g. a shape-(1,) condition
    broadcasts the update to rank 1, which a scalar Parameter cannot take)."""
    if value.ndim != len(target_shape):
        raise RuntimeError(f"For 'Assign', the 'x' and 'y' must have the same dimension, but got the dimension of 'x': "
                           f"{len(target_shape)} and the dimension of 'y': {value.ndim} (assigning {name!r}).")
    if tuple(value.shape) != tuple(target_shape):
        raise RuntimeError(f"For 'Assign', the shape of 'x' and 'y' must be the same, but got {target_shape} and "
                           f"{tuple(value.shape)} (assigning {name!r}).")


def host_parameter(value: Any, dtype: Any, name: str) -> Parameter:
    """A host (NumPy-backend) ``Parameter`` named ``name`` holding ``Tensor(value, dtype=dtype)``.

    Optimizer-side state such as a loss scale lives on the host whatever the current backend:
    it is read on every step to build the host scalar that scales the gradients.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.asarray(value).astype(dtype)
    return Parameter(array, name=name, backend="numpy")


class FixedLossScaleUpdateCell:
    """``mindspore.nn.FixedLossScaleUpdateCell(loss_scale_value)``: the loss scale never changes.

    ``cell(loss_scale, overflow)`` ignores ``loss_scale`` and returns ``overflow`` as given
    (any object, as in loss_scale.py ``construct(self, _, overflow)``). ``get_loss_scale()`` is
    ``loss_scale_value``, unvalidated.
    """

    def __init__(self, loss_scale_value: Any) -> None:
        self.loss_scale_value = loss_scale_value

    def get_loss_scale(self) -> Any:
        """The ``loss_scale_value`` given at construction."""
        return self.loss_scale_value

    def construct(self, _: Any, overflow: Any) -> Any:
        """Returns ``overflow``; the loss scale is fixed."""
        return overflow

    def __call__(self, loss_scale: Any, overflow: Any) -> Any:
        return self.construct(loss_scale, overflow)


class DynamicLossScaleUpdateCell:
    r"""``mindspore.nn.DynamicLossScaleUpdateCell(loss_scale_value, scale_factor, scale_window)``.

    State, as MindSpore names it: ``cur_iter`` (Parameter ``current_iterator_step``, int32, starts
    at 1) and ``last_overflow_iter`` (Parameter ``last_overflow_iterator_step``, int32, starts at 0);
    ``scale_factor`` is ``Tensor(scale_factor, float32)``, ``scale_window`` ``Tensor(scale_window,
    int32)`` (a float window truncates; nothing is validated here — the managers validate).

    ``cell(loss_scale, overflow)`` with ``s`` the float32 ``loss_scale`` Parameter, ``f`` the
    float32 factor, ``w`` the window, ``c`` ``cur_iter`` and ``l`` ``last_overflow_iter``:

    ```text
    s_new = max(s * float32(1 / f), 1) if overflow else s
    inc = w <= c - l
    l = c if overflow or inc else l
    s = s_new * f if inc and not overflow else s_new
    c = c + 1
    ```

    Quirks kept (loss_scale.py ``construct``, line 182): the decrease multiplies by the float32
    reciprocal of ``f`` (``s * (1/f)``, not ``s / f``: they differ in the last bit for ``f = 3``);
    the increase is not checked for overflow (the scale can become ``inf``, unlike
    [`msadam_compat.amp.DynamicLossScaler`][msadam_compat.amp.DynamicLossScaler]); ``get_loss_scale()`` returns the
    initial ``loss_scale_value`` forever, not the current scale. ``overflow`` must be a bool Tensor
    (a Python ``bool`` is a ``TypeError``, as in MindSpore's PyNative mode), returned as given;
    ``loss_scale`` must be a float32 ``Parameter`` (or ``Tensor``, written in place).
    """

    def __init__(self, loss_scale_value: Any, scale_factor: Any, scale_window: Any) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            self.scale_window = Tensor(np.asarray(scale_window).astype(np.int32))
            self.scale_factor = Tensor(np.asarray(scale_factor).astype(np.float32))
        self.loss_scale_value = loss_scale_value
        self.cur_iter = host_parameter(1, np.int32, "current_iterator_step")
        self.last_overflow_iter = host_parameter(0, np.int32, "last_overflow_iterator_step")
        self.minimum_loss_scale = Tensor(np.float32(1.0))

    def get_loss_scale(self) -> Any:
        """The ``loss_scale_value`` given at construction (never the updated scale, as in MindSpore)."""
        return self.loss_scale_value

    def construct(self, loss_scale: Any, overflow: Any) -> Any:
        """Update ``loss_scale`` in place by MindSpore's rule (class docstring); returns ``overflow``."""
        if isinstance(loss_scale, msadam.Parameter):
            scale = loss_scale.asnumpy()
        elif isinstance(loss_scale, msadam.Tensor):
            scale = np.asarray(loss_scale)
        else:
            raise TypeError(f"For 'Assign', the 'variable' must be a Parameter or Tensor, but got "
                            f"{type(loss_scale).__name__}.")
        if scale.dtype != np.float32:
            # ops.assign into a float32 result: MindSpore refuses to convert a Parameter's dtype.
            raise TypeError(f"Data type conversion is not supported for a 'Parameter', nor for the input tensor of an "
                            f"in-place operator, so data type {scale.dtype}, which cannot be converted to data type "
                            f"float32 automatically.")
        cond = bool_condition(overflow)
        factor = np.asarray(self.scale_factor)
        window = np.asarray(self.scale_window)
        cur = self.cur_iter.asnumpy()
        last = self.last_overflow_iter.asnumpy()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # loss_scale.py line 183: select(overflow, max(loss_scale * reciprocal(scale_factor), 1), loss_scale)
            on_overflow = np.where(cond, np.maximum(scale * (np.float32(1.0) / factor), np.float32(1.0)), scale)
            should_inc = window <= cur - last  # line 185: less_equal(scale_window, cur_iter - last_overflow_iter)
            new_last = np.asarray(np.where(cond | should_inc, cur, last), np.int32)  # lines 186-187
            update_scale = should_inc & ~cond  # line 189
            new_scale = np.asarray(np.where(update_scale, on_overflow * factor, on_overflow), np.float32)  # 190-191
            new_cur = np.asarray(cur + np.int32(1), np.int32)
        # Shapes are checked before anything is written: a failed call changes no state.
        check_assign(self.last_overflow_iter.name, cur.shape, new_last)
        check_assign("loss_scale", scale.shape, new_scale)
        self.last_overflow_iter.set_data(new_last)
        if isinstance(loss_scale, msadam.Parameter):
            loss_scale.set_data(new_scale)
        else:
            np.copyto(np.asarray(loss_scale), new_scale)  # a Tensor's own buffer (MindSpore assigns Tensors too)
        self.cur_iter.set_data(new_cur)
        return overflow

    def __call__(self, loss_scale: Any, overflow: Any) -> Any:
        return self.construct(loss_scale, overflow)
