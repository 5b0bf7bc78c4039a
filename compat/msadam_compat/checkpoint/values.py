"""What ``save_checkpoint`` saves: ``save_obj`` and ``append_dict`` turned into ``{name: array or str}``.

MindSpore 2.10 accepts (``_convert_save_obj_to_param_list`` and helpers,
``mindspore/train/serialization.py`` lines 867-1017):

* a ``Cell`` — here anything with a ``parameters_dict()`` method (``ms.nn.Adam``): every Parameter
  under its name, in that order;
* a list of ``Parameter`` (``cell.trainable_params()``), or a list of ``{"name": str, "data": Tensor}``
  dicts (chosen by the type of the *first* element, line 872);
* a dict ``{name: Parameter | str | numpy array}`` (what ``load_checkpoint`` returns).

``choice_func(name)`` keeps an entry when true. ``append_dict`` values (int, float, bool, str,
Parameter, Tensor — line 1027) are appended after them, converted as ``Tensor(value)`` converts:
int -> int64, float -> float32, bool -> bool; ``"__exception_save__"`` is a flag, not saved
(lines 731-752). A name saved twice keeps its first position and its last value (line 759).

msadam additions: a value may also be a native array of any installed msadam backend (a
``torch.Tensor``, ``jax.Array``, ``tf.Variable``, ...) or a NumPy array, converted through the
owning backend's ``to_numpy`` (found by :func:`msadam.registry.backend_for_array`, no framework
imported). A dict value MindSpore 2.10 mishandles — a plain ``Tensor`` is dropped, or the previous
entry saved twice, or ``UnboundLocalError`` when it comes first (lines 905-912) — is saved here, and
an unsupported one is a ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import msadam
from msadam import registry

__all__ = ["EXCEPTION_SAVE_KEY", "append_values", "is_cell", "merged", "net_parameters", "save_values", "to_host"]

#: serialization.py lines 731 and 743-744: a key of ``append_dict`` that is a flag and is never saved.
EXCEPTION_SAVE_KEY = "__exception_save__"

Value = np.ndarray | str


def to_host(value: Any) -> np.ndarray | None:
    """A NumPy array of a Parameter, Tensor, NumPy array or native array of an msadam backend, else ``None``."""
    if isinstance(value, msadam.Parameter | msadam.Tensor):
        return value.asnumpy()
    if isinstance(value, np.ndarray):
        return value
    backend = registry.backend_for_array(value)
    if backend is not None:
        return np.asarray(backend.to_numpy(value))
    return None


def is_cell(obj: Any) -> bool:
    """Whether ``obj`` plays a MindSpore ``Cell`` here: it has a callable ``parameters_dict()``."""
    return callable(getattr(obj, "parameters_dict", None))


def net_parameters(net: Any, caller: str = "load_param_into_net") -> list[tuple[str, msadam.Parameter]]:
    """``(name, Parameter)`` of a Cell-like object (``parameters_dict()``) or a Mapping name -> Parameter.

    ``TypeError`` otherwise, as ``load_param_into_net`` rejects a non-Cell (serialization.py line 1743).
    """
    if is_cell(net):
        items = list(net.parameters_dict().items())
    elif isinstance(net, Mapping):
        items = list(net.items())
    else:
        raise TypeError(f"For '{caller}', the argument 'net' should be a Cell, but got {type(net)}.")
    for name, param in items:
        if not isinstance(name, str) or not isinstance(param, msadam.Parameter):
            raise TypeError(f"For '{caller}', the argument 'net' must map names to Parameters, but got "
                            f"{type(name)} and {type(param)}.")
    return items


def _host_or_raise(value: Any, what: str) -> np.ndarray:
    array = to_host(value)
    if array is None:
        raise TypeError(f"For save_checkpoint, {what} should be a Parameter, a Tensor, a NumPy array or an array "
                        f"of an msadam backend, but got {type(value)}.")
    return array


def _from_list(save_obj: list[Any], choice_func: Callable[[str], Any] | None) -> list[tuple[str, Value]]:
    """``_convert_list_to_param_list`` (lines 867-898)."""
    values: list[tuple[str, Value]] = []
    if not save_obj:
        return values
    if isinstance(save_obj[0], dict):
        for item in save_obj:
            if not (isinstance(item, dict) and "name" in item and "data" in item):
                raise TypeError(f"For save_checkpoint, save_obj should be a list of dict items, and the dict should "
                                f"have key values 'name' and 'value', but got {type(item)} and {item}.")
            if not isinstance(item["name"], str):
                raise TypeError(f"For save_checkpoint, when save_obj is a list of dict items, the name in dict "
                                f"should be string, but got {type(item['name'])}.")
            array = _host_or_raise(item["data"], "when save_obj is a list of dict items, the data in dict")
            if choice_func is not None and not choice_func(item["name"]):
                continue
            values.append((item["name"], array))
        return values
    for param in save_obj:
        if not isinstance(param, msadam.Parameter):
            raise TypeError(f"For save_checkpoint, when save_obj is made up by list of Parameter,the param should "
                            f"be parameter, but got {type(param)}")
        if choice_func is not None and not choice_func(param.name):
            continue
        values.append((param.name, param.asnumpy()))
    return values


def _from_dict(save_obj: dict[Any, Any], choice_func: Callable[[str], Any] | None) -> list[tuple[str, Value]]:
    """``_convert_dict_to_param_dict`` (lines 901-917)."""
    values: list[tuple[str, Value]] = []
    for key, value in save_obj.items():
        if not isinstance(key, str):
            raise TypeError(f"For save_checkpoint, when save_obj is made up by dict, the key should be str and"
                            f"value should be Parameter, but got the type of key is {type(key)} and"
                            f"the type of value is {type(value)}")
        if choice_func is not None and not choice_func(key):
            continue
        if isinstance(value, str):
            values.append((key, value))
        else:
            values.append((key, _host_or_raise(value, "when save_obj is made up by dict, the value")))
    return values


def _from_cell(save_obj: Any, choice_func: Callable[[str], Any] | None) -> list[tuple[str, Value]]:
    """``_convert_cell_param_and_names_to_dict`` (lines 920-938): every Parameter by name.

    The values of ``parameters_dict()`` may be msadam Parameters or native arrays of a backend.
    """
    values: list[tuple[str, Value]] = []
    for name, param in save_obj.parameters_dict().items():
        if not isinstance(name, str):
            raise TypeError(f"For save_checkpoint, the names of 'save_obj.parameters_dict()' must be str, but got "
                            f"{type(name)}.")
        if choice_func is not None and not choice_func(name):
            continue
        values.append((name, _host_or_raise(param, "each value of 'save_obj.parameters_dict()'")))
    return values


def save_values(save_obj: Any, choice_func: Callable[[str], Any] | None) -> list[tuple[str, Value]]:
    """``(name, array or str)`` of ``save_obj`` (a Cell-like object, a list or a dict), filtered by ``choice_func``."""
    if isinstance(save_obj, list):
        return _from_list(save_obj, choice_func)
    if isinstance(save_obj, dict):
        return _from_dict(save_obj, choice_func)
    return _from_cell(save_obj, choice_func)


def append_values(append_dict: Mapping[str, Any] | None) -> list[tuple[str, Value]]:
    """``append_dict`` as ``(name, array or str)``, converted as ``mindspore.Tensor(value)`` does (lines 745-752)."""
    values: list[tuple[str, Value]] = []
    for key, value in (append_dict or {}).items():
        if key == EXCEPTION_SAVE_KEY:
            continue
        if isinstance(value, str):
            values.append((key, value))
        elif isinstance(value, bool):
            values.append((key, np.array(value, dtype=np.bool_)))
        elif isinstance(value, int):
            values.append((key, np.array(value, dtype=np.int64)))
        elif isinstance(value, float):
            values.append((key, np.array(value, dtype=np.float32)))
        else:
            values.append((key, _host_or_raise(value, "a value of 'append_dict'")))
    return values


def merged(*parts: list[tuple[str, Value]]) -> dict[str, Value]:
    """The entries in order; a repeated name keeps its first position and its last value (line 759)."""
    result: dict[str, Value] = {}
    for part in parts:
        for name, value in part:
            result[name] = value
    return result
