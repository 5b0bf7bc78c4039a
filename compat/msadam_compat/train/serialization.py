"""``ms.save_checkpoint``, ``ms.load_checkpoint`` and ``ms.load_param_into_net`` of MindSpore 2.10.

Signatures, defaults, argument checks (in MindSpore's order, with its exception classes) and file
formats are those of ``mindspore/train/serialization.py`` (line numbers below refer to it). The
files are MindSpore's own: a ``.ckpt`` written here loads in MindSpore and the other way round,
and so do safetensors files; the formats are in ``msadam_compat.checkpoint``.

Where this differs from MindSpore 2.10, on purpose:

* encryption (``enc_key`` / ``dec_key``) is not supported: ``NotImplementedError`` once MindSpore's
  own checks of the arguments have passed;
* ``async_save`` is accepted (and checked) but the save completes before the call returns; the
  file has the layout MindSpore's asynchronous save writes (see ``msadam_compat.checkpoint.ckpt_format``);
* saving is atomic: the new file is written beside the target, fsynced and renamed over it, so a
  failure leaves any previous file intact (MindSpore deletes it first);
* ``load_param_into_net`` checks every value before writing any (MindSpore writes as it goes);
* a malformed file is always a ``ValueError`` that says what is wrong, and a tensor whose content
  does not match its dims is refused (MindSpore 2.10 reads such a ``.ckpt`` past its end);
* ``save_obj`` and ``net`` may be anything with ``parameters_dict()`` (``ms.nn.Adam``) where MindSpore
  wants a ``Cell``; ``net`` may also be a mapping name -> Parameter; saved values may be NumPy arrays
  or native arrays of any msadam backend.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

import msadam
from msadam_compat.checkpoint import atomic, ckpt_format, net_loading, safetensors_format, values
from msadam_compat.common import Parameter

__all__ = ["load_checkpoint", "load_param_into_net", "save_checkpoint"]

logger = logging.getLogger(__name__)

FORMATS = ("ckpt", "safetensors")
# serialization.py line 1027 (less MindSpore's Generator, which has no counterpart here).
_APPEND_TYPES = (int, float, bool, str, msadam.Parameter, msadam.Tensor)


# ------------------------------------------------------------------------------ MindSpore's validators


def _check_bool(value: Any) -> bool:
    """``Validator.check_bool`` (mindspore/_checkparam.py line 500): ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"The input value must be a bool, but got {type(value).__name__}.")
    return value


def _check_isinstance(name: str, value: Any, classes: type | tuple[type, ...]) -> Any:
    """``Validator.check_isinstance`` (mindspore/_checkparam.py line 489): a ``ValueError``, not a TypeError."""
    if not isinstance(value, classes):
        raise ValueError(f"The parameter '{name}' must be isinstance of {classes}, but got {value}.")
    return value


def _encryption_unsupported(argument: str) -> NotImplementedError:
    return NotImplementedError(f"msadam_compat does not support encrypted checkpoints ({argument} is not None): "
                               f"MindSpore encrypts with its own C++ ciphers. Save and load without {argument}.")


# ------------------------------------------------------------------------------------------- saving


def _check_save_obj_and_ckpt_file_name(save_obj: Any, ckpt_file_name: Any, format: Any) -> str:
    """Lines 561-578: format, save_obj, name; the realpath with ``.<format>`` appended if missing."""
    if format not in ["safetensors", "ckpt"]:
        raise ValueError(f"For 'save_checkpoint', the format must be 'safetensors' or 'ckpt', but got {format}.")
    if not isinstance(save_obj, list | dict) and not values.is_cell(save_obj):
        raise TypeError(f"For 'save_checkpoint', the parameter 'save_obj' must be nn.Cell, list or dict, but got "
                        f"{type(save_obj)}.")
    if not isinstance(ckpt_file_name, str):
        raise TypeError(f"For 'save_checkpoint', the parameter {ckpt_file_name} for checkpoint file name is invalid,"
                        f"'ckpt_file_name' must be string, but got {type(ckpt_file_name)}.")
    ckpt_file_name = os.path.realpath(ckpt_file_name)
    if os.path.isdir(ckpt_file_name):
        raise IsADirectoryError(f"For 'save_checkpoint', the parameter `ckpt_file_name`: {ckpt_file_name} is a "
                                f"directory, it must be a file name.")
    # Line 577: the test is endswith(format), not endswith('.' + format): 'netckpt' is kept as it is.
    if not ckpt_file_name.endswith(format):
        ckpt_file_name += f".{format}"
    return ckpt_file_name


