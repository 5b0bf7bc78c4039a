"""``msadam_tensorflow.Adam`` under ``tf.distribute.MirroredStrategy`` over 2 logical CPU devices.

Logical devices must be configured before TensorFlow starts, so the runs happen in a subprocess
that runs this file as a script and prints JSON. The mirrored run splits each batch over the two
replicas and all-reduces their gradients, which sums in another order than one device does: for an
ordinary model the results agree to float32 rounding (1e-6 relative), not bit for bit. Where every
gradient element comes from one sample (one-hot inputs, distinct embedding rows), no sum is
re-ordered and the mirrored run equals the single-device run bit for bit — dense and
``tf.IndexedSlices`` (lazy sparse) updates alike. The optimizer state stays identical on both
replicas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")

KINDS = ["ordinary", "one-hot", "embedding"]


def _model(kind: str) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """A model, its optimizer and data: ``ordinary``; ``one-hot`` (a bias-free Dense on one-hot rows);
    ``embedding`` (the sum of each id's embedding row, ids distinct within a batch, lazy sparse Adam)."""
    import keras
    import msadam_tensorflow

    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(0)
    if kind == "ordinary":
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="dense"),
                                  keras.layers.LayerNormalization(name="ln"), keras.layers.Dense(1, name="head")])
        optimizer = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=1e-3, use_nesterov=True)
        x = rng.standard_normal((64, 4)).astype(np.float32)
        return model, optimizer, x, x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    if kind == "one-hot":
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(1, use_bias=False, name="dense")])
        optimizer = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=1e-3, use_nesterov=True)
        return model, optimizer, np.tile(np.eye(16, dtype=np.float32), (4, 1)), y
    inputs = keras.Input((1,), dtype="int32")
    rows = keras.layers.Embedding(64, 4, name="embedding")(inputs)
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: keras.ops.sum(t, axis=(1, 2))[:, None])(rows))
    optimizer = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=1e-3, use_lazy=True)
    return model, optimizer, rng.permutation(64).astype(np.int32)[:, None], y


def _train(strategy: Any, kind: str) -> list[Any]:
    with strategy.scope():
        model, optimizer, x, y = _model(kind)
        model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    # Keras wraps each tf.Variable (under the strategy, a MirroredVariable) in `.value`.
    replicas = [[np.asarray(t).tolist() for t in strategy.experimental_local_results(v.value)]
                for v in optimizer.variables]
    return [[v.numpy().tolist() for v in model.trainable_variables], replicas]


def main(kind: str) -> None:
    """One kind per process: a second MirroredStrategy in a process reuses collective instance keys."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    single = _train(tf.distribute.get_strategy(), kind)
    mirrored = _train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), kind)
    print(json.dumps({"devices": len(tf.config.list_logical_devices("CPU")), "single": single, "mirrored": mirrored}))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for kind in KINDS:
        done = subprocess.run([sys.executable, __file__, kind], capture_output=True, text=True, env=dict(os.environ),
                              timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        runs[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return runs


def test_mirrored_training_matches_single_device(report: dict[str, Any]) -> None:
    assert all(run["devices"] == 2 for run in report.values())
    run = report["ordinary"]
    for single, mirrored in zip(run["single"][0], run["mirrored"][0], strict=True):
        single, mirrored = np.asarray(single), np.asarray(mirrored)
        assert np.max(np.abs(single - mirrored)) <= 1e-6 * np.max(np.abs(single))


@pytest.mark.parametrize("kind", ["one-hot", "embedding"])
def test_mirrored_training_equals_single_device_when_no_sum_is_reordered(report: dict[str, Any], kind: str) -> None:
    run = report[kind]
    for single, mirrored in zip(run["single"][0], run["mirrored"][0], strict=True):
        np.testing.assert_array_equal(np.asarray(mirrored), np.asarray(single))
    for single, mirrored in zip(run["single"][1], run["mirrored"][1], strict=True):  # the optimizer state too
        np.testing.assert_array_equal(np.asarray(mirrored[0]), np.asarray(single[0]))


@pytest.mark.parametrize("kind", KINDS)
def test_replicas_hold_the_same_optimizer_state(report: dict[str, Any], kind: str) -> None:
    for values in report[kind]["mirrored"][1]:  # moments, beta powers, iterations, learning rate
        assert len(values) == 2  # one copy per replica
        np.testing.assert_array_equal(np.asarray(values[1]), np.asarray(values[0]))


if __name__ == "__main__":
    main(sys.argv[1])
