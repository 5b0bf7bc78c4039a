"""``msadam bench``'s baseline for the torch backend: ``torch.optim.Adam(fused=True)``.

Imported only when the bench calls the factory (``msadam_torch.plugin`` announces it lazily).
"""

from __future__ import annotations

import numpy as np
import torch

from msadam.benchmarking import LEARNING_RATE, BenchStep
from msadam_torch.backend import TorchBackend

__all__ = ["fused_adam"]


def fused_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    """``torch.optim.Adam(fused=True)`` on copies of ``params`` with ``grads`` as their ``.grad``.

    The tensors live on the torch backend's default device (``$MSADAM_TORCH_DEVICE``, else the CPU),
    like msadam's side; the optimizer state appears in the first step, as torch.optim makes it.
    """
    backend = TorchBackend()
    tensors = [torch.nn.Parameter(backend.from_numpy(p)) for p in params]
    for tensor, grad in zip(tensors, grads, strict=True):
        tensor.grad = backend.from_numpy(grad)
    optimizer = torch.optim.Adam(tensors, lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1e-8, fused=True)
    return BenchStep(optimizer.step, lambda: backend.synchronize(tensors))