def _check_async_save(async_save: Any) -> bool | str:
    """Lines 614-623."""
    if not isinstance(async_save, bool | str):
        raise TypeError(f"For 'save_checkpoint', the parameter 'async_save' must be bool or str, but got "
                        f"{type(async_save)}.")
    if isinstance(async_save, str) and async_save not in ("process", "thread"):
        raise ValueError(f"For 'save_checkpoint', the argument 'async_save' can only be 'process' or 'thread',"
                         f"but got {async_save}.")
    return async_save


def _check_append_dict(append_dict: Any) -> dict[str, Any] | None:
    """Lines 1019-1030 (MindSpore's ``Generator`` values have no counterpart here)."""
    if append_dict is None:
        return None
    if not isinstance(append_dict, dict):
        raise TypeError(f"For 'save_checkpoint', the argument 'append_dict' must be dict, but got {type(append_dict)}.")
    for key, value in append_dict.items():
        if not isinstance(key, str) or not isinstance(value, _APPEND_TYPES):
            raise TypeError(f"For 'save_checkpoint', the type of dict 'append_info' must be key: string, value: int, "
                            f"float, bool or Generator, but got key: {type(key)}, value: {type(value)}")
    return append_dict


def _check_save_checkpoint_unsupported_param(format: str, **arguments: tuple[Any, Any]) -> None:
    """Lines 597-611: with safetensors, these keep their defaults (compared with ``!=``) or ``ValueError``."""
    if format != "safetensors":
        return
    for name, (value, default) in arguments.items():
        if value != default:
            raise ValueError(f"For 'save_checkpoint', when format is 'safetensors', the parameter '{name}' must be "
                             f"set to default value '{default}', but got '{value}'.")


def save_checkpoint(save_obj: Any, ckpt_file_name: str, integrated_save: bool = True,
                    async_save: bool | str = False, append_dict: dict[str, Any] | None = None,
                    enc_key: bytes | None = None, enc_mode: str = "AES-GCM",
                    choice_func: Callable[[str], bool] | None = None, crc_check: bool = False,
                    format: str = "ckpt", **kwargs: Any) -> None:
    """Save ``save_obj``'s Parameters to a MindSpore ``.ckpt`` or safetensors file (``mindspore.save_checkpoint``).

    Args:
        save_obj: an object with ``parameters_dict()`` (``ms.nn.Adam``: its parameters and optimizer
            state), a list of Parameters or of ``{"name": str, "data": Parameter/Tensor}`` dicts, or a
            dict name -> Parameter/Tensor/str (what
            [`load_checkpoint`][msadam_compat.train.serialization.load_checkpoint] returns). Values may also be NumPy
            arrays or native arrays of an msadam backend.
        ckpt_file_name: the file; ``.ckpt``/``.safetensors`` is appended when the name does not end
            with the format (MindSpore's test is ``endswith(format)``). An existing file is replaced.
        integrated_save: checked (bool), otherwise unused: there is no model parallelism here.
        async_save: ``False``, ``True``, ``"thread"`` or ``"process"``; the save still completes before
            returning (with the layout of MindSpore's asynchronous save).
        append_dict: extra entries, name -> int/float/bool/str/Parameter/Tensor.
        enc_key: checked as MindSpore checks it; a key (encryption) is ``NotImplementedError``.
        enc_mode: checked as MindSpore checks it; unused without ``enc_key``.
        choice_func: ``choice_func(name)`` true keeps an entry.
        crc_check: append the CRC32 MindSpore verifies with ``load_checkpoint(crc_check=True)``.
        format: ``"ckpt"`` or ``"safetensors"``.
        kwargs: ``remove_redundancy`` (None or bool; written in a safetensors header), ``incremental``
            and ``global_step_num`` (must stay unset with safetensors); others are ignored, as in MindSpore.

    Raises:
        TypeError: ``save_obj``, ``ckpt_file_name``, ``integrated_save``, ``async_save``,
            ``append_dict`` of the wrong type.
        ValueError: a bad ``format`` or ``async_save`` string; ``enc_key``, ``enc_mode``, ``crc_check``
            or ``remove_redundancy`` of the wrong type (MindSpore's ``check_isinstance`` raises ValueError).
        IsADirectoryError: ``ckpt_file_name`` is a directory.
    """
    ckpt_file_name = _check_save_obj_and_ckpt_file_name(save_obj, ckpt_file_name, format)  # line 717
    _check_bool(integrated_save)  # line 718
    async_save = _check_async_save(async_save)
    append_dict = _check_append_dict(append_dict)
    enc_key = _check_isinstance("enc_key", enc_key, (type(None), bytes))
    _check_isinstance("enc_mode", enc_mode, str)
    crc_check = _check_isinstance("crc_check", crc_check, bool)
    remove_redundancy = _check_isinstance("remove_redundancy", kwargs.get("remove_redundancy"), (type(None), bool))
    _check_save_checkpoint_unsupported_param(  # line 729
        format, enc_key=(enc_key, None), enc_mode=(enc_mode, "AES-GCM"),
        map_param_inc=(kwargs.get("incremental", False), False), global_step_num=(kwargs.get("global_step_num"), None))
    if enc_key is not None:
        raise _encryption_unsupported("enc_key")

    entries = values.merged(values.save_values(save_obj, choice_func), values.append_values(append_dict))
    with atomic.atomic_path(ckpt_file_name) as temporary:
        if format == "ckpt":
            with open(temporary, "wb") as stream:
                ckpt_format.write(stream, entries, crc_check=crc_check, async_layout=bool(async_save))
                stream.flush()
                os.fsync(stream.fileno())
        else:
            safetensors_format.write(temporary, entries, crc_check=crc_check, remove_redundancy=remove_redundancy)


