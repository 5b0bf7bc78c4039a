"""The ``msadam.backends`` entry point of msadam-jax: announces the backend without importing JAX."""

from __future__ import annotations

import numpy as np

from msadam.backend import Backend, BackendSpec
from msadam.benchmarking import BenchBaseline, BenchStep
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_jax.backend import JaxBackend  # imports jax: only when the backend is first used

    return JaxBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The JAX backend (``jax.Array``; ``jaxlib`` arrays are the same type)."""
    return [BackendSpec("jax", _load, array_modules=("jax", "jaxlib"), distribution="msadam-jax")]


def _optax_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    from msadam_jax.bench import optax_adam  # imports jax and optax: only when msadam bench runs it

    return optax_adam(params, grads)


@hookimpl
def msadam_bench_baselines() -> list[BenchBaseline]:
    """What ``msadam bench`` compares the jax backend with."""
    return [BenchBaseline("jax", "optax.adam (jit)", _optax_adam)]
