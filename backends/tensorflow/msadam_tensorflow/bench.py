"""``msadam bench``'s baseline for the tensorflow backend: ``keras.optimizers.Adam``, jit-compiled.

Imported only when the bench calls the factory (``msadam_tensorflow.plugin`` announces it lazily).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from msadam.benchmarking import LEARNING_RATE, BenchStep

__all__ = ["keras_adam"]


def keras_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    """``keras.optimizers.Adam.apply`` in a ``tf.function(jit_compile=True)`` on ``keras.Variable``s.

    ``epsilon=1e-8`` as on msadam's side (Keras' default is 1e-7); the optimizer is built (its
    state made) in the first step. The step is waited for by reading one element of a variable.
    """
    import keras

    variables = [keras.Variable(p) for p in params]
    native_grads = [tf.constant(g) for g in grads]
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    compiled = tf.function(lambda: optimizer.apply(native_grads, variables), jit_compile=True)
    built: list[Any] = []

    def step() -> None:
        if not built:
            optimizer.build(variables)
            built.append(True)
        compiled()

    def sync() -> None:
        tf.reshape(variables[-1].value, [-1])[:1].numpy()

    return BenchStep(step, sync)
