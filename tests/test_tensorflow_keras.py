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


# --------------------------------------------------------------------------- sparse gradients

ROWS, WIDTH = 20, 3
SPARSE_CASES = {
    "composite": ({}, None, True),
    "composite-lazy": ({"use_lazy": True}, None, True),
    "composite-nesterov-decay-scale": ({"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 4.0}, None, True),
    "cpu-fused-lazy-nesterov": ({"use_lazy": True, "use_nesterov": True, "weight_decay": 0.01}, "CPU", True),
    "cpu-fused": ({}, "CPU", True),
    "gpu-unique": ({"learning_rate": 0.05}, "GPU", True),
    "ascend-lazy-repeats": ({"use_lazy": True, "loss_scale": 2.0}, "Ascend", False),
}


def _sparse_reference(kwargs: dict[str, Any], target: str | None, unique: bool,
                      values: dict[str, np.ndarray]) -> msadam.Adam:
    reference = msadam.Adam([msadam.Parameter(v.copy(), name=n, backend="numpy") for n, v in values.items()],
                            **kwargs)
    if target is not None:
        reference.target = target
    reference.unique = unique
    return reference


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("case", list(SPARSE_CASES))
def test_indexed_slices_take_mindspores_sparse_strategy(case: str, mode: str) -> None:
    kwargs, target, unique = SPARSE_CASES[case]
    rng = np.random.default_rng(3)
    values = {"embedding.embedding_table": rng.standard_normal((ROWS, WIDTH)).astype(np.float32),
              "dense.kernel": rng.standard_normal((WIDTH, 2)).astype(np.float32)}
    variables = [keras.Variable(v, name=n.split(".")[-1]) for n, v in values.items()]
    opt = msadam_tensorflow.Adam(target=target, unique=unique, names={v.path: n for v, n in
                                                                      zip(variables, values, strict=True)}, **kwargs)
    reference = _sparse_reference(kwargs, target, unique, values)

    def apply(rows: Any, row_values: Any, dense: Any) -> None:
        opt.apply([tf.IndexedSlices(row_values, rows, tf.constant([ROWS, WIDTH], tf.int64)), dense], variables)

    step = apply if mode == "eager" else tf.function(apply, jit_compile=mode == "xla")
    for _ in range(4):
        rows = rng.integers(0, ROWS, 8)  # repeats included: each path treats them its own way
        row_values = rng.standard_normal((8, WIDTH)).astype(np.float32)
        dense = rng.standard_normal((WIDTH, 2)).astype(np.float32)
        step(tf.constant(rows), tf.constant(row_values), tf.constant(dense))
        reference((msadam.RowTensor(rows, row_values, (ROWS, WIDTH)), dense))
    expected = reference.state_dict()
    for variable, m, v, name in zip(variables, opt._moment1, opt._moment2, values, strict=True):
        np.testing.assert_array_equal(variable.numpy(), expected[name], err_msg=name)
        np.testing.assert_array_equal(m.numpy(), expected[f"moment1.{name}"], err_msg=name)
        np.testing.assert_array_equal(v.numpy(), expected[f"moment2.{name}"], err_msg=name)


def _embedding_model() -> Any:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,), dtype="int32")
    hidden = keras.layers.Flatten()(keras.layers.Embedding(ROWS, 4, name="embedding")(inputs))
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden), name="net")


@pytest.mark.parametrize("use_lazy", [True, False], ids=["lazy", "dense-moments"])
def test_model_fit_updates_an_embedding_along_the_sparse_path(use_lazy: bool) -> None:
    model = _embedding_model()
    model.compile(optimizer=msadam_tensorflow.Adam(learning_rate=1e-2, use_lazy=use_lazy), loss="mse")
    table = model.get_layer("embedding").embeddings
    model.fit(np.array([[0, 1], [2, 3]], np.int32), np.ones((2, 1), np.float32), batch_size=2, verbose=0)
    after_first = table.numpy()
    model.fit(np.array([[5, 6], [7, 8]], np.int32), np.ones((2, 1), np.float32), batch_size=2, verbose=0)
    moved = np.any(table.numpy() != after_first, axis=1)
    # Lazy Adam touches only this step's rows; the others keep moving on their old moments.
    assert moved[[5, 6, 7, 8]].all()
    assert moved[[0, 1, 2, 3]].all() != use_lazy
    assert not moved[10:].any()  # never-touched rows have zero moments either way


