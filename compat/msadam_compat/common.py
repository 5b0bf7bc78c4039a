"""``ms.Tensor``, ``ms.Parameter`` and ``ms.ParameterTuple`` with MindSpore 2.10's signatures.

They are :class:`msadam.Tensor` and :class:`msadam.Parameter` (so every msadam API takes them),
with the arguments and small behaviours a training script touches: ``Tensor(x, ms.float32)``,
``bool(t)``, ``t.asnumpy()``, ``Parameter(..., layerwise_parallel=False)``, ``ParameterTuple``'s
name checks and ``clone``. A ``Parameter`` built from a framework's array (``torch.Tensor``,
``jax.Array``, ``tf.Variable``) keeps that array and its backend, as :class:`msadam.Parameter` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

import msadam
from msadam_compat import dtype  # mindspore.common.dtype: a submodule of mindspore.common
from msadam_compat.dtype import to_numpy_dtype

__all__ = ["Parameter", "ParameterTuple", "Tensor", "dtype"]


class Tensor(msadam.Tensor):
    """``mindspore.Tensor(input_data=None, dtype=None, shape=None, init=None, const_arg=False, device=None)``.

    A host (NumPy) tensor. ``input_data`` and ``dtype`` are as in MindSpore (Python floats become
    float32, ints int64); ``shape`` alone makes a zero tensor of that shape (``init`` is not
    supported: there is no deferred initialization here). ``bool(t)``, ``int(t)``, ``float(t)``
    and ``t.item()`` need exactly one element, as in MindSpore.
    """

    def __init__(self, input_data: Any = None, dtype: Any = None, shape: Any = None, init: Any = None,
                 const_arg: bool = False, device: Any = None) -> None:
        if init is not None:
            raise NotImplementedError("msadam_compat.Tensor has no deferred initialization (init=); pass the data.")
        if input_data is None:
            if shape is None or dtype is None:
                # mindspore/common/tensor.py _check_tensor_input: data, or dtype and shape, must be given.
                raise ValueError("For 'Tensor', 'input_data' cannot be None unless 'dtype' and 'shape' are given.")
            input_data = np.zeros(tuple(np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape,
                                  dtype=to_numpy_dtype(dtype))
        elif shape is not None and tuple(np.shape(np.asarray(input_data))) != tuple(np.atleast_1d(shape)):
            raise ValueError(f"For 'Tensor', the shape of 'input_data' {np.shape(np.asarray(input_data))} does not "
                             f"match 'shape' {shape}.")
        if isinstance(input_data, int) and not isinstance(input_data, bool):
            # MindSpore 2.10 makes a Python int int64 (msadam's host Tensor keeps int32 for hyper-parameters).
            input_data = np.asarray(input_data, dtype=np.int64)
        super().__init__(input_data, None if dtype is None else to_numpy_dtype(dtype))
        self.const_arg = bool(const_arg)

    def _single(self, what: str) -> Any:
        if self.size != 1:
            raise ValueError(f"The truth value of a Tensor with {self.size} elements is ambiguous; {what} needs one "
                             f"element.")
        return self._array.reshape(()).item()

    def __bool__(self) -> bool:
        return bool(self._single("bool()"))

    def __int__(self) -> int:
        return int(self._single("int()"))

    def __float__(self) -> float:
        return float(self._single("float()"))

    def item(self) -> Any:
        """The single element as a Python number."""
        return self._single("item()")

    def astype(self, dtype: Any) -> Tensor:
        """A copy with another dtype (``ms.float16``, ``np.float32``, ``"int32"``, ...)."""
        return Tensor(self._array.astype(to_numpy_dtype(dtype)))

    def reshape(self, *shape: Any) -> Tensor:
        return Tensor(self._array.reshape(*shape))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Tensor.")
        return int(self.shape[0])

    def __getitem__(self, index: Any) -> Tensor:
        return Tensor(np.asarray(self._array[index]))

    def __eq__(self, other: object) -> Any:
        if isinstance(other, msadam.Tensor):
            return Tensor(self._array == other.asnumpy())
        if isinstance(other, int | float | bool | np.ndarray | np.generic):
            return Tensor(self._array == other)
        return NotImplemented

    __hash__ = object.__hash__  # identity, as mindspore.Tensor


class Parameter(msadam.Parameter):
    """``mindspore.Parameter(default_input, name=None, requires_grad=True, layerwise_parallel=False,
    parallel_optimizer=True, storage_format='', device=None)``.

    ``layerwise_parallel``, ``parallel_optimizer``, ``storage_format`` and ``device`` are kept
    as attributes (they describe MindSpore's distributed layout; there is none here).
    ``backend=`` (keyword only) is msadam's: which backend holds a NumPy/number input.
    """

    def __init__(self, default_input: Any, name: str | None = None, requires_grad: bool = True,
                 layerwise_parallel: bool = False, parallel_optimizer: bool = True, storage_format: str = "",
                 device: Any = None, *, backend: str | None = None) -> None:
        super().__init__(default_input, name=name, requires_grad=requires_grad, backend=backend)
        self.layerwise_parallel = layerwise_parallel
        self.parallel_optimizer = parallel_optimizer
        self.storage_format = storage_format
        self.device = device

    def _single(self, what: str) -> Any:
        value = self.asnumpy()
        if value.size != 1:
            raise ValueError(f"Parameter {self.name!r} has {value.size} elements; {what} needs one.")
        return value.reshape(()).item()

    def __bool__(self) -> bool:
        return bool(self._single("bool()"))

    def __int__(self) -> int:  # mindspore.Parameter is a Tensor: int(param_dict["step_num"]) works
        return int(self._single("int()"))

    def __float__(self) -> float:
        return float(self._single("float()"))

    def item(self) -> Any:
        """The single element as a Python number."""
        return self._single("item()")

    def clone(self, init: Any = "same") -> Parameter:
        """A new Parameter of the same name, backend, shape and dtype.

        ``init``: ``'same'`` copies the value, ``'zeros'``/``'ones'`` fill, a number or Tensor sets it.
        """
        if isinstance(init, str):
            fills = {"same": None, "zeros": 0, "ones": 1}
            if init not in fills:
                raise ValueError(f"For 'Parameter.clone', init must be 'same', 'zeros', 'ones', a number or a Tensor, "
                                 f"but got {init!r}.")
            value = self.asnumpy() if init == "same" else np.full(self.shape, fills[init], self.dtype)
        else:
            value = np.broadcast_to(np.asarray(init, dtype=self.dtype), self.shape).copy()
        return Parameter(value, name=self.name, requires_grad=self.requires_grad,
                         layerwise_parallel=self.layerwise_parallel, parallel_optimizer=self.parallel_optimizer,
                         backend=self.backend)


class ParameterTuple(tuple[Any, ...]):
    """``mindspore.ParameterTuple``: a tuple of Parameters with unique names.

    A non-Parameter element is a ``TypeError``; two different Parameters with one name a
    ``ValueError`` (the same object twice is allowed), as in mindspore/common/parameter.py.
    """

    def __new__(cls, iterable: Iterable[Any]) -> ParameterTuple:
        data = tuple(iterable)
        ids: set[int] = set()
        names: set[str] = set()
        for item in data:
            if not isinstance(item, msadam.Parameter):
                raise TypeError(f"For ParameterTuple initialization, ParameterTuple input should be 'Parameter' "
                                f"collection, but got a {type(iterable)}. ")
            if id(item) not in ids:
                if item.name in names:
                    raise ValueError(f"The value {item} , its name '{item.name}' already exists. Please set a unique "
                                     f"name for the parameter.")
                names.add(item.name)
                ids.add(id(item))
        return tuple.__new__(cls, data)

    def clone(self, prefix: str, init: Any = "same") -> ParameterTuple:
        """Clones named ``<prefix>.<name>`` (``prefix`` must match MindSpore's name pattern, else ``ValueError``)."""
        # mindspore/_checkparam.py check_str_by_regular: the default name pattern, ASCII.
        if re.match(r"^\w+[0-9a-zA-Z\_\.]*$", prefix, re.ASCII) is None:
            raise ValueError(f"The '{prefix}' is illegal, it must be match regular'^\\w+[0-9a-zA-Z\\_\\.]*$'.")
        clones = []
        for param in self:
            source = param if isinstance(param, Parameter) else Parameter(param.asnumpy(), name=param.name,
                                                                          backend=param.backend)
            twin = source.clone(init)
            twin.name = f"{prefix}.{param.name}"
            clones.append(twin)
        return ParameterTuple(clones)
