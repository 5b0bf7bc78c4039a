"""The ``msadam.backends`` entry point of msadam-jax: announces the backend without importing JAX."""

from __future__ import annotations

from msadam.backend import Backend, BackendSpec
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_jax.backend import JaxBackend  # imports jax: only when the backend is first used

    return JaxBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The JAX backend (``jax.Array``; ``jaxlib`` arrays are the same type)."""
    return [BackendSpec("jax", _load, array_modules=("jax", "jaxlib"), distribution="msadam-jax")]
