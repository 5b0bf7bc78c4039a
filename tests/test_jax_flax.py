"""msadam_jax.adam in a flax (linen) training loop: names from the module tree, MindSpore's numbers.

A small flax model (Dense, LayerNorm, Embed) is trained under ``jax.jit`` with
``msadam_jax.adam``; the same steps through ``msadam.Adam`` on the NumPy reference backend, with
the parameters named by :func:`msadam_jax.mindspore_names`, give the same state bit for bit at a
small learning rate. flax's ``LayerNorm_0.scale``/``bias`` are MindSpore's ``gamma``/``beta``, so the
default filter exempts them from weight decay.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
nn = pytest.importorskip("flax.linen")

import jax.numpy as jnp  # noqa: E402
import msadam_jax  # noqa: E402

import msadam  # noqa: E402

STEPS = 8


class Model(nn.Module):  # type: ignore[misc]
    """Embedding lookup, a Dense layer, a LayerNorm and a Dense head."""

    @nn.compact
    def __call__(self, tokens: Any) -> Any:
        x = nn.Embed(num_embeddings=11, features=6)(tokens).mean(axis=1)
        x = nn.LayerNorm()(nn.relu(nn.Dense(13)(x)))
        return nn.Dense(1)(x)[:, 0]


def _data(steps: int = STEPS, batches: int = STEPS) -> list[tuple[np.ndarray, np.ndarray]]:
    """``steps`` batches, cycling through ``batches`` different ones."""
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, 11, (4, 3)).astype(np.int32), rng.standard_normal(4).astype(np.float32))
            for _ in range(batches)]
    return [data[i % batches] for i in range(steps)]


def _loss(params: Any, tokens: Any, target: Any) -> Any:
    return jnp.mean((Model().apply({"params": params}, tokens) - target) ** 2)


def _train(kwargs: dict[str, Any], data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Any, Any, list[Any]]:
    """Train from the model's initial params; returns them, the final ``(params, state)`` and the gradients.

    With a ``loss_scale``, the loss is multiplied by it before differentiation, as MindSpore's
    loss-scaled training step does (``msadam_jax.adam`` divides it out again).
    """
    params = Model().init(jax.random.key(0), jnp.zeros((4, 3), jnp.int32))["params"]
    tx = msadam_jax.adam(**kwargs)
    state = tx.init(params)
    scale = np.float32(kwargs.get("loss_scale", 1.0))

    @jax.jit
    def step(params: Any, state: Any, tokens: Any, target: Any) -> Any:
        grads = jax.grad(lambda p: _loss(p, tokens, target) * scale)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, grads

    start, grads_seen = params, []
    for tokens, target in data:
        params, state, grads = step(params, state, tokens, target)
        grads_seen.append(grads)
    return start, (params, state), grads_seen


KWARGS = [
    {"learning_rate": 1e-3, "weight_decay": 1e-2},
    {"learning_rate": msadam.PolynomialDecayLR(1e-3, 1e-4, 5, 0.5), "use_nesterov": True, "weight_decay": 1e-3},
    {"learning_rate": 1e-3, "use_amsgrad": True, "loss_scale": 8.0, "weight_decay": 1e-3},
]


@pytest.mark.parametrize("kwargs", KWARGS, ids=["decay", "schedule-nesterov", "amsgrad-loss-scale"])
def test_flax_training_matches_msadam_reference(kwargs: dict[str, Any]) -> None:
    start, (params, state), grads_seen = _train(kwargs, _data())
    names = msadam_jax.mindspore_names(start)
    assert names["LayerNorm_0"] == {"scale": "LayerNorm_0.gamma", "bias": "LayerNorm_0.beta"}
    assert names["Embed_0"] == {"embedding": "Embed_0.embedding_table"}  # MindSpore's nn.Embedding
    reference = [msadam.Parameter(np.asarray(w), name=n, backend="numpy")
                 for n, w in zip(jax.tree.leaves(names), jax.tree.leaves(start), strict=True)]
    opt = msadam.Adam(reference, **kwargs)
    for grads in grads_seen:  # the very gradients flax computed
        opt(tuple(np.asarray(g) for g in jax.tree.leaves(grads)))
    expected = opt.state_dict()
    got = msadam_jax.to_mindspore(state, params)
    assert list(got) == [k for k in expected if k != "learning_rate"]
    for name, value in got.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_layer_norm_takes_no_weight_decay() -> None:
    """With zero gradients only weight decay moves a parameter: LayerNorm's gamma/beta stay put."""
    params = Model().init(jax.random.key(0), jnp.zeros((4, 3), jnp.int32))["params"]
    tx = msadam_jax.adam(learning_rate=1e-2, weight_decay=0.5)
    updates, _ = jax.jit(tx.update)(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    moved = jax.tree.map(lambda u: bool(jnp.any(u != 0)), updates)
    assert moved["LayerNorm_0"] == {"scale": False, "bias": False}
    assert moved["Dense_0"]["kernel"] and moved["Embed_0"]["embedding"]


def test_flax_training_reduces_the_loss() -> None:
    _, (params, _), _ = _train({"learning_rate": 3e-2}, _data(steps=30, batches=1))
    tokens, target = _data()[0]
    start = Model().init(jax.random.key(0), jnp.zeros((4, 3), jnp.int32))["params"]
    assert float(_loss(params, tokens, target)) < float(_loss(start, tokens, target))
