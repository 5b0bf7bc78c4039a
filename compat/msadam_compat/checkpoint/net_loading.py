"""``load_param_into_net``'s matching and checks, planned in full before anything is written.

MindSpore 2.10 (``load_param_into_net``, ``mindspore/train/serialization.py`` lines 1771-1863,
``_update_param`` lines 276-323, ``_load_dismatch_prefix_params`` lines 1930-1955):

* each network Parameter whose name is a key of ``parameter_dict`` is loaded from it; a value
  without ``.data`` (a string, a map tensor's list) is skipped and stays in ``ckpt_not_load``;
* a network name missing from the dict goes to ``param_not_load`` — unless it starts with
  ``"accu_grads"`` (line 1840);
* a shape mismatch is a ``RuntimeError`` — except that extra trailing 1s in the checkpoint's shape
  are squeezed away (``_special_process_par``, lines 251-273; a size mismatch there is NumPy's
  ``ValueError`` from ``reshape``);
* a dtype mismatch is converted when ``strict_load`` is false and both dtypes are floats
  (float16/32/64, bfloat16) or both signed ints (int8/16/32/64) (``_type_convert``, lines 326-337),
  else a ``RuntimeError``;
* when some names are not loaded and ``strict_load`` is false, a common prefix of the checkpoint's
  names is looked for and stripped, and the remaining Parameters are loaded under it (such
  entries stay in ``ckpt_not_load``, as in MindSpore).

MindSpore writes each Parameter as it goes, so an error leaves a network half loaded. Here every
value is checked and converted first and nothing is written unless all of them pass; the exception
is the one MindSpore would raise first. Where MindSpore, after squeezing trailing 1s, goes on to
give the network Parameter the checkpoint's *unsqueezed* shape (its ``set_data`` at line 302),
the Parameter here keeps its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import msadam
from msadam_compat.checkpoint import dtypes

__all__ = ["Plan", "plan_prefix_loads", "plan_updates"]

_FLOATS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}
if dtypes.BFLOAT16 is not None:
    _FLOATS.add(dtypes.BFLOAT16)
_INTS = {np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64)}

#: serialization.py line 1840: network parameters with this prefix are never reported as not loaded.
ACCUMULATION_PREFIX = "accu_grads"

Plan = list[tuple[msadam.Parameter, np.ndarray]]


def _convertible(target: np.dtype, source: np.dtype, strict_load: bool) -> bool:
    """``_type_convert`` (lines 326-337)."""
    pair = {np.dtype(target), np.dtype(source)}
    return not strict_load and (pair <= _FLOATS or pair <= _INTS)


def _value_for(name: str, param: msadam.Parameter, new: Any, strict_load: bool) -> np.ndarray:
    """The array ``param`` would receive from ``new`` (``_update_param``), or MindSpore's exception."""
    if not isinstance(new, msadam.Parameter):
        # MindSpore dereferences new_param.data (line 278): a string here is an AttributeError.
        raise AttributeError(f"For 'load_param_into_net', the value loaded into {name!r} is a {type(new).__name__}, "
                             f"not a Parameter.")
    array = new.asnumpy()
    shape = tuple(param.shape)
    if tuple(array.shape) != shape:
        extra = array.shape[len(shape):]
        if array.ndim > len(shape) and all(d == 1 for d in extra):  # _special_process_par, lines 257-264
            array = array.reshape(shape)  # a size mismatch: NumPy's ValueError, as in MindSpore (line 271)
        else:
            raise RuntimeError(
                f"For 'load_param_into_net', {name} in the argument 'net' should have the same shape as {name} in "
                f"the argument 'parameter_dict'. But got its shape {shape} in the argument 'net' and shape "
                f"{tuple(array.shape)} in the argument 'parameter_dict'.May you need to check whether the "
                f"checkpoint you loaded is correct or the batch size and so on in the 'net' and 'parameter_dict' "
                f"are same.")
    if array.dtype != param.dtype:
        if not _convertible(param.dtype, array.dtype, strict_load):
            raise RuntimeError(
                f"For 'load_param_into_net', {name} in the argument 'net' should have the same type as {name} in "
                f"the argument 'parameter_dict'. but got its type {param.dtype} in the argument 'net' and type "
                f"{array.dtype} in the argument 'parameter_dict'.May you need to check whether the checkpoint you "
                f"loaded is correct.")
        array = array.astype(param.dtype)
    return array


def plan_updates(items: list[tuple[str, msadam.Parameter]], parameter_dict: Mapping[str, Any],
                 strict_load: bool) -> tuple[Plan, list[str], list[str]]:
    """The exact-name loads: ``(plan, param_not_load, ckpt_not_load)`` (lines 1822-1845)."""
    plan: Plan = []
    param_not_load: list[str] = []
    ckpt_not_load = list(parameter_dict.keys())
    for name, param in items:
        if name in parameter_dict:
            new = parameter_dict[name]
            if not hasattr(new, "data"):  # line 1831: a string (or a map tensor's list) is skipped
                continue
            plan.append((param, _value_for(name, param, new, strict_load)))
            ckpt_not_load.remove(name)
        elif not name.startswith(ACCUMULATION_PREFIX):
            param_not_load.append(name)
    return plan, param_not_load, ckpt_not_load


def plan_prefix_loads(items: list[tuple[str, msadam.Parameter]], parameter_dict: Mapping[str, Any],
                      param_not_load: list[str], strict_load: bool) -> Plan:
    """``_load_dismatch_prefix_params`` (lines 1930-1955), step for step; ``param_not_load`` shrinks in place.

    MindSpore loops until a pass finds no new prefix; a pass that loads nothing ends the loop here too.
    """
    plan: Plan = []
    if not param_not_load:
        return plan
    prefix_name = ""
    longest_name = param_not_load[0]
    while prefix_name != longest_name and param_not_load:
        prefix_name = longest_name
        for net_param_name in param_not_load:
            for dict_name in parameter_dict:
                if dict_name.endswith(net_param_name):
                    prefix_name = dict_name[:-len(net_param_name)]
                    break
            if prefix_name != longest_name:
                break
        if prefix_name == longest_name:
            break
        loaded = False
        for name, param in items:
            new_name = prefix_name + name
            if name in param_not_load and new_name in parameter_dict:
                plan.append((param, _value_for(name, param, parameter_dict[new_name], strict_load)))
                param_not_load.remove(name)
                loaded = True
        if not loaded:
            break
    return plan


def write(plan: Plan) -> None:
    """Give every planned Parameter its value (converted to its backend by ``Parameter.set_data``)."""
    for param, array in plan:
        param.set_data(array)