# ------------------------------------------------------------------------------------------- loading


def _check_prefix(prefix: Any) -> tuple[str, ...] | list[str] | None:
    """Lines 1650-1670."""
    if prefix is None:
        return None
    if not isinstance(prefix, str | list | tuple):
        raise TypeError(f"For 'load_checkpoint', the type of 'specify_prefix' or 'filter_prefix' must be string, "
                        f"list[string] or tuple[string], but got {type(prefix)}.")
    if isinstance(prefix, str):
        prefix = (prefix,)
    if not prefix:
        raise ValueError("For 'load_checkpoint', the argument 'specify_prefix' or 'filter_prefix' can't be empty when"
                         " 'specify_prefix' or 'filter_prefix' is list or tuple.")
    for index, pre in enumerate(prefix):
        if not isinstance(pre, str):
            raise TypeError(f"For 'load_checkpoint', when 'specify_prefix' or 'filter_prefix' is list or tuple, the "
                            f"element in it must be string, but got {type(pre)} at index {index}.")
        if pre == "":
            raise ValueError("For 'load_checkpoint', the value of 'specify_prefix' or 'filter_prefix' can't "
                             "include ''.")
    return prefix


def _available_memory() -> int | None:
    """``_get_available_memory`` (lines 1579-1588)."""
    try:
        pages, page_size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _check_file(file: Any, file_format: Any) -> str | io.BytesIO:
    """Lines 1621-1647: format, BytesIO (safetensors only), str, suffix, existence, and memory for a ``.ckpt``."""
    if file_format not in FORMATS:
        raise ValueError("For 'load_checkpoint', the checkpoint file should end with '.ckpt' or '.safetensors', "
                         "please input the correct 'format'.")
    if isinstance(file, io.BytesIO):
        if file_format == "ckpt":
            raise TypeError("ckpt don't support BytesIO as input type, please change to safetensors.")
        return file
    if not isinstance(file, str):
        raise TypeError(f"For 'load_checkpoint', the argument 'ckpt_file_name' must be string, but got {type(file)}.")
    if not file.endswith(file_format):
        raise ValueError(f"For 'load_checkpoint', the checkpoint file format must same with 'format', but got "
                         f"file_name:'{file}', format:'{file_format}'")
    file = os.path.realpath(file)
    if not os.path.exists(file):
        raise ValueError(f"For 'load_checkpoint', the checkpoint file: {file} does not exist, please check whether the "
                         f"'ckpt_file_name' is correct.")
    if file_format == "ckpt":  # _check_checkpoint_file_size (lines 1604-1618)
        available, size = _available_memory(), os.path.getsize(file)
        if available is not None and size > available:
            raise ValueError(f"For 'load_checkpoint', the checkpoint protobuf content size {size} bytes exceeds "
                             f"current available memory {available} bytes: {file}.")
    elif os.path.isdir(file):  # MindSpore's safetensors reader opens it: IsADirectoryError
        raise IsADirectoryError(f"For 'load_checkpoint', {file} is a directory.")
    return file


