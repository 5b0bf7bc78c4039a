"""The PyTorch backend: MindSpore's Adam on ``torch.Tensor`` (``nn.Parameter`` included), CPU or CUDA.

Parameters are the user's tensors — usually ``nn.Parameter``s held by modules — so
:meth:`TorchBackend.new_bucket` never re-homes them: every step updates them in place under
``torch.no_grad()`` and the objects (and their ``requires_grad``) stay the same. The optimizer state
(``m``, ``v``, ``vhat``) is zeros like each parameter: same device and dtype, contiguous. The
kernels are in :mod:`msadam_torch.kernels`; on the CPU they reproduce the NumPy reference (and so
MindSpore's rounding) to the last bit for float32.

New tensors made from NumPy values (``Parameter(numpy_array, backend="torch")``, NumPy gradients)
live on the backend's default device: ``TorchBackend(device=...)``, else the ``MSADAM_TORCH_DEVICE``
environment variable (``"cuda:0"``), else the CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
import torch

from msadam.backend import Bucket, SparseGrad, StepHyper
from msadam.tensor import RowTensor
from msadam_torch import kernels

__all__ = ["ENV_DEVICE", "TorchBackend"]

ENV_DEVICE = "MSADAM_TORCH_DEVICE"


def _bfloat16() -> np.dtype:
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError("torch.bfloat16 has no NumPy dtype without the ml_dtypes package "
                        "(pip install ml_dtypes), so msadam cannot read or check bfloat16 tensors.") from None
    return np.dtype(ml_dtypes.bfloat16)


@functools.cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a torch dtype (``torch.bfloat16`` through ``ml_dtypes``)."""
    if dtype == torch.bfloat16:
        return _bfloat16()
    try:
        return np.dtype(torch.empty(0, dtype=dtype).numpy().dtype)
    except (TypeError, RuntimeError) as exc:
        raise TypeError(f"{dtype} has no NumPy equivalent: {exc}") from None


@functools.cache
def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype of a NumPy dtype (``ml_dtypes.bfloat16`` included)."""
    if dtype.name == "bfloat16":
        return torch.bfloat16
    try:
        return torch.from_numpy(np.empty(0, dtype)).dtype
    except TypeError as exc:
        raise TypeError(f"NumPy dtype {dtype} has no torch equivalent: {exc}") from None


class TorchBackend:
    """MindSpore's Adam on ``torch.Tensor``s (see the module docstring)."""

    name = "torch"

    def __init__(self, device: str | torch.device | None = None) -> None:
        self._device = None if device is None else torch.device(device)

    @property
    def device(self) -> torch.device:
        """Where :meth:`from_numpy` puts new tensors: the constructor's, ``$MSADAM_TORCH_DEVICE``, or the CPU."""
        if self._device is not None:
            return self._device
        return torch.device(os.environ.get(ENV_DEVICE) or "cpu")

    def version(self) -> str:
        return str(torch.__version__)

    def devices(self) -> list[str]:
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append("mps")
        return found

    def owns(self, array: object) -> bool:
        return isinstance(array, torch.Tensor)

    def from_numpy(self, array: np.ndarray) -> torch.Tensor:
        copy = np.array(array, copy=True, order="C")
        if copy.dtype.name == "bfloat16":  # torch.from_numpy does not know ml_dtypes' bfloat16
            tensor = torch.from_numpy(copy.view(np.int16)).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(copy)
        device = self.device
        if device.type == "cpu":
            return tensor
        try:
            return tensor.to(device)
        except (AssertionError, RuntimeError) as exc:  # e.g. "Torch not compiled with CUDA enabled"
            source = "TorchBackend(device=...)" if self._device is not None else f"${ENV_DEVICE}"
            raise RuntimeError(f"The torch backend cannot put new tensors on {device} (from {source}): {exc}") from exc

    def all_finite(self, arrays: Sequence[torch.Tensor]) -> bool:
        """Whether every element of every array is finite, read back once (``msadam_compat.amp.all_finite``)."""
        checks = [torch.isfinite(a.coalesce().values() if a.layout == torch.sparse_coo else a).all() for a in arrays]
        return bool(torch.stack(checks).all()) if checks else True

    def to_numpy(self, array: torch.Tensor) -> np.ndarray:
        tensor = array.detach()
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        tensor = tensor.cpu()
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(_bfloat16())
        return tensor.numpy()

    def synchronize(self, arrays: Sequence[torch.Tensor]) -> None:
        """Wait for the queued work of the accelerators these tensors live on (CPU work is synchronous)."""
        for device in {t.device for t in arrays}:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elif device.type != "cpu":  # torch.mps.synchronize(), torch.xpu.synchronize(), ...
                sync = getattr(getattr(torch, device.type, None), "synchronize", None)
                if sync is not None:
                    sync()

    def allocator_memory(self, reset: bool = False) -> tuple[int, int] | None:
        """The CUDA caching allocator's statistics for the default device; None on the CPU (torch keeps none)."""
        device = self.device
        if device.type != "cuda":
            return None
        if reset:
            torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device)), int(torch.cuda.max_memory_allocated(device))

    def shape(self, array: torch.Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in array.shape)

    def dtype(self, array: torch.Tensor) -> np.dtype:
        return _numpy_dtype(array.dtype)

    def cast(self, array: torch.Tensor, dtype: np.dtype) -> torch.Tensor:
        target = _torch_dtype(np.dtype(dtype))
        return array if array.dtype == target else array.to(target)

    def assign(self, target: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target.copy_(value)
        return target

    def new_bucket(self, params: Sequence[torch.Tensor], use_amsgrad: bool) -> Bucket:
        def zeros() -> list[torch.Tensor]:
            return [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in params]

        for p in params:
            if not isinstance(p, torch.Tensor) or p.layout != torch.strided:
                raise TypeError(f"A torch parameter must be a dense (strided) torch.Tensor, got {p!r:.80}.")
        return Bucket(list(params), zeros(), zeros(), zeros() if use_amsgrad else None)

    def dense_step(self, bucket: Bucket, grads: Sequence[torch.Tensor], hyper: StepHyper) -> None:
        kernels.dense_step(bucket.params, grads, bucket.m, bucket.v, bucket.vhat, hyper, bucket.cache)

    def as_row_tensor(self, grad: object) -> RowTensor | None:
        """A row-sparse COO tensor (``nn.Embedding(sparse=True)``'s gradient) as a RowTensor, rows kept as
        they are (uncoalesced: one per lookup)."""
        if isinstance(grad, torch.Tensor) and grad.layout == torch.sparse_coo and grad.sparse_dim() == 1:
            return RowTensor(*kernels.coo_to_row_parts(grad), tuple(grad.shape))
        return None

    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        kernels.sparse_step_(bucket.params[index], bucket.m[index], bucket.v[index], grad, hyper)

    def __repr__(self) -> str:
        return f"TorchBackend(device={str(self.device)!r})"

