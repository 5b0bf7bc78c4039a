"""Hand-built checkpoint files for the checkpoint tests (not a package module: ``import checkpoint_files``).

Built with ``msadam_compat.checkpoint.schema`` (MindSpore's ``checkpoint.proto``), so importing this
needs ``msadam-compat`` and protobuf: import it after the tests' ``importorskip`` lines.
"""

from __future__ import annotations

import numpy as np
from msadam_compat.checkpoint import schema


def map_tensor_checkpoint() -> bytes:
    """A MapParameter entry ``emb`` in two slices (keys, values, status), as MindSpore writes one, and a tensor ``w``.

    MindSpore 2.10 loads ``emb`` as keys ``[10, 11, 20, 21, 22]``, values two rows of 1s then three of
    2s (float32, 2 columns), status zeros; ``w`` is ``[1, 1]`` (float32).
    """
    message = schema.Checkpoint()
    for index, rows in enumerate((2, 3), start=1):
        value = message.value.add(tag="emb")
        keys = np.arange(rows, dtype=np.int32) + 10 * index
        for array in (keys, np.full((rows, 2), index, np.float32), np.zeros(rows, np.int32)):
            tensor = value.maptensor.tensor.add(tensor_type=str(array.dtype), tensor_content=array.tobytes())
            tensor.dims.extend(array.shape)
    value = message.value.add(tag="w")
    value.tensor.dims.extend([2])
    value.tensor.tensor_type, value.tensor.tensor_content = "Float32", np.ones(2, np.float32).tobytes()
    return bytes(message.SerializeToString())
