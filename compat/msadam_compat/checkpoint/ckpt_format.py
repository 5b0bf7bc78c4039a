"""MindSpore's ``.ckpt`` file: protobuf ``Checkpoint`` messages, back to back, and an optional CRC32 trailer.

Writing (``_exec_save`` and its helpers, ``mindspore/train/serialization.py`` lines 375-540):

* every entry is one or more ``Checkpoint{value: [Value{tag, tensor}]}`` messages, serialized one
  after the other (protobuf merges concatenated messages, so the file parses as one ``Checkpoint``);
* ``dims`` is the shape (``[]`` for a 0-d tensor, ``[0]`` for a string), ``tensor_type`` MindSpore's
  dtype name (:mod:`msadam_compat.checkpoint.dtypes`), ``tensor_content`` the C-order bytes;
* a large tensor is split over several Values with the same tag and the full ``dims`` in each.
  A synchronous save (``_write_parameter_bytes_data``, lines 513-539) cuts its bytes into
  512 MiB chunks — and so writes *no* Value at all for an empty tensor; an asynchronous one
  (``_write_parameter_data``, lines 480-510, which strings always take) splits the array along
  axis 0 with ``np.array_split`` into ``ceil(KiB / SLICE_SIZE)`` pieces once it exceeds 512 MiB;
* with ``crc_check`` the file ends with ``b"crc_num"`` and the CRC32 of everything before it,
  as 10 big-endian bytes (line 432; the CRC is chained over each message written, lines 500-501).

Reading (``_parse_ckpt_proto``, lines 1673-1721, and ``_load_ckpt_into_param_dict``, lines 1244-1297):
the whole file is read; a trailer is recognised by ``content[-17:-10] == b"crc_num"`` and stripped
whether or not ``crc_check`` is set (checked only when it is); consecutive Values with one tag are
joined, and the last one's ``dims`` and ``tensor_type`` describe the result; ``dims == [0]``
means a scalar (line 1287). Every failure is a ``ValueError``, as in MindSpore (lines 1294-1297,
1709-1720) — and unlike MindSpore 2.10, which builds a tensor from whatever bytes are there, a
content whose length disagrees with ``dims`` (or negative dims) is refused here rather than read
past its end.
"""

from __future__ import annotations

import binascii
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import numpy as np
from google.protobuf import message as protobuf_message

from msadam_compat.checkpoint import dtypes
from msadam_compat.checkpoint.schema import Checkpoint

__all__ = ["CRC_MARK", "SLICE_SIZE", "CheckpointValue", "decode", "parse", "write"]

logger = logging.getLogger(__name__)

#: serialization.py line 102: the slice size in KiB (512 MiB) for splitting a large tensor.
SLICE_SIZE = 512 * 1024
#: serialization.py line 432: the CRC trailer is ``CRC_MARK`` then ``CRC_BYTES`` big-endian bytes.
CRC_MARK = b"crc_num"
CRC_BYTES = 10
_TRAILER = len(CRC_MARK) + CRC_BYTES

#: What a ``.ckpt`` entry loads as: an array, a string (``append_dict`` strings) or, for a
#: MindSpore ``MapParameter``, its list of three arrays (keys, values, status).
CheckpointValue = np.ndarray | str | list[np.ndarray]

# serialization.py line 91: the dtypes MindSpore reads in a map tensor (str(numpy dtype) on save).
_MAP_TYPES: dict[str, np.dtype] = {"int32": np.dtype(np.int32), "float32": np.dtype(np.float32),
                                   "float16": np.dtype(np.float16), "float64": np.dtype(np.float64)}


# ------------------------------------------------------------------------------------------- writing


def _byte_chunks(array: np.ndarray) -> Iterator[bytes]:
    """``_write_parameter_bytes_data`` (lines 513-539): 512 MiB byte chunks; none for an empty tensor."""
    flat = np.asarray(array, order="C").reshape(-1).view(np.uint8)
    chunk = max(1, int(1024 * SLICE_SIZE))
    for start in range(0, flat.size, chunk):
        yield flat[start:start + chunk].tobytes()


def _array_chunks(array: np.ndarray) -> Iterator[bytes]:
    """``_write_parameter_data`` (lines 480-490): ``np.array_split`` along axis 0 above 512 MiB."""
    data_size = array.nbytes / 1024
    if data_size > SLICE_SIZE:
        for piece in np.array_split(array, math.ceil(data_size / SLICE_SIZE)):
            yield np.asarray(piece, order="C").tobytes()
    else:
        yield np.asarray(array, order="C").tobytes()


