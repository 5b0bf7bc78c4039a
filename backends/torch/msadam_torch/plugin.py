"""The ``msadam.backends`` entry point of msadam-torch: announces the backend without importing torch."""

from __future__ import annotations

import numpy as np

from msadam.backend import Backend, BackendSpec
from msadam.benchmarking import BenchBaseline, BenchStep
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_torch.backend import TorchBackend  # imports torch: only when the backend is first used

    return TorchBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The PyTorch backend."""
    return [BackendSpec("torch", _load, array_modules=("torch",), distribution="msadam-torch")]


def _fused_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    from msadam_torch.bench import fused_adam  # imports torch: only when msadam bench runs it

    return fused_adam(params, grads)


@hookimpl
def msadam_bench_baselines() -> list[BenchBaseline]:
    """What ``msadam bench`` compares the torch backend with."""
    return [BenchBaseline("torch", "torch.optim.Adam(fused)", _fused_adam)]
