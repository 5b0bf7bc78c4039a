"""The ``msadam.backends`` entry point of msadam-torch: announces the backend without importing torch."""

from __future__ import annotations

from msadam.backend import Backend, BackendSpec
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_torch.backend import TorchBackend  # imports torch: only when the backend is first used

    return TorchBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The PyTorch backend."""
    return [BackendSpec("torch", _load, array_modules=("torch",), distribution="msadam-torch")]
