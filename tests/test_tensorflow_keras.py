"""``msadam_tensorflow.Adam``, the Keras 3 optimizer: MindSpore's numbers in ``apply`` and ``model.fit``.

The updates equal ``msadam.Adam`` on the NumPy reference bit for bit, eagerly, in a graph and under
XLA; Keras's norm layers (``gamma``/``beta``) take no weight decay; arguments are checked with
MindSpore's exception classes; the configuration and the optimizer state round-trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("msadam_tensorflow.Adam needs Keras's TensorFlow backend", allow_module_level=True)

import msadam_tensorflow  # noqa: E402

import msadam  # noqa: E402

SHAPES = {"dense/kernel": (5, 3), "dense/bias": (3,), "layer_normalization/gamma": (3,),
          "layer_normalization/beta": (3,), "head/kernel": (3, 1), "head/bias": (1,)}
CONFIGS = [{}, {"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 8.0},
           {"use_amsgrad": True, "learning_rate": 0.05, "weight_decay": 1e-3}]


def _model() -> Any:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="dense"),
                             keras.layers.LayerNormalization(name="ln"), keras.layers.Dense(1, name="head")],
                            name="net")  # an explicit name: Keras numbers unnamed models per process


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("kwargs", CONFIGS, ids=["default", "nesterov-decay-scale", "amsgrad"])
def test_apply_matches_the_reference(kwargs: dict[str, Any], mode: str) -> None:
    rng = np.random.default_rng(0)
    values = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
    variables = [keras.Variable(v, name=name.split("/")[-1]) for name, v in values.items()]
    names = [name.replace("/", ".") for name in SHAPES]
    opt = msadam_tensorflow.Adam(**kwargs)
    reference = msadam.Adam([msadam.Parameter(v.copy(), name=n, backend="numpy")
                             for v, n in zip(values.values(), names, strict=True)], **kwargs)

    def apply(grads: list[Any]) -> None:
        opt.apply(grads, variables)

    step = apply if mode == "eager" else tf.function(apply, jit_compile=mode == "xla")
    for _ in range(4):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES.values()]
        step([tf.constant(g) for g in grads])
        reference(tuple(grads))
    expected = reference.state_dict()
    for variable, name in zip(variables, names, strict=True):
        np.testing.assert_array_equal(variable.numpy(), expected[name], err_msg=name)
    np.testing.assert_array_equal(opt._beta2_power.numpy(), expected["beta2_power"])
    assert int(opt.iterations.numpy()) == 4


def test_norm_layers_take_no_weight_decay() -> None:
    model = _model()
    opt = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=0.5)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    opt.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    moved = {v.path: not np.array_equal(v.numpy(), before[v.path]) for v in model.trainable_variables}
    assert moved == {"net/dense/kernel": True, "net/dense/bias": False,  # 0 biases stay 0
                     "net/ln/gamma": False, "net/ln/beta": False, "net/head/kernel": True, "net/head/bias": False}
    assert [msadam_tensorflow.mindspore_name(v) for v in model.trainable_variables][:3] == \
        ["net.dense.kernel", "net.dense.bias", "net.ln.gamma"]


def test_model_fit_trains() -> None:
    model = _model()
    model.compile(optimizer=msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=1e-4), loss="mse")
    x = np.random.default_rng(1).standard_normal((64, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


# Keras 3.15's own saving code calls np.array(variable) on a class whose __array__ has no copy argument.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_config_and_checkpoint_round_trip(tmp_path: Path) -> None:
    opt = msadam_tensorflow.Adam(learning_rate=3e-3, beta2=0.99, use_nesterov=True, weight_decay=0.01, loss_scale=4.0)
    again = msadam_tensorflow.Adam.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    model = _model()
    model.compile(optimizer=opt, loss="mse")
    x = np.ones((8, 4), np.float32)
    model.fit(x, np.ones((8, 1), np.float32), epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, msadam_tensorflow.Adam)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.fit(x, np.ones((8, 1), np.float32), epochs=1, verbose=0)
    loaded.fit(x, np.ones((8, 1), np.float32), epochs=1, verbose=0)
    for a, b in zip(model.trainable_variables, loaded.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs", [{"beta1": 1.0}, {"beta1": "0.9"}, {"eps": 0.0}, {"learning_rate": -1.0},
                                    {"weight_decay": -0.1}, {"loss_scale": 0.0}, {"loss_scale": "1"},
                                    {"use_nesterov": 1}, {"use_lazy": True, "use_offload": True},
                                    {"use_amsgrad": True, "use_lazy": True}], ids=str)
def test_invalid_arguments_raise_mindsporess_exception_class(kwargs: dict[str, Any]) -> None:
    param = msadam.Parameter(np.ones(2, np.float32), name="w", backend="numpy")
    with pytest.raises(Exception) as expected:
        msadam.Adam([param], **kwargs)
    with pytest.raises(expected.type):
        msadam_tensorflow.Adam(**kwargs)