def _message(tag: str, dims: list[int], tensor_type: str, content: bytes) -> bytes:
    checkpoint = Checkpoint()
    value = checkpoint.value.add()
    value.tag = tag
    value.tensor.dims.extend(dims)
    value.tensor.tensor_type = tensor_type
    value.tensor.tensor_content = content
    return bytes(checkpoint.SerializeToString())


def write(stream: IO[bytes], entries: Mapping[str, np.ndarray | str], *, crc_check: bool,
          async_layout: bool = False) -> None:
    """Write ``entries`` (name -> array or string) to ``stream`` as MindSpore 2.10 does.

    ``async_layout`` picks the chunking of MindSpore's asynchronous save (arrays split along axis 0,
    empty tensors kept) instead of the synchronous one (byte chunks, empty tensors dropped).
    """
    crc = 0
    for name, value in entries.items():
        if isinstance(value, str):
            # serialization.py lines 770-780: dims [0], type 'str', the UCS-4 bytes of np.array(value).
            dims, tensor_type, chunks = [0], dtypes.STR_TYPE, _array_chunks(np.array(value))
        else:
            dims, tensor_type = [int(d) for d in value.shape], dtypes.ckpt_type_of(value.dtype)
            chunks = _array_chunks(value) if async_layout else _byte_chunks(value)
        for content in chunks:
            data = _message(name, dims, tensor_type, content)
            if crc_check:
                crc = binascii.crc32(data, crc)
            stream.write(data)
    if crc_check:
        stream.write(CRC_MARK + crc.to_bytes(CRC_BYTES, byteorder="big"))


# ------------------------------------------------------------------------------------------- reading


def parse(content: bytes, file_name: str, crc_check: bool) -> Any:
    """The ``Checkpoint`` message of a file's bytes, after MindSpore's CRC handling (lines 1691-1701).

    ``ValueError`` for a failed CRC check or bytes that are not a checkpoint (lines 1705-1720).
    """
    has_trailer = len(content) >= _TRAILER and content[-_TRAILER:-CRC_BYTES] == CRC_MARK
    if crc_check and not has_trailer:
        logger.warning("For 'load_checkpoint', the ckpt file do not contain the crc code, please check the file.")
    if has_trailer:
        expected = int.from_bytes(content[-CRC_BYTES:], byteorder="big")
        content = content[:-_TRAILER]
        if crc_check and binascii.crc32(content, 0) != expected:
            # MindSpore raises this inside its own try block, which re-raises every error as a
            # ValueError "Failed to read the checkpoint file" (lines 1712-1720): the class is the same.
            raise ValueError(f"For 'load_checkpoint', the crc check is failed, please check whether the ckpt file "
                             f"{file_name} is damaged.")
    checkpoint = Checkpoint()
    try:
        checkpoint.ParseFromString(content)
    except MemoryError as exc:
        raise ValueError(f"For 'load_checkpoint', not enough memory to load checkpoint protobuf content: "
                         f"{file_name}.") from exc
    except protobuf_message.DecodeError as exc:
        raise ValueError(f"Failed to read the checkpoint file {file_name}. The file may be corrupted, and the "
                         f"content cannot be parsed.") from exc
    except Exception as exc:  # e.g. a tag that is not UTF-8
        raise ValueError(f"Failed to read the checkpoint file {file_name}. The file may be corrupted, and the "
                         f"content cannot be parsed ({type(exc).__name__}: {exc}).") from exc
    return checkpoint


def _shape(dims: list[int], content_length: int, itemsize: int, tag: str) -> tuple[int, ...]:
    """The shape ``dims`` describe, checked against the content's length before anything is allocated."""
    if dims == [0] and content_length != 0:
        dims = []  # line 1287: [0] is how MindSpore writes a string; for a tensor it reads it as a scalar
    if any(d < 0 for d in dims):
        raise ValueError(f"The tensor {tag!r} has negative dims {dims}.")
    count = math.prod(dims)
    if count * itemsize != content_length:
        raise ValueError(f"The tensor {tag!r} has dims {dims} ({count} elements of {itemsize} bytes), but "
                         f"{content_length} bytes of content.")
    return tuple(dims)