def _whether_load_param(specify_prefix: Any, filter_prefix: Any, name: str) -> bool:
    """Lines 1724-1738: a name must start with a ``specify_prefix`` and with no ``filter_prefix``."""
    if specify_prefix and not any(name.startswith(prefix) for prefix in specify_prefix):
        return False
    return not (filter_prefix and any(name.startswith(prefix) for prefix in filter_prefix))


def _read_ckpt(file: str, specify_prefix: Any, filter_prefix: Any, choice_func: Callable[[str], Any] | None,
               crc_check: bool) -> dict[str, Any]:
    """``_load_ckpt_into_param_dict`` (lines 1244-1297)."""
    try:
        with open(file, "rb") as stream:
            content = stream.read()
    except OSError as exc:  # lines 1712-1720
        raise ValueError(f"Failed to read the checkpoint file {file}. May not have permission to read it, please "
                         f"check the correct of the file.") from exc
    checkpoint = ckpt_format.parse(content, file, crc_check)
    del content
    if specify_prefix:
        logger.warning("For load_checkpoint, this parameter `specity_prefix` will be deprecated, please use "
                       "`choice_func` instead.")
    if filter_prefix:
        logger.warning("For load_checkpoint, this parameter `filter_prefix` will be deprecated, please use "
                       "`choice_func` instead.")
    # Line 1255: either prefix argument switches choice_func off.
    chooser = choice_func if specify_prefix is None and filter_prefix is None else None

    def select(tag: str) -> bool:
        if not _whether_load_param(specify_prefix, filter_prefix, tag):
            return False
        return chooser is None or bool(chooser(tag))

    decoded = ckpt_format.decode(checkpoint, file, select)
    return {tag: Parameter(value, name=tag, backend="numpy") if isinstance(value, np.ndarray) else value
            for tag, value in decoded.items()}


def _read_safetensors(file: str | io.BytesIO, choice_func: Callable[[str], Any] | None, crc_check: bool,
                      remove_redundancy: bool) -> tuple[dict[str, Any], bool]:
    """``_load_safetensors_into_param_dict`` (lines 1203-1241); the effective ``remove_redundancy``."""
    content = safetensors_format.read(file, crc_check=crc_check,
                                      select=lambda name: choice_func is None or bool(choice_func(name)))
    # Line 1224: Parameter(Tensor.from_numpy(value)) -- unnamed, as MindSpore leaves it.
    parameter_dict: dict[str, Any] = {name: Parameter(array, backend="numpy")
                                      for name, array in content.tensors.items()}
    flag = (content.metadata or {}).get("remove_redundancy")  # _check_remove_redundancy (lines 1189-1200)
    if flag == "True" and not remove_redundancy:
        logger.warning("For 'load_checkpoint', the safetensors file is deduplicated, but remove_redundancy is set to "
                       "False.")
        remove_redundancy = True
    elif flag == "False" and remove_redundancy:
        logger.warning("For 'load_checkpoint', the safetensors file is non-deduplicated, but remove_redundancy is set "
                       "to True.")
        remove_redundancy = False
    return parameter_dict, remove_redundancy


