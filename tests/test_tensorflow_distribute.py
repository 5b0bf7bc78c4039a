"""``msadam_tensorflow.Adam`` under ``tf.distribute.MirroredStrategy`` over 2 logical CPU devices.

Logical devices must be configured before TensorFlow starts, so the runs happen in a subprocess
that runs this file as a script and prints JSON. The mirrored run splits each batch over the two
replicas and all-reduces their gradients, which sums in another order than one device does: the
results agree to float32 rounding (1e-6 relative), not bit for bit, and the optimizer state stays
identical on both replicas.
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


def _train(strategy: Any) -> list[Any]:
    import keras
    import msadam_tensorflow

    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="dense"),
                                  keras.layers.LayerNormalization(name="ln"), keras.layers.Dense(1, name="head")])
        optimizer = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=1e-3, use_nesterov=True)
        model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).standard_normal((64, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    # Keras wraps each tf.Variable (under the strategy, a MirroredVariable) in `.value`.
    replicas = [[np.asarray(t).tolist() for t in strategy.experimental_local_results(v.value)]
                for v in optimizer.variables]
    return [[v.numpy().tolist() for v in model.trainable_variables], replicas]


def main() -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    single = _train(tf.distribute.get_strategy())
    mirrored = _train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({"devices": len(tf.config.list_logical_devices("CPU")), "single": single,
                      "mirrored": mirrored}))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=dict(os.environ),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_mirrored_training_equals_single_device(report: dict[str, Any]) -> None:
    assert report["devices"] == 2
    for single, mirrored in zip(report["single"][0], report["mirrored"][0], strict=True):
        single, mirrored = np.asarray(single), np.asarray(mirrored)
        assert np.max(np.abs(single - mirrored)) <= 1e-6 * np.max(np.abs(single))


def test_replicas_hold_the_same_optimizer_state(report: dict[str, Any]) -> None:
    for values in report["mirrored"][1]:  # moments, vhat-less Adam's beta powers, iterations, learning rate
        assert len(values) == 2  # one copy per replica
        np.testing.assert_array_equal(np.asarray(values[1]), np.asarray(values[0]))


if __name__ == "__main__":
    main()
