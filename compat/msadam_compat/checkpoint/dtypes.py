"""MindSpore's checkpoint dtype names, as NumPy dtypes.

A ``.ckpt`` file names each tensor's dtype with ``str(mindspore dtype)`` (``"Float32"``,
``"Int32"``, ``"BFloat16"``, ``"Bool"``, ...); MindSpore 2.10 reads them back through two tables
in ``mindspore/train/serialization.py``: ``tensor_to_ms_type`` (lines 84-87) and
``_tensor_to_np_type`` (lines 89-90), with ``BFloat16`` going through its own NumPy extension type
(``tensor_to_np_type``, lines 115-126). This module copies those tables, with ``ml_dtypes``'s
``bfloat16`` (the one JAX and TensorFlow use) standing in for MindSpore's.

A safetensors file names dtypes as the safetensors format does (``"F32"``, ``"BF16"``, ...);
MindSpore 2.10 reads the set in ``mindspore/parallel/transform_safetensors.py`` (``dtype_size``
and ``numpy_dtype``, lines 59-103, ``BF16`` at lines 272-280).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BFLOAT16",
    "SAFETENSORS_TO_NUMPY",
    "STR_TYPE",
    "ckpt_type_of",
    "numpy_dtype_of_ckpt_type",
    "numpy_dtype_of_safetensors_type",
]

try:  # MindSpore's bfloat16 is its own NumPy extension type; ml_dtypes' is the common one.
    import ml_dtypes

    BFLOAT16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BFLOAT16 = None

#: The ``tensor_type`` of a string entry (``append_dict`` values that are ``str``), serialization.py line 778.
STR_TYPE = "str"

# serialization.py lines 84-90: the tensor_type strings MindSpore loads, as NumPy dtypes.
_CKPT_TO_NUMPY: dict[str, np.dtype] = {
    "Int8": np.dtype(np.int8), "UInt8": np.dtype(np.uint8), "Int16": np.dtype(np.int16),
    "UInt16": np.dtype(np.uint16), "Int32": np.dtype(np.int32), "UInt32": np.dtype(np.uint32),
    "Int64": np.dtype(np.int64), "UInt64": np.dtype(np.uint64), "Float16": np.dtype(np.float16),
    "Float32": np.dtype(np.float32), "Float64": np.dtype(np.float64), "Bool": np.dtype(np.bool_),
}
if BFLOAT16 is not None:
    _CKPT_TO_NUMPY["BFloat16"] = BFLOAT16

# What str(dtype) of a mindspore Tensor gives, i.e. what save_checkpoint writes (serialization.py line 794).
_NUMPY_TO_CKPT: dict[np.dtype, str] = {dtype: name for name, dtype in _CKPT_TO_NUMPY.items()}

# transform_safetensors.py lines 90-103 (numpy_dtype) plus BF16 (lines 272-280).
SAFETENSORS_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8), "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16), "I32": np.dtype(np.int32), "U32": np.dtype(np.uint32),
    "I64": np.dtype(np.int64), "U64": np.dtype(np.uint64), "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
}
if BFLOAT16 is not None:
    SAFETENSORS_TO_NUMPY["BF16"] = BFLOAT16


def ckpt_type_of(dtype: Any) -> str:
    """The ``tensor_type`` MindSpore writes for an array of ``dtype`` (``float32`` -> ``"Float32"``).

    ``TypeError`` for a dtype MindSpore cannot load back (complex, strings, objects, ...).
    """
    name = _NUMPY_TO_CKPT.get(np.dtype(dtype))
    if name is None:
        raise TypeError(f"For 'save_checkpoint', arrays of dtype {np.dtype(dtype)} cannot be saved: MindSpore's "
                        f"checkpoints hold {', '.join(sorted(_CKPT_TO_NUMPY))}.")
    return name


def numpy_dtype_of_ckpt_type(tensor_type: str) -> np.dtype:
    """The NumPy dtype of a ``.ckpt`` ``tensor_type``; ``ValueError`` for one MindSpore does not load."""
    dtype = _CKPT_TO_NUMPY.get(tensor_type)
    if dtype is not None:
        return dtype
    if tensor_type == "BFloat16":  # MindSpore: TypeError without its NumPy bfloat16 (line 119)
        raise TypeError("The NumPy bfloat16 data type needs the 'ml_dtypes' package to load a BFloat16 tensor.")
    if tensor_type == "Int4":
        raise ValueError("Int4 (qint4x2) tensors are MindSpore's packed quantized type; msadam_compat cannot "
                         "load them.")
    known = ", ".join(sorted(_CKPT_TO_NUMPY))
    raise ValueError(f"Unknown tensor_type {tensor_type!r}: MindSpore checkpoints hold {known} or {STR_TYPE!r}.")


def numpy_dtype_of_safetensors_type(name: str) -> np.dtype:
    """The NumPy dtype of a safetensors dtype name; ``ValueError`` for one MindSpore does not load."""
    dtype = SAFETENSORS_TO_NUMPY.get(name)
    if dtype is not None:
        return dtype
    if name == "BF16":
        raise TypeError("The NumPy bfloat16 data type needs the 'ml_dtypes' package to load a BF16 tensor.")
    raise ValueError(f"Safetensors dtype {name!r} is not one MindSpore 2.10 loads ({', '.join(SAFETENSORS_TO_NUMPY)}).")
