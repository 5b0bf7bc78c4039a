"""``msadam bench``'s baseline for the jax backend: ``optax.adam`` in a jitted step that donates.

Imported only when the bench calls the factory (``msadam_jax.plugin`` announces it lazily).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from msadam.benchmarking import LEARNING_RATE, BenchStep

__all__ = ["optax_adam"]


def optax_adam(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
    """``optax.adam`` (``u, s = tx.update(g, s, p); p = apply_updates(p, u)``) under ``jax.jit``,
    donating the parameters and the state, as a training step would; ``tx.init`` runs in the first step.
    """
    import optax

    tx = optax.adam(LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-8)

    def update(p: list[jax.Array], s: Any, g: list[jax.Array]) -> tuple[list[jax.Array], Any]:
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    jitted = jax.jit(update, donate_argnums=(0, 1))
    box: dict[str, Any] = {"p": [jax.device_put(np.array(p, copy=True)) for p in params], "s": None}
    native_grads = [jax.device_put(np.array(g, copy=True)) for g in grads]

    def step() -> None:
        if box["s"] is None:
            box["s"] = tx.init(box["p"])
        box["p"], box["s"] = jitted(box["p"], box["s"], native_grads)

    return BenchStep(step, lambda: jax.block_until_ready(box["p"]))