def load_checkpoint(ckpt_file_name: str | io.BytesIO, net: Any = None, strict_load: bool = False,
                    filter_prefix: str | list[str] | tuple[str, ...] | None = None, dec_key: bytes | None = None,
                    dec_mode: str = "AES-GCM", specify_prefix: str | list[str] | tuple[str, ...] | None = None,
                    choice_func: Callable[[str], bool] | None = None, crc_check: bool = False,
                    remove_redundancy: bool = False, format: str = "ckpt") -> dict[str, Any]:
    """Read a MindSpore ``.ckpt`` or safetensors file (``mindspore.load_checkpoint``).

    Returns ``{name: Parameter}`` (NumPy-backed ``ms.Parameter``; a string saved through
    ``append_dict`` comes back as ``str``), and loads it into ``net`` first when ``net`` is given.

    ``specify_prefix`` keeps only names starting with one of its prefixes, ``filter_prefix`` drops
    those starting with one of its; either one switches ``choice_func`` off; with safetensors only
    ``choice_func`` applies (MindSpore ignores the prefixes there). ``crc_check`` verifies the CRC32
    a ``crc_check`` save wrote (a file without one only logs a warning, as in MindSpore).

    Raises:
        TypeError: a prefix of the wrong type; a ``BytesIO`` for a ``.ckpt``; a non-str file name.
        ValueError: an empty prefix; ``dec_key``, ``dec_mode``, ``crc_check``, ``remove_redundancy``
            of the wrong type; a bad ``format``; a name not ending with the format; a missing file;
            a file that is not a checkpoint; a failed CRC; nothing left after filtering.
        NotImplementedError: ``dec_key`` is given (encrypted checkpoints are not supported).
    """
    specify_prefix = _check_prefix(specify_prefix)  # lines 1409-1415
    filter_prefix = _check_prefix(filter_prefix)
    dec_key = _check_isinstance("dec_key", dec_key, (type(None), bytes))
    dec_mode = _check_isinstance("dec_mode", dec_mode, str)
    crc_check = _check_isinstance("crc_check", crc_check, bool)
    remove_redundancy = _check_isinstance("remove_redundancy", remove_redundancy, bool)
    if format == "safetensors":  # _check_load_checkpoint_unsupported_param (lines 582-594)
        for name, value, default in (("dec_key", dec_key, None), ("dec_mode", dec_mode, "AES-GCM")):
            if value != default:
                raise ValueError(f"For 'load_checkpoint', when format is 'safetensors', the parameter '{name}' must be "
                                 f"set to default value '{default}', but got '{value!s:.40}'.")
    file = _check_file(ckpt_file_name, format)
    if format == "safetensors":
        parameter_dict, remove_redundancy = _read_safetensors(file, choice_func, crc_check, remove_redundancy)
    else:
        if dec_key is not None:
            raise _encryption_unsupported("dec_key")
        parameter_dict = _read_ckpt(file, specify_prefix, filter_prefix, choice_func, crc_check)  # type: ignore[arg-type]
    if not parameter_dict:  # lines 1444-1446
        raise ValueError("The loaded parameter dict is empty after filter or specify, please check whether "
                         "'filter_prefix' or 'specify_prefix' are set correctly.")
    if net is not None:
        load_param_into_net(net, parameter_dict, strict_load, remove_redundancy)
    return parameter_dict


def load_param_into_net(net: Any, parameter_dict: dict[str, Any], strict_load: bool = False,
                        remove_redundancy: bool = False) -> tuple[list[str], list[str]]:
    """Load ``parameter_dict`` into ``net``'s Parameters (``mindspore.load_param_into_net``).

    ``net``: anything with ``parameters_dict()`` (``ms.nn.Adam``: parameters and optimizer state), or
    a mapping name -> Parameter. Returns ``(param_not_load, ckpt_not_load)``: the network's names
    that got no value, and the dict's names that were not loaded. Matching, conversions and the
    prefix fallback are MindSpore's (``msadam_compat.checkpoint.net_loading``); every value is
    checked before any Parameter is written.

    Raises:
        TypeError: ``net`` is not Cell-like; ``parameter_dict`` is not a dict of str -> Parameter/str/list;
            ``strict_load`` is not a bool; ``remove_redundancy=True`` (it needs a parallel setup).
        ValueError: ``remove_redundancy`` is not a bool.
        RuntimeError: a shape mismatch, or a dtype mismatch that cannot be converted.
    """
    items = values.net_parameters(net)  # _check_load_param_into_net (lines 1741-1757)
    if not isinstance(parameter_dict, dict):
        raise TypeError(f"For 'load_param_into_net', the argument 'parameter_dict' should be a dict, but got "
                        f"{type(parameter_dict)}.")
    for key, value in parameter_dict.items():
        if not isinstance(key, str) or not isinstance(value, msadam.Parameter | str | list):
            raise TypeError(f"For 'parameter_dict', the element in the argument 'parameter_dict' should be a 'str' and "
                            f"'Parameter' , but got {type(key)} and {type(value)}.")
    strict_load = _check_bool(strict_load)  # line 1816
    remove_redundancy = _check_isinstance("remove_redundancy", remove_redundancy, bool)

    plan, param_not_load, ckpt_not_load = net_loading.plan_updates(items, parameter_dict, strict_load)
    if param_not_load and not strict_load:
        plan += net_loading.plan_prefix_loads(items, parameter_dict, param_not_load, strict_load)
    if remove_redundancy:  # _check_remove_redundancy_net (lines 1760-1768, called at 1852): "stand_alone" here
        raise TypeError("The deduplication feature for loading checkpoint can only be used in parallel scenarios, "
                        "but got stand_alone.")
    net_loading.write(plan)
    if param_not_load:
        logger.warning("For 'load_param_into_net', %d parameters in the 'net' are not loaded, because they are not in "
                       "the 'parameter_dict', please check whether the network structure is consistent when training "
                       "and loading checkpoint.", len(param_not_load))
    return param_not_load, ckpt_not_load