def _decode_tensor(tag: str, tensors: list[Any]) -> np.ndarray | str:
    last = tensors[-1]
    dims, tensor_type = [int(d) for d in last.dims], str(last.tensor_type)
    for piece in tensors[:-1]:
        if [int(d) for d in piece.dims] != dims or piece.tensor_type != tensor_type:
            raise ValueError(f"The slices of tensor {tag!r} disagree on dims or tensor_type.")
    content = b"".join(bytes(piece.tensor_content) for piece in tensors)
    if tensor_type == dtypes.STR_TYPE:
        # lines 1281-1284: 'U<len(last slice) / 4>' over the joined bytes, first element.
        length = len(last.tensor_content) // 4
        if length == 0 or len(content) % 4 or len(content) < 4 * length:
            raise ValueError(f"The string {tag!r} has {len(content)} bytes of content, not UCS-4 text.")
        try:
            return str(np.frombuffer(content, dtype=f"<U{length}")[0])
        except (ValueError, UnicodeError) as exc:
            raise ValueError(f"The string {tag!r} is not valid UCS-4 text: {exc}") from exc
    dtype = dtypes.numpy_dtype_of_ckpt_type(tensor_type)
    shape = _shape(dims, len(content), dtype.itemsize, tag)
    return np.frombuffer(content, dtype=dtype).reshape(shape)  # read-only; a Parameter copies it


def _decode_map(tag: str, elements: list[Any]) -> list[np.ndarray]:
    """``_load_map_parameter`` (lines 1545-1572): each of the three tensors joined over the slices."""
    arrays = []
    count = len(elements[-1].maptensor.tensor)
    for index in range(count):
        pieces, rows = [], 0
        for element in elements:
            tensors = element.maptensor.tensor
            if len(tensors) != count:
                raise ValueError(f"The slices of map tensor {tag!r} disagree on their number of tensors.")
            tensor = tensors[index]
            dtype = _MAP_TYPES.get(tensor.tensor_type)
            if dtype is None:
                raise ValueError(f"The map tensor {tag!r} has tensor_type {tensor.tensor_type!r}; MindSpore reads "
                                 f"{', '.join(_MAP_TYPES)}.")
            if len(tensor.tensor_content) % dtype.itemsize:
                raise ValueError(f"The map tensor {tag!r} has a content that is not whole {tensor.tensor_type}s.")
            pieces.append(np.frombuffer(bytes(tensor.tensor_content), dtype=dtype))
            if element is not elements[-1]:
                if not tensor.dims:
                    raise ValueError(f"The map tensor {tag!r} has a slice without dims.")
                rows += int(tensor.dims[0])
        dims = [int(d) for d in elements[-1].maptensor.tensor[index].dims]
        if not dims:
            raise ValueError(f"The map tensor {tag!r} has a tensor without dims.")
        dims[0] += rows
        data = np.concatenate(pieces) if pieces else np.zeros(0, np.float64)
        shape = _shape(dims, data.nbytes, data.dtype.itemsize, tag)
        arrays.append(data.reshape(shape).copy())
    return arrays


def decode(checkpoint: Any, file_name: str, select: Callable[[str], bool]) -> dict[str, CheckpointValue]:
    """``{tag: value}`` of the selected tags, in file order (a repeated tag: the last group wins).

    ``ValueError`` (MindSpore's wrapping, lines 1294-1297) for anything that cannot be decoded.
    """
    values = list(checkpoint.value)
    result: dict[str, CheckpointValue] = {}
    try:
        start = 0
        for index, element in enumerate(values):
            last_of_group = index == len(values) - 1 or values[index + 1].tag != element.tag
            if not last_of_group:
                continue
            group, start = values[start:index + 1], index + 1
            if not isinstance(element.tag, str):
                # protobuf hands a proto2 string that is not UTF-8 back as bytes; MindSpore then fails in
                # Parameter(name=...) (a ValueError through its wrapping), or keys a map parameter by bytes.
                raise ValueError(f"The checkpoint has a tag that is not UTF-8 text: {element.tag!r}.")
            if not select(element.tag):
                continue
            kinds = {item.WhichOneof("value") for item in group}
            if kinds == {"tensor"}:
                result[element.tag] = _decode_tensor(element.tag, [item.tensor for item in group])
            elif kinds == {"maptensor"}:
                result[element.tag] = _decode_map(element.tag, group)
            else:
                raise ValueError(f"The entry {element.tag!r} holds neither a tensor nor a map tensor.")
    except Exception as exc:
        raise ValueError(f"{exc}\nFor 'load_checkpoint', failed to load the checkpoint file {file_name}.") from exc
    return result
