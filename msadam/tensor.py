"""MindSpore-shaped value types: ``Tensor``, ``Parameter`` and ``RowTensor``.

A :class:`Parameter` holds one *native* array of one backend (a ``numpy.ndarray`` for the NumPy
backend, a ``torch.Tensor`` for PyTorch, ...). A :class:`Tensor` is a small host value (NumPy) used
for learning rates and other hyper-parameters, as MindSpore uses ``Tensor`` for them. A
:class:`RowTensor` is MindSpore's row-sparse gradient: ``dense[indices[i]] += values[i]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from msadam.backend import Backend

__all__ = ["Parameter", "RowTensor", "Tensor"]


def _host_array(value: Any, dtype: Any = None) -> np.ndarray:
    """Convert a Python number, sequence, NumPy array or Tensor to a NumPy array.

    Python floats become float32 and Python ints int32, as ``mindspore.Tensor`` does.
    """
    if isinstance(value, Tensor):
        array = value.asnumpy()
    elif isinstance(value, bool):
        array = np.asarray(value)
    elif isinstance(value, float):
        array = np.asarray(value, dtype=np.float32)
    elif isinstance(value, int):
        array = np.asarray(value, dtype=np.int32)
    else:
        array = np.asarray(value)
        if array.dtype == np.float64 and not isinstance(value, np.ndarray | np.generic):
            array = array.astype(np.float32)  # lists of Python floats, as MindSpore
    if dtype is not None:
        array = array.astype(np.dtype(dtype))
    return array


class Tensor:
    """A host tensor (NumPy-backed), as ``mindspore.Tensor`` is used for hyper-parameters.

    ``Tensor(0.1)`` is a float32 scalar; ``Tensor([0.1, 0.01])`` a float32 vector.
    """

    __array_priority__ = 100

    def __init__(self, input_data: Any, dtype: Any = None) -> None:
        self._array = np.array(_host_array(input_data, dtype), copy=True)

    def asnumpy(self) -> np.ndarray:
        """A copy of the value as a NumPy array."""
        return self._array.copy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def ndim(self) -> int:
        return int(self._array.ndim)

    @property
    def size(self) -> int:
        return int(self._array.size)

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    def reshape(self, *shape: Any) -> Tensor:
        return Tensor(self._array.reshape(*shape))

    def __float__(self) -> float:
        return float(self._array)

    def __repr__(self) -> str:
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype}, value={self._array!r})"


# mindspore/common/parameter.py: an unnamed Parameter is called "Parameter#<n>" (a process-wide
# counter); an optimizer renames such parameters "Parameter$<k>" (Cell._set_attr_for_param_or_param_tuple).
GENERATED_NAME_PREFIX = "Parameter#"
_generated_names = itertools.count()


class Parameter:
    """A named, trainable array of one backend, as ``mindspore.Parameter``.

    Built from a NumPy array, a Python number or a [`Tensor`][msadam.Tensor], it takes the current backend
    ([`msadam.get_backend`][msadam.get_backend]); built from a native array (``torch.Tensor``, ``jax.Array``,
    ``tf.Variable``) it takes that array's backend. Like MindSpore, construction copies host input.

    Args:
        default_input: the initial value.
        name: the parameter's name (drives the ``beta``/``gamma`` decay filter and state names).
            Unnamed, it is ``"Parameter#<n>"``, and an optimizer renames it ``"Parameter$<k>"``, as in MindSpore.
        requires_grad: kept for MindSpore compatibility.
        backend: an explicit backend name, overriding inference (an msadam addition).
    """

    def __init__(
        self,
        default_input: Any,
        name: str | None = None,
        requires_grad: bool = True,
        *,
        backend: str | None = None,
    ) -> None:
        from msadam import registry  # a late import: registry imports this module

        if name is not None and not isinstance(name, str):
            raise TypeError(f"For 'Parameter', the argument 'name' must be str or None, but got {type(name)}.")
        self.name = f"{GENERATED_NAME_PREFIX}{next(_generated_names)}" if name is None else name
        self.requires_grad = bool(requires_grad)
        self.unique = False
        if isinstance(default_input, Parameter):
            default_input = default_input.data
        native_backend = None if backend is not None else registry.backend_for_array(default_input)
        if native_backend is not None:
            self._backend = native_backend
            adopt = getattr(native_backend, "adopt", None)  # optional: unwrap e.g. a Keras variable
            self._data = default_input if adopt is None else adopt(default_input)
        else:
            self._backend = registry.load_backend(backend) if backend else registry.current_backend()
            self._data = self._backend.from_numpy(_host_array(default_input))

    @classmethod
    def _wrap(cls, backend: Backend, data: Any, name: str) -> Parameter:
        """Wrap an existing native array without copying or inferring (internal)."""
        param = cls.__new__(cls)
        param.name, param.requires_grad, param.unique = name, True, False
        param._backend, param._data = backend, data
        return param

    @property
    def data(self) -> Any:
        """The native array."""
        return self._data

    def set_data(self, data: Any) -> Parameter:
        """Replace the value (same shape and dtype), as ``mindspore.Parameter.set_data``."""
        if isinstance(data, Parameter | Tensor):
            data = data.asnumpy()
        if not self._backend.owns(data):
            data = self._backend.from_numpy(_host_array(data))
        if self._backend.shape(data) != self.shape:
            raise ValueError(
                f"For 'Parameter.set_data', the shape of '{self.name}' is {self.shape}, but got "
                f"{self._backend.shape(data)}."
            )
        self._data = self._backend.assign(self._data, self._backend.cast(data, self.dtype))
        return self

    @property
    def backend(self) -> str:
        """The name of the backend that owns the array."""
        return self._backend.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._backend.shape(self._data)

    @property
    def dtype(self) -> np.dtype:
        return self._backend.dtype(self._data)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def asnumpy(self) -> np.ndarray:
        """A copy of the value as a NumPy array."""
        return np.array(self._backend.to_numpy(self._data), copy=True)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self._backend.to_numpy(self._data)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={list(self.shape)}, dtype={self.dtype}, backend={self.backend})"


class RowTensor:
    """A row-sparse gradient, as ``mindspore.RowTensor``.

    The dense gradient it stands for is ``zeros(dense_shape)`` with ``values[i]`` added to row
    ``indices[i]`` (repeated indices add up). ``indices`` and ``values`` may be NumPy arrays or
    native arrays of the parameter's backend.
    """

    def __init__(self, indices: Any, values: Any, dense_shape: Sequence[int]) -> None:
        if isinstance(indices, Tensor):
            indices = indices.asnumpy()
        if isinstance(values, Tensor):
            values = values.asnumpy()
        if not isinstance(dense_shape, Sequence) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) for d in dense_shape
        ):
            raise TypeError(f"For 'RowTensor', 'dense_shape' must be a tuple of int, but got {dense_shape!r}.")
        self.indices = indices
        self.values = values
        self.dense_shape = tuple(int(d) for d in dense_shape)

    def __repr__(self) -> str:
        return f"RowTensor(dense_shape={self.dense_shape})"
