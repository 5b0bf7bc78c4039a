"""The ``msadam.backends`` entry point of msadam-tensorflow: announces the backend without importing TensorFlow."""

from __future__ import annotations

import numpy as np

from msadam.backend import Backend, BackendSpec
from msadam.benchmarking import BenchBaseline, BenchStep
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_tensorflow.backend import TensorflowBackend  # imports TensorFlow: only when first used

    return TensorflowBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The TensorFlow backend (``tf.Variable`` parameters, ``tf.Tensor`` gradients)."""
    return [BackendSpec("tensorflow", _load, array_modules=("tensorflow", "keras"), distribution="msadam-tensorflow")]


def _keras_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    from msadam_tensorflow.bench import keras_adam  # imports TensorFlow and Keras: only when msadam bench runs it

    return keras_adam(params, grads)


@hookimpl
def msadam_bench_baselines() -> list[BenchBaseline]:
    """What ``msadam bench`` compares the tensorflow backend with."""
    return [BenchBaseline("tensorflow", "keras.optimizers.Adam (jit)", _keras_adam)]
