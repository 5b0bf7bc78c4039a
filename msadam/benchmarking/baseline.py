"""What a plugin contributes to ``msadam bench``: a framework's own Adam to compare msadam with.

A plugin's ``msadam_bench_baselines`` hook (see [`msadam.hookspecs`][msadam.hookspecs]) returns
[`BenchBaseline`][msadam.benchmarking.baseline.BenchBaseline] objects. Each names the msadam backend it pairs with and a
``factory`` that the bench calls with the parameters and gradients of one grid point, as float32 NumPy arrays (1-D
here, but a factory should accept any shape). The factory converts them to its framework's arrays
and returns a [`BenchStep`][msadam.benchmarking.baseline.BenchStep] (or a plain zero-argument callable, for a
synchronous framework) that runs one step of the framework's Adam with learning rate
[`LEARNING_RATE`][msadam.benchmarking.baseline.LEARNING_RATE] and the default ``beta1=0.9, beta2=0.999, eps=1e-8``.

The factory must import its framework itself (the plugin module must not), and should leave the
optimizer state to the first ``step()`` (``torch.optim`` does so on its own; ``optax``'s
``init`` or a Keras optimizer's ``build`` belong in the first call): the bench counts memory
from the moment the factory returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["LEARNING_RATE", "BenchBaseline", "BenchStep", "as_bench_step"]

LEARNING_RATE = 1e-3
"""The learning rate of both sides of the comparison; every other hyper-parameter is the default."""


@dataclass(frozen=True)
class BenchStep:
    """One optimizer, ready to step.

    ``step()`` runs one optimizer step; ``sync()``, when given, returns only once the work that
    ``step()`` started has finished (asynchronous frameworks: ``jax.block_until_ready``, a CUDA
    synchronize), so the time of a step includes it. Calling the object does both.
    """

    step: Callable[[], object]
    sync: Callable[[], object] | None = None

    def __call__(self) -> None:
        self.step()
        if self.sync is not None:
            self.sync()


Factory = Callable[[list[np.ndarray], list[np.ndarray]], "BenchStep | Callable[[], object]"]


@dataclass(frozen=True)
class BenchBaseline:
    """A framework's own Adam, timed by ``msadam bench`` next to ``msadam.Adam`` on ``backend``.

    ``backend`` is the msadam backend name it pairs with (``"torch"``); ``label`` is what the
    table prints (``"torch.optim.Adam(fused)"``); ``factory(params, grads)`` is described in this
    module's docstring.
    """

    backend: str
    label: str
    factory: Factory


def as_bench_step(made: object) -> BenchStep:
    """What a factory returned, as a :class:`BenchStep` (``TypeError`` if it is neither that nor callable)."""
    if isinstance(made, BenchStep):
        return made
    if callable(made):
        return BenchStep(made)
    raise TypeError(f"a bench factory must return a BenchStep or a callable, not {type(made).__name__}")