def test_indexed_slices_with_amsgrad_is_mindsporess_type_error() -> None:
    table = keras.Variable(np.ones((ROWS, WIDTH), np.float32), name="embedding_table")
    opt = msadam_tensorflow.Adam(use_amsgrad=True)
    before = table.numpy()
    with pytest.raises(TypeError, match="AMSGrad has no sparse kernel"):
        opt.apply([tf.IndexedSlices(tf.ones((2, WIDTH)), tf.constant([0, 1]))], [table])
    np.testing.assert_array_equal(table.numpy(), before)


# --------------------------------------------------------------------------- learning rates

TABLE = [0.1, 0.05, 0.02, 0.01, 0.005]
LEARNING_RATES = {
    "list": lambda: TABLE,
    "numpy": lambda: np.array(TABLE, np.float32),
    "tf-tensor": lambda: tf.constant(TABLE),
    "msadam-tensor": lambda: msadam.Tensor(np.array(TABLE, np.float32)),
    "exponential": lambda: msadam.ExponentialDecayLR(0.1, 0.9, 2, True),
    "natural-exp": lambda: msadam.NaturalExpDecayLR(0.1, 0.9, 2),
    "inverse": lambda: msadam.InverseDecayLR(0.1, 0.5, 2),
    "cosine": lambda: msadam.CosineDecayLR(0.01, 0.1, 3),
    "polynomial": lambda: msadam.PolynomialDecayLR(0.1, 0.01, 3, 0.5, True),
    "warmup": lambda: msadam.WarmUpLR(0.1, 3),
}


def _as_reference_lr(lr: Any) -> Any:
    return msadam.Tensor(lr.numpy()) if isinstance(lr, tf.Tensor) else lr


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("kind", list(LEARNING_RATES))
def test_mindspore_learning_rates_match_the_reference(kind: str, mode: str) -> None:
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    variable = keras.Variable(w0, name="kernel")
    opt = msadam_tensorflow.Adam(learning_rate=LEARNING_RATES[kind](), weight_decay=0.01)
    reference = msadam.Adam([msadam.Parameter(w0.copy(), name="kernel", backend="numpy")],
                            learning_rate=_as_reference_lr(LEARNING_RATES[kind]()), weight_decay=0.01)

    def apply(grad: Any) -> None:
        opt.apply([grad], [variable])

    step = apply if mode == "eager" else tf.function(apply)
    for _ in range(len(TABLE)):
        grad = rng.standard_normal((4, 3)).astype(np.float32)
        step(tf.constant(grad))
        reference((grad,))
        np.testing.assert_array_equal(variable.numpy(), reference.state_dict()["kernel"])


def test_a_list_read_past_its_end_fails_as_in_mindspore() -> None:
    variable = keras.Variable(np.ones(3, np.float32), name="kernel")
    opt = msadam_tensorflow.Adam(learning_rate=[0.1, 0.2])
    opt.apply([tf.ones(3)], [variable])
    opt.apply([tf.ones(3)], [variable])
    before = variable.numpy()
    with pytest.raises(RuntimeError, match="has 2 values, so it cannot be read at global step 2"):
        opt.apply([tf.ones(3)], [variable])
    np.testing.assert_array_equal(variable.numpy(), before)


def test_a_2d_list_learning_rate_fails_at_the_first_step_as_in_mindspore() -> None:
    opt = msadam_tensorflow.Adam(learning_rate=[[0.1, 0.2]])  # accepted by the constructor, as MindSpore does
    with pytest.raises(ValueError, match="not callable"):
        opt.apply([tf.ones(3)], [keras.Variable(np.ones(3, np.float32), name="kernel")])


@pytest.mark.parametrize("learning_rate", ["abc", msadam.Tensor(np.ones((2, 2), np.float32)), object(), [-0.1, "x"]],
                         ids=["string", "2d-tensor", "object", "bad-list"])
