"""The TensorFlow backend's own behaviour (the shared suites and MindSpore parity run on it already).

Variables are updated in place and stay the same objects; the dense step's XLA path is one XLA
computation traced once (the compiled op, msadam_tensorflow.native, has its own tests); the lazy
sparse paths leave untouched rows alone; the XLA rounding tools do what the kernels rely on; the
plugin imports without TensorFlow.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from msadam_tensorflow import kernels, rounding, steps  # noqa: E402

import msadam  # noqa: E402
from msadam.backends.numpy_kernels import fma32  # noqa: E402


def _pair(shapes: list[tuple[int, ...]], **kwargs: Any) -> tuple[list[Any], msadam.Adam, msadam.Adam]:
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    variables = [tf.Variable(v, name=f"v{i}") for i, v in enumerate(values)]
    ours = msadam.Adam([msadam.Parameter(v, name=f"p{i}") for i, v in enumerate(variables)], **kwargs)
    reference = msadam.Adam([msadam.Parameter(v.copy(), name=f"p{i}", backend="numpy")
                             for i, v in enumerate(values)], **kwargs)
    return variables, ours, reference


def _same(ours: msadam.Adam, reference: msadam.Adam) -> None:
    expected = reference.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_variables_are_updated_in_place_and_state_is_not_trainable() -> None:
    variables, ours, reference = _pair([(5, 3), (13,)], weight_decay=0.01, use_nesterov=True)
    rng = np.random.default_rng(1)
    for _ in range(3):
        grads = [rng.standard_normal(v.shape).astype(np.float32) for v in variables]
        ours(tuple(tf.constant(g) for g in grads))
        reference(tuple(grads))
    assert [p.data for p in ours.parameters] == variables  # the user's variables, the same objects
    assert all(isinstance(m.data, tf.Variable) and not m.data.trainable for m in ours.moment1 + ours.moment2)
    _same(ours, reference)


def test_the_dense_step_is_traced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The XLA path (without the compiled op of msadam_tensorflow.native, which is not traced at all)."""
    monkeypatch.setenv("MSADAM_TF_NATIVE", "0")
    variables, ours, _ = _pair([(6, 7), (9,)], learning_rate=msadam.ExponentialDecayLR(0.1, 0.5, 1))
    cfg = kernels.Config(False, False, False, rounding.fma_mode())
    ours(tuple(tf.ones_like(v) for v in variables))
    compiled = steps.compiled_dense(variables, [m.data for m in ours.moment1], [v.data for v in ours.moment2], None,
                                    cfg)
    assert compiled.experimental_get_tracing_count() == 1
    for _ in range(4):  # the learning rate changes every step: a traced scalar, not a constant
        ours(tuple(tf.ones_like(v) for v in variables))
    assert compiled.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("target", [None, "CPU", "GPU"])
def test_lazy_steps_leave_untouched_rows_alone(target: str | None) -> None:
    table = tf.Variable(np.random.default_rng(2).standard_normal((40, 4)).astype(np.float32))
    opt = msadam.Adam([msadam.Parameter(table, name="emb")], use_lazy=True, use_nesterov=True)
    if target is not None:
        opt.target = target
    opt((msadam.RowTensor(np.array([1, 1, 7]), np.ones((3, 4), np.float32), (40, 4)),))
    before = [table.numpy(), opt.moment1[0].asnumpy(), opt.moment2[0].asnumpy()]
    opt((msadam.RowTensor(np.array([3, 3, 9]), np.ones((3, 4), np.float32), (40, 4)),))
    after = [table.numpy(), opt.moment1[0].asnumpy(), opt.moment2[0].asnumpy()]
    untouched = np.setdiff1d(np.arange(40), [3, 9])
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(new[untouched], old[untouched])
        assert not np.array_equal(new[[3, 9]], old[[3, 9]])


def test_rounding_tools() -> None:
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(4096).astype(np.float32) for _ in range(3))
    a[:4] = b[:4] = np.float32(1 + 2.0**-12)  # a product that needs 25 bits: fused and unfused differ
    c[:4] = np.float32(-1.0)
    unfused = tf.function(lambda a, b, c, z: rounding.rounded(a * b, z) + c, jit_compile=True)
    np.testing.assert_array_equal(unfused(a, b, c, tf.constant(0)).numpy(), a * b + c)
    np.testing.assert_array_equal(rounding.fma_emulated(a, b, c).numpy(), fma32(a, b, c))
    assert not np.array_equal(a * b + c, fma32(a, b, c))


NO_TENSORFLOW = """
    import sys
    sys.modules["tensorflow"] = None  # importing it now raises ImportError
    import msadam, msadam_tensorflow, msadam_tensorflow.plugin
    status = {s.name: s for s in msadam.registry.backend_status()}["tensorflow"]
    assert not status.ok and "tensorflow" in (status.error or "").lower(), status
    print("ok")
"""


def test_the_plugin_imports_without_tensorflow() -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_TENSORFLOW)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr + done.stdout


@pytest.mark.parametrize("target", [None, "CPU", "GPU"])
@pytest.mark.parametrize("use_lazy", [False, True], ids=["dense", "lazy"])
def test_indexed_slices_from_an_embedding_take_mindspores_sparse_paths(target: str | None, use_lazy: bool) -> None:
    import msadam_tensorflow

    rng = np.random.default_rng(5)
    values = rng.standard_normal((30, 4)).astype(np.float32)
    table = tf.Variable(values)
    ids = tf.constant([3, 7, 3, 12])  # a repeat: the paths differ in how they treat it
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.gather(table, ids) * tf.constant(rng.standard_normal((4, 4)).astype(np.float32)))
    grad = tape.gradient(loss, table)
    assert isinstance(grad, tf.IndexedSlices)
    ours = msadam.Adam([msadam.Parameter(table, name="emb")], use_lazy=use_lazy, weight_decay=0.01)
    reference = msadam.Adam([msadam.Parameter(values.copy(), name="emb", backend="numpy")], use_lazy=use_lazy,
                            weight_decay=0.01)
    if target is not None:
        ours.target = reference.target = target
    sparse = msadam_tensorflow.row_tensor(grad)
    ours((sparse,))
    reference((msadam.RowTensor(sparse.indices.numpy(), sparse.values.numpy(), sparse.dense_shape),))
    _same(ours, reference)
    with pytest.raises(TypeError):
        msadam_tensorflow.row_tensor(tf.ones(3))


def test_a_keras_variable_is_adopted_and_trained_in_place() -> None:
    """``msadam.Parameter(keras_variable)`` holds the ``tf.Variable`` Keras wraps (the backend's ``adopt``),
    so the step moves the model's weight, not a copy on another backend."""
    keras = pytest.importorskip("keras")
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    start = layer.kernel.numpy()
    param = msadam.Parameter(layer.kernel, name="dense.kernel")
    assert param.backend == "tensorflow" and param.data is layer.kernel.value
    reference = msadam.Parameter(start, name="dense.kernel", backend="numpy")
    grads = (np.ones((3, 2), np.float32),)
    msadam.Adam([param], learning_rate=0.1)(grads)
    msadam.Adam([reference], learning_rate=0.1)(grads)
    np.testing.assert_array_equal(layer.kernel.numpy(), reference.asnumpy())
    assert not np.array_equal(layer.kernel.numpy(), start)
