"""MindSpore's safetensors checkpoints, read and written with the ``safetensors`` package.

Writing (``_exec_save``, ``mindspore/train/serialization.py`` lines 436-465): tensors in sorted
name order through ``safetensors.numpy.save_file``, with the header metadata
``{"format": "ms"}``, plus ``"remove_redundancy": "True"/"False"`` when that keyword was given
as a bool, plus ``"crc_num": str(crc)`` with ``crc_check`` — the CRC32 chained, in sorted name
order, over each name's UTF-8 bytes and then its array's bytes. A file without tensors is written
with no metadata at all (line 463).

Reading (``_load_safetensors_into_param_dict``, lines 1203-1241): every tensor in sorted name
order — the CRC covers all of them, even those ``choice_func`` then drops (``filter_prefix`` and
``specify_prefix`` are not applied to safetensors files); a missing ``crc_num`` with ``crc_check``
is only a warning, a wrong one a ``ValueError``. A file that does not parse is a ``ValueError``
("Fail to parse the input safetensors", ``transform_safetensors.py`` lines 324-329).
"""

from __future__ import annotations

import binascii
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors
from safetensors.numpy import save_file

from msadam_compat.checkpoint import dtypes

__all__ = ["SafetensorsContent", "read", "write"]

logger = logging.getLogger(__name__)

#: ``transform_safetensors.py`` line 56: MindSpore refuses a header larger than this.
MAX_HEADER_SIZE = 100 * 1000 * 1000
_HEADER_LENGTH = 8


def _crc(crc: int, name: str, array: np.ndarray) -> int:
    crc = binascii.crc32(name.encode("utf-8"), crc)
    return binascii.crc32(np.asarray(array, order="C").tobytes(), crc)


def write(path: str, entries: Mapping[str, np.ndarray | str], *, crc_check: bool,
          remove_redundancy: bool | None = None) -> None:
    """Write ``entries`` to ``path`` in MindSpore 2.10's safetensors layout."""
    tensors: dict[str, np.ndarray] = {}
    metadata = {"format": "ms"}
    if isinstance(remove_redundancy, bool):
        metadata["remove_redundancy"] = str(remove_redundancy)
    crc = 0
    for name in sorted(entries):
        array = entries[name]
        if not isinstance(array, np.ndarray):
            # MindSpore hands np.array(str) to safetensors, which refuses it: SafetensorError (line 461).
            raise safetensors.SafetensorError(f"For 'save_checkpoint', the safetensors format holds only tensors, but "
                                              f"{name!r} is a {type(array).__name__}.")
        dtypes.ckpt_type_of(array.dtype)  # the dtypes MindSpore can load back; TypeError otherwise
        # safetensors takes the raw buffer: it must be C-contiguous (0-d arrays included).
        tensors[name] = np.asarray(array, order="C")
        if crc_check:
            crc = _crc(crc, name, tensors[name])
    if crc_check:
        metadata["crc_num"] = str(crc)
    if tensors:
        save_file(tensors, path, metadata=metadata)
    else:
        save_file(tensors, path)


@dataclass
class SafetensorsContent:
    """The selected tensors (sorted by name) and the header's metadata (``None`` if absent)."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] | None


def _header_metadata(data: bytes) -> dict[str, str] | None:
    """The ``__metadata__`` of a buffer that ``safetensors.deserialize`` has already validated."""
    length = int.from_bytes(data[:_HEADER_LENGTH], "little")
    header = json.loads(data[_HEADER_LENGTH:_HEADER_LENGTH + length])
    metadata = header.get("__metadata__")
    return dict(metadata) if isinstance(metadata, dict) else None


def _checked_dtype(name: str, dtype_name: str) -> None:
    try:
        dtypes.numpy_dtype_of_safetensors_type(dtype_name)
    except ValueError as exc:
        raise ValueError(f"For 'load_checkpoint', tensor {name!r}: {exc}") from exc


def _file_tensors(path: str) -> tuple[Iterator[tuple[str, np.ndarray]], dict[str, str] | None, Any]:
    handle = safetensors.safe_open(path, framework="np")
    reader = handle.__enter__()
    names = sorted(reader.keys())
    for name in names:
        _checked_dtype(name, reader.get_slice(name).get_dtype())

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for name in names:
            yield name, np.array(reader.get_tensor(name), copy=True)

    return tensors(), reader.metadata(), handle


def _buffer_tensors(data: bytes) -> tuple[Iterator[tuple[str, np.ndarray]], dict[str, str] | None]:
    if len(data) >= _HEADER_LENGTH and int.from_bytes(data[:_HEADER_LENGTH], "little") > MAX_HEADER_SIZE:
        raise ValueError("SafeTensorError::HeaderTooLarge")
    items = sorted(safetensors.deserialize(data), key=lambda item: item[0])
    for name, info in items:
        _checked_dtype(name, info["dtype"])

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for name, info in items:
            dtype = dtypes.numpy_dtype_of_safetensors_type(info["dtype"])
            yield name, np.frombuffer(bytes(info["data"]), dtype=dtype).reshape(info["shape"]).copy()

    return tensors(), _header_metadata(data)


def read(source: str | io.BytesIO, *, crc_check: bool, select: Callable[[str], bool]) -> SafetensorsContent:
    """The selected tensors of a MindSpore safetensors file (a path or a ``BytesIO``), CRC-checked if asked.

    ``ValueError`` for a file that is not safetensors, a dtype MindSpore does not load, or a failed CRC.
    """
    label = source if isinstance(source, str) else str(type(source))
    handle = None
    try:
        if isinstance(source, str):
            items, metadata, handle = _file_tensors(source)
        else:
            items, metadata = _buffer_tensors(source.getvalue())
        selected: dict[str, np.ndarray] = {}
        crc = 0
        for name, array in items:
            if crc_check:
                crc = _crc(crc, name, array)
            if not select(name):
                continue
            if metadata is not None and metadata.get(name) == "Int4":  # lines 1219-1222: qint4x2
                raise ValueError(f"For 'load_checkpoint', tensor {name!r} is MindSpore's packed Int4 (qint4x2), "
                                 f"which msadam_compat cannot load.")
            selected[name] = array
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # safetensors.SafetensorError, OSError, ...
        raise ValueError(f"Fail to parse the input safetensors: '{label}'. Please check the correctness of the "
                         f"file. ({type(exc).__name__}: {exc})") from exc
    finally:
        if handle is not None:
            handle.__exit__(None, None, None)
    if crc_check:
        if metadata is None or metadata.get("crc_num") is None:
            logger.warning("For 'load_checkpoint', the safetensors file do not contain the crc code, please check "
                           "the file.")
        else:
            try:
                expected = int(metadata["crc_num"])
            except ValueError as exc:
                raise ValueError(f"For 'load_checkpoint', the crc code {metadata['crc_num']!r} of {label} is not a "
                                 f"number.") from exc
            if crc != expected:
                raise ValueError("For 'load_checkpoint', the crc check has failed. Please check whether the ckpt "
                                 "file is damaged.")
    return SafetensorsContent(selected, metadata)
