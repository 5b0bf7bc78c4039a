"""JAX at scale: the step on parameters sharded over 4 host devices equals the unsharded step.

XLA's host device count is fixed when JAX starts, so the sharded runs happen in a subprocess
started with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``; it runs this file as a script
(:func:`main`) and prints its findings as JSON. Both ways of using the backend are covered:
``msadam.Adam`` on ``jax.Array`` parameters (dense and row-sparse steps, donation keeps each
array's sharding) and ``msadam_jax.adam`` under ``jax.jit`` with sharded params, grads and state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

DEVICES = 4
STEPS = 6
# Row counts divisible by 4 (sharded along rows); sizes with and without a scalar tail (size % 8).
SHAPES = {"embedding_table": (64, 12), "dense.weight": (16, 5), "dense.bias": (13,), "ln.gamma": (20,)}


def _inputs(seed: int = 0) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    params = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
    grads = [{name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
             for _ in range(STEPS)]
    return params, grads


def _spec(array: Any) -> str:
    """The partition spec of a sharded array ("P('rows',)"), or its device for a single-device one."""
    spec = getattr(array.sharding, "spec", None)
    return str(spec) if spec is not None else str(array.sharding)


def _run_adam(params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]], place: Any) -> dict[str, Any]:
    """msadam.Adam on the jax backend; ``place(name, array)`` puts an array on its devices."""
    import msadam

    names = list(params)
    ps = [msadam.Parameter(place(name, params[name]), name=name) for name in names]
    opt = msadam.Adam(ps, learning_rate=msadam.ExponentialDecayLR(0.01, 0.9, 3), weight_decay=1e-3,
                      use_nesterov=True)
    rng = np.random.default_rng(1)
    for step, grad in enumerate(grads):
        if step % 2:  # a row-sparse step of the (row-sharded) embedding table
            idx = rng.integers(0, SHAPES["embedding_table"][0], size=10)
            values = rng.standard_normal((10, SHAPES["embedding_table"][1])).astype(np.float32)
            table_grad: Any = msadam.RowTensor(idx, values, SHAPES["embedding_table"])
        else:
            table_grad = place("embedding_table", grad["embedding_table"])
        opt(tuple(table_grad if name == "embedding_table" else place(name, grad[name]) for name in names))
    shardings = {p.name: _spec(p.data) for p in ps}
    return {"state": {k: v.tolist() for k, v in opt.state_dict().items()}, "shardings": shardings}


def _run_transform(params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]], place: Any) -> dict[str, Any]:
    """msadam_jax.adam in a jitted, donating training step."""
    import jax
    import msadam_jax
    import optax

    tx = msadam_jax.adam(learning_rate=1e-2, weight_decay=1e-3, use_amsgrad=True)
    p = {name: place(name, value) for name, value in params.items()}
    state = tx.init(p)

    @jax.jit
    def step(p: Any, state: Any, g: Any) -> Any:
        updates, state = tx.update(g, state, p)
        return optax.apply_updates(p, updates), state

    for grad in grads:
        p, state = step(p, state, {name: place(name, value) for name, value in grad.items()})
    out = msadam_jax.to_mindspore(state, p)
    return {"state": {k: v.tolist() for k, v in out.items()},
            "shardings": {name: _spec(value) for name, value in p.items()}}


def main() -> None:
    """The subprocess: the same runs unsharded and sharded over 4 devices; JSON on stdout."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import msadam

    msadam.set_backend("jax")
    mesh = Mesh(np.array(jax.devices()[:DEVICES]), ("rows",))

    def sharded(name: str, value: np.ndarray) -> Any:
        spec = PartitionSpec("rows") if value.shape[0] % DEVICES == 0 else PartitionSpec()  # 13 rows: replicated
        return jax.device_put(value, NamedSharding(mesh, spec))

    def single(name: str, value: np.ndarray) -> Any:
        return jax.device_put(value, jax.devices()[0])

    params, grads = _inputs()
    report = {"devices": len(jax.devices())}
    for label, run in (("adam", _run_adam), ("transform", _run_transform)):
        report[label] = {"single": run(params, grads, single), "sharded": run(params, grads, sharded)}
    print(json.dumps(report))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_four_host_devices(report: dict[str, Any]) -> None:
    assert report["devices"] == DEVICES


@pytest.mark.parametrize("api", ["adam", "transform"])
def test_sharded_step_equals_unsharded(report: dict[str, Any], api: str) -> None:
    single, sharded = report[api]["single"]["state"], report[api]["sharded"]["state"]
    assert single.keys() == sharded.keys()
    for name in single:
        np.testing.assert_array_equal(np.asarray(sharded[name]), np.asarray(single[name]), err_msg=name)


@pytest.mark.parametrize("api", ["adam", "transform"])
def test_parameters_keep_their_sharding(report: dict[str, Any], api: str) -> None:
    shardings = report[api]["sharded"]["shardings"]
    assert shardings["embedding_table"] == shardings["dense.weight"] == "P('rows',)"
    assert shardings["dense.bias"] == "P()"  # 13 rows: replicated, and still so


if __name__ == "__main__":
    main()