def test_invalid_learning_rates_raise_mindsporess_exception_class(learning_rate: Any) -> None:
    param = msadam.Parameter(np.ones(2, np.float32), name="w", backend="numpy")
    with pytest.raises(Exception) as expected:
        msadam.Adam([param], learning_rate=learning_rate)
    with pytest.raises(expected.type):
        msadam_tensorflow.Adam(learning_rate=learning_rate)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
@pytest.mark.parametrize("kind", ["list", "msadam-tensor", "polynomial", "cosine"])
def test_dynamic_learning_rates_round_trip_through_config_and_saved_models(kind: str, tmp_path: Path) -> None:
    opt = msadam_tensorflow.Adam(learning_rate=LEARNING_RATES[kind](), target="GPU", unique=False,
                                 names={"net/head/kernel": "net.head.gamma"})
    again = msadam_tensorflow.Adam.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    model = _model()
    model.compile(optimizer=opt, loss="mse")
    x, y = np.ones((8, 4), np.float32), np.ones((8, 1), np.float32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.optimizer.get_config() == opt.get_config()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    loaded.fit(x, y, epochs=2, batch_size=8, verbose=0)  # steps 3 and 4 read the same learning rates
    for a, b in zip(model.trainable_variables, loaded.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --------------------------------------------------------------------------- names


def test_keras_norm_and_embedding_names_map_to_mindsporess() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,), dtype="int32")
    # Keras's automatic layer names, given explicitly: the automatic ones take a process-wide counter.
    x = keras.layers.Flatten()(keras.layers.Embedding(ROWS, 4, name="embedding_2")(inputs))
    x = keras.layers.RMSNormalization(name="rms_normalization")(keras.layers.Dense(4, name="proj")(x))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))  # functional: paths start at the layer
    names = {v.path: msadam_tensorflow.mindspore_name(v) for v in model.trainable_variables}
    assert names == {"embedding_2/embeddings": "embedding_2.embedding_table",
                     "proj/kernel": "proj.kernel", "proj/bias": "proj.bias",
                     "rms_normalization/scale": "rms_normalization.gamma",
                     "head/kernel": "head.kernel", "head/bias": "head.bias"}
    assert msadam_tensorflow.mindspore_name(model.trainable_variables[3], norm_map=False) == \
        "rms_normalization.scale"

    opt = msadam_tensorflow.Adam(learning_rate=1e-2, weight_decay=0.5, names={"proj/kernel": "proj.beta"})
    opt.exclude_from_weight_decay(var_list=[model.get_layer("head").kernel])  # Keras's own exclusion applies too
    before = {v.path: v.numpy() for v in model.trainable_variables}
    opt.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    moved = {v.path for v in model.trainable_variables if not np.array_equal(v.numpy(), before[v.path])}
    assert moved == {"embedding_2/embeddings"}  # biases are 0, 'scale' is a gamma, proj renamed, head excluded


def test_names_must_be_a_mapping_or_a_function() -> None:
    with pytest.raises(TypeError, match="'names' must be a mapping"):
        msadam_tensorflow.Adam(names=["kernel"])


@pytest.mark.parametrize(("mode", "native_expected"), [("eager", True), ("graph", True), ("xla", False)])
def test_dense_updates_take_the_compiled_kernel_outside_xla(mode: str, native_expected: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from msadam_tensorflow import native, steps

    if not native.available():
        pytest.skip(f"the compiled kernel is not available here: {native.status()}")
    answers: list[bool] = []
    original = steps.apply_dense

    def spy(*args: Any) -> bool:
        answers.append(original(*args))
        return answers[-1]

    monkeypatch.setattr(steps, "apply_dense", spy)
    variable = keras.Variable(np.ones((4, 3), np.float32), name="kernel")
    opt = msadam_tensorflow.Adam(weight_decay=0.01)

    def apply(grad: Any) -> None:
        opt.apply([grad], [variable])

    step = apply if mode == "eager" else tf.function(apply, jit_compile=mode == "xla")
    step(tf.ones((4, 3)))
    assert answers and set(answers) == {native_expected}  # a tf.function may trace twice (variables built)
