"""The compiled TensorFlow op (msadam_tensorflow.native): MindSpore's bits, in place, TensorFlow's variable rules.

Against the NumPy reference bit for bit, subnormals, overflow and NaN included, and against the XLA
path on ordinary values (see ``ORDINARY``); the variables' buffers are written in place unless
something else still holds them (copy-on-write), under their locks; the op runs eagerly and in plain
``tf.function`` graphs and declines inside XLA; ``MSADAM_TF_NATIVE=0`` and a missing compiler fall
back to the XLA path with the same bits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import native_cases as nc  # noqa: E402 - tests/ is not a package
from msadam_tensorflow import kernels, native, rounding, steps  # noqa: E402

import msadam  # noqa: E402
from msadam.backend import StepHyper  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    if not native.available():
        pytest.skip(f"msadam_tensorflow.native: {native.status()}")


# The XLA path matches the reference on ordinary values only: TensorFlow runs its kernels, XLA's
# included, with subnormals flushed to zero (the op keeps them, as the reference does).
ORDINARY = (1.0, 1e-3, 1e3)
STEPS = 3
FORMS = {
    "plain": {},
    "nesterov": {"nesterov": True},
    "amsgrad": {"amsgrad": True},
    "amsgrad-nesterov": {"amsgrad": True, "nesterov": True},  # AMSGrad has no Nesterov form
    "decay": {"weight_decay": 0.01},
    "scale": {"grad_scale": 0.125},
    "nesterov-decay-scale": {"nesterov": True, "weight_decay": 3e-3, "grad_scale": 1 / 3},
    "amsgrad-decay-scale": {"amsgrad": True, "weight_decay": 0.5, "grad_scale": 1024.0},
}


def _variables(state: dict[str, list[np.ndarray]]) -> dict[str, list[Any]]:
    return {key: [tf.Variable(a) for a in arrays] for key, arrays in state.items()}


def _cfg(hyper: StepHyper) -> kernels.Config:
    return kernels.Config(hyper.use_nesterov, hyper.use_amsgrad, False, rounding.fma_mode())


def _native_step(state: dict[str, list[Any]], grads: list[np.ndarray], hyper: StepHyper,
                 isa: str | None = None) -> None:
    s, cfg = kernels.scalars(hyper), _cfg(hyper)
    assert native.dense_step(state["w"], state["m"], state["v"], state.get("vhat"), [tf.constant(g) for g in grads],
                             s, cfg.nesterov and not cfg.amsgrad, isa=isa)


def _xla_step(state: dict[str, list[Any]], grads: list[np.ndarray], hyper: StepHyper) -> None:
    compiled = steps.compiled_dense(state["w"], state["m"], state["v"], state.get("vhat"), _cfg(hyper))
    compiled([tf.constant(g) for g in grads], kernels.scalars(hyper))


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("betas", [nc.DEFAULT, (0.25, 0.5, 1e-3)], ids=["default", "odd"])
def test_bit_exact_with_the_numpy_reference_and_the_xla_path(form: str, betas: tuple[float, float, float]) -> None:
    kwargs = FORMS[form]
    rng = np.random.default_rng([len(form), int(betas[0] * 100)])
    reference = nc.random_state(rng, nc.TENSORS, bool(kwargs.get("amsgrad")))
    ours = _variables(reference)
    ordinary = [i for i, (_, s) in enumerate(nc.TENSORS) if s in ORDINARY]
    xla = {key: [tf.Variable(arrays[i]) for i in ordinary] for key, arrays in reference.items()}
    for step in range(1, STEPS + 1):
        hyper = nc.step_hyper(step, betas, **kwargs)
        grads = [nc.random_values(rng, n, s) for n, s in nc.TENSORS]
        nc.reference_step(reference, grads, hyper)
        _native_step(ours, grads, hyper)
        _xla_step(xla, [grads[i] for i in ordinary], hyper)
        nc.assert_states_equal(ours, reference, f"{form}, step {step}, against NumPy")
        nc.assert_states_equal({key: [x[i] for i in ordinary] for key, x in ours.items()}, xla,
                               f"{form}, step {step}, against XLA")


def test_subnormals_are_kept() -> None:
    """The op computes with subnormals, though TensorFlow's threads flush them: as the NumPy reference."""
    tiny = np.float32(2.0**-140)  # subnormal: float32's smallest normal is 2**-126
    w, m, v = tf.Variable(tf.ones(9)), tf.Variable(tf.fill([9], tiny)), tf.Variable(tf.fill([9], tiny))
    grad = np.full(9, 2.0**-70, np.float32)  # its square, 2**-140, is subnormal too
    reference = {"w": [np.ones(9, np.float32)], "m": [np.full(9, tiny)], "v": [np.full(9, tiny)]}
    _one_step([w, m, v], tf.constant(grad))
    nc.reference_step(reference, [grad], nc.step_hyper(1))
    nc.assert_states_equal({"w": [w], "m": [m], "v": [v]}, reference, "subnormal state")
    assert 0 < v.numpy()[0] < np.finfo(np.float32).tiny


@pytest.mark.parametrize("isa", native.isas() or ["none"])
@pytest.mark.parametrize("form", ["nesterov-decay-scale", "amsgrad"])
def test_every_instruction_set_gives_the_same_bits(isa: str, form: str) -> None:
    kwargs = FORMS[form]
    rng = np.random.default_rng(17)
    tensors = [(n, 1.0) for n in nc.SMALL_SIZES] + [(100_003, 1e-19)]
    reference = nc.random_state(rng, tensors, bool(kwargs.get("amsgrad")))
    ours = _variables(reference)
    for step in range(1, STEPS + 1):
        hyper = nc.step_hyper(step, **kwargs)
        grads = [nc.random_values(rng, n, s) for n, s in tensors]
        nc.reference_step(reference, grads, hyper)
        _native_step(ours, grads, hyper, isa)
        nc.assert_states_equal(ours, reference, f"{isa}, step {step}")


def test_an_unknown_instruction_set_is_refused() -> None:
    w, m, v = (tf.Variable(tf.ones(9)) for _ in range(3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="cannot run"):
        native.dense_step([w], [m], [v], None, [tf.ones(9)], kernels.scalars(nc.step_hyper(1)), False,
                          isa="no-such-isa")


SHAPES = [(5, 3), (13,), (4, 32), (2, 3, 16), ()]  # (4, 32), (2, 3, 16): gradient centralization applies
OPTIMIZER_FORMS = [
    {},
    {"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 8.0},
    {"use_amsgrad": True, "weight_decay": 0.05},
    {"use_nesterov": True, "grad_centralization": True, "weight_decay": 0.01},  # a group option
]


def _optimizers(**kwargs: Any) -> tuple[list[Any], msadam.Adam, msadam.Adam]:
    rng = np.random.default_rng(4)
    values = [np.asarray(rng.standard_normal(s), np.float32) for s in SHAPES]
    variables = [tf.Variable(v) for v in values]
    group = {"grad_centralization": kwargs.pop("grad_centralization", False)}
    ours = msadam.Adam([{"params": [msadam.Parameter(v, name=f"p{i}") for i, v in enumerate(variables)], **group}],
                       **kwargs)
    reference = msadam.Adam([{"params": [msadam.Parameter(v.copy(), name=f"p{i}", backend="numpy")
                                         for i, v in enumerate(values)], **group}], **kwargs)
    return variables, ours, reference


def _same(ours: msadam.Adam, reference: msadam.Adam, exact: bool = True) -> None:
    expected = reference.state_dict()
    for name, value in ours.state_dict().items():
        if exact:
            nc.assert_bits_equal(np.asarray(value), np.asarray(expected[name]), name)
        else:
            np.testing.assert_allclose(np.asarray(value), np.asarray(expected[name]), rtol=1e-5, atol=1e-7,
                                       err_msg=name)


@pytest.mark.parametrize("kwargs", OPTIMIZER_FORMS, ids=["plain", "nesterov-decay-scale", "amsgrad-decay",
                                                         "centralization"])
def test_msadam_adam_takes_the_op_and_matches_the_numpy_backend(kwargs: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    original = steps.native_dense

    def counted(*args: Any) -> bool:
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(steps, "native_dense", counted)
    variables, ours, reference = _optimizers(**dict(kwargs))
    rng = np.random.default_rng(5)
    for _ in range(3):
        grads = [np.asarray(rng.standard_normal(v.shape), np.float32) for v in variables]
        ours(tuple(tf.constant(g) for g in grads))
        reference(tuple(grads))
    assert [p.data for p in ours.parameters] == variables  # the same variable objects
    # Centralization changes some gradients here: the op declines that bucket, XLA steps it (and
    # XLA's mean is not NumPy's to the last bit: the shared suites compare centralization to 1e-5).
    centralized = bool(kwargs.get("grad_centralization"))
    assert calls and all(calls) == (not centralized), calls
    _same(ours, reference, exact=not centralized)


# ----------------------------------------------------------------------------- variables


def _address(variable: Any) -> int:
    """Where the variable's buffer is (a read shares it; the read is dropped before returning)."""
    value = variable.read_value()
    return int(value._numpy().__array_interface__["data"][0])


def _one_step(variables: list[Any], grad: Any, hyper: StepHyper | None = None) -> None:
    w, m, v = variables
    assert native.dense_step([w], [m], [v], None, [grad], kernels.scalars(hyper or nc.step_hyper(1)), False)


def test_buffers_are_updated_in_place() -> None:
    variables = [tf.Variable(tf.fill([1000], 0.5)) for _ in range(3)]
    before = [_address(x) for x in variables]
    _one_step(variables, tf.ones(1000))
    assert [_address(x) for x in variables] == before
    assert not np.array_equal(variables[0].numpy(), np.full(1000, 0.5, np.float32))


@pytest.mark.parametrize("held", ["w", "m", "w and v"])
def test_a_tensor_read_before_the_step_keeps_its_value(held: str) -> None:
    """Copy-on-write: a buffer something else references is not written; the variable takes a new one."""
    rng = np.random.default_rng(6)
    sizes = [100_003, 9]  # the large one is updated by several threads, chunk by chunk
    state = nc.random_state(rng, [(n, 1.0) for n in sizes], amsgrad=False)
    reference = {k: [a.copy() for a in arrays] for k, arrays in state.items()}
    ours = _variables(state)
    names = held.split(" and ")
    reads = {name: [x.read_value() for x in ours[name]] for name in names}
    copies = {name: [t.numpy().copy() for t in tensors] for name, tensors in reads.items()}
    addresses = {name: [_address(x) for x in ours[name]] for name in names}
    grads = [nc.random_values(rng, n, 1.0) for n in sizes]
    hyper = nc.step_hyper(1, nesterov=True, weight_decay=0.01)
    _native_step(ours, grads, hyper)
    nc.reference_step(reference, grads, hyper)
    nc.assert_states_equal(ours, reference, "after copy-on-write")
    for name in names:
        for i, tensor in enumerate(reads[name]):
            np.testing.assert_array_equal(tensor.numpy(), copies[name][i])
        assert [_address(x) for x in ours[name]] != addresses[name]  # the variable took a new buffer
    del reads
    before = [_address(x) for x in ours["w"]]  # nothing holds them now: the next step is in place
    _native_step(ours, grads, nc.step_hyper(2))
    assert [_address(x) for x in ours["w"]] == before


def test_a_gradient_that_is_the_variables_own_buffer() -> None:
    """``g`` read from ``w`` shares its buffer: ``w`` is copied on write, so ``g`` stays the old weights."""
    values = np.random.default_rng(7).standard_normal(37).astype(np.float32)
    w, m, v = tf.Variable(values), tf.Variable(tf.zeros(37)), tf.Variable(tf.zeros(37))
    reference = {"w": [values.copy()], "m": [np.zeros(37, np.float32)], "v": [np.zeros(37, np.float32)]}
    _one_step([w, m, v], w.read_value())
    nc.reference_step(reference, [values.copy()], nc.step_hyper(1))
    nc.assert_states_equal({"w": [w], "m": [m], "v": [v]}, reference, "gradient aliasing w")


def test_a_variable_in_copy_on_read_mode() -> None:
    """After a sparse read (``tf.gather``) TensorFlow copies such a variable on every dense update; so does the op."""
    values = np.random.default_rng(8).standard_normal((40, 3)).astype(np.float32)
    w, m, v = tf.Variable(values), tf.Variable(tf.zeros((40, 3))), tf.Variable(tf.zeros((40, 3)))
    tf.gather(w, [1, 2])  # ResourceGather: w is in copy-on-read mode from now on
    reference = {"w": [values.copy()], "m": [np.zeros((40, 3), np.float32)], "v": [np.zeros((40, 3), np.float32)]}
    grad = np.ones((40, 3), np.float32)
    for step in (1, 2):
        _one_step([w, m, v], tf.constant(grad), nc.step_hyper(step))
        nc.reference_step(reference, [grad], nc.step_hyper(step))
    nc.assert_states_equal({"w": [w], "m": [m], "v": [v]}, reference, "copy-on-read variable")


def test_concurrent_steps_hold_the_variables_locks() -> None:
    """Steps from several threads on the same variables are serialized (the same inputs every step,
    so any order gives the sequential result); without the locks they would interleave and lose updates."""
    rng = np.random.default_rng(9)
    size, threads, per_thread = 2_000_003, 4, 4
    state = nc.random_state(rng, [(size, 1.0)], amsgrad=False)
    grad = tf.constant(nc.random_values(rng, size, 1.0))
    hyper = nc.step_hyper(1)
    ours, sequential = _variables(state), _variables(state)
    for _ in range(threads * per_thread):
        _one_step([sequential["w"][0], sequential["m"][0], sequential["v"][0]], grad, hyper)

    def work() -> None:
        for _ in range(per_thread):
            _one_step([ours["w"][0], ours["m"][0], ours["v"][0]], grad, hyper)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    nc.assert_states_equal(ours, sequential, "concurrent")


def test_bad_arguments_are_refused_before_anything_is_written() -> None:
    w, m, v = (tf.Variable(tf.fill([9], 0.5)) for _ in range(3))
    s = kernels.scalars(nc.step_hyper(1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="shape"):
        native.dense_step([w], [m], [v], None, [tf.ones(10)], s, False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="passed twice"):
        native.dense_step([w], [m], [w], None, [tf.ones(9)], s, False)
    for x in (w, m, v):
        np.testing.assert_array_equal(x.numpy(), np.full(9, 0.5, np.float32))


def test_what_the_op_declines() -> None:
    s = kernels.scalars(nc.step_hyper(1))
    f64 = [tf.Variable(tf.ones(9, tf.float64)) for _ in range(3)]
    assert not native.dense_step(f64[:1], f64[1:2], f64[2:], None, [tf.ones(9, tf.float64)], s, False)
    f32 = [tf.Variable(tf.ones(9)) for _ in range(3)]
    assert not native.dense_step(f32[:1], f32[1:2], f32[2:], None, [tf.ones(9, tf.float64)], s, False)
    assert not native.dense_step(f32[:1], f32[1:2], f32[2:], None, [np.ones(9, np.float32)], s, False)
    assert not native.usable(tf.ones(9)) and not native.usable(np.ones(9, np.float32))
    assert native.usable(f32[0]) and not native.usable(f64[0])
    assert native.dense_step([], [], [], None, [], s, False)  # nothing to do
    empty = [tf.Variable(tf.zeros([0, 3])) for _ in range(3)]
    assert native.dense_step(empty[:1], empty[1:2], empty[2:], None, [tf.zeros([0, 3])], s, False)


# ----------------------------------------------------------------------------- graphs


def test_in_a_tf_function_graph() -> None:
    rng = np.random.default_rng(10)
    tensors = [(13, 1.0), (100_003, 1.0)]
    state = nc.random_state(rng, tensors, amsgrad=True)
    eager, graph = _variables(state), _variables(state)
    cfg = kernels.Config(True, True, False, rounding.fma_mode())

    @tf.function(autograph=False)
    def step(grads: list[Any], s: kernels.Scalars) -> Any:
        assert steps.native_dense(graph["w"], graph["m"], graph["v"], graph["vhat"], grads, s, cfg)
        return graph["w"][0].read_value()  # after the step: the op is ordered before the read

    for n in range(1, 4):
        hyper = nc.step_hyper(n, nesterov=True, amsgrad=True, weight_decay=0.01, grad_scale=0.5)
        grads = [tf.constant(nc.random_values(rng, size, 1.0)) for size, _ in tensors]
        returned = step(grads, kernels.scalars(hyper))
        assert steps.native_dense(eager["w"], eager["m"], eager["v"], eager["vhat"], grads, kernels.scalars(hyper),
                                  cfg)
        nc.assert_bits_equal(returned.numpy(), eager["w"][0].numpy(), "read in the graph")
        nc.assert_states_equal(graph, eager, f"graph step {n}")
    assert step.experimental_get_tracing_count() == 1


def test_declines_inside_xla_and_the_xla_path_steps_there() -> None:
    w, m, v = (tf.Variable(tf.fill([11], 0.5)) for _ in range(3))
    twin = [tf.Variable(tf.fill([11], 0.5)) for _ in range(3)]
    cfg = kernels.Config(False, False, False, rounding.fma_mode())
    declined: list[bool] = []

    @tf.function(jit_compile=True, autograph=False)
    def step(g: Any, s: kernels.Scalars) -> None:
        declined.append(not steps.native_dense([w], [m], [v], None, [g], s, cfg))
        steps.dense_step([w], [m], [v], None, [g], s, cfg)

    s = kernels.scalars(nc.step_hyper(1))
    step(tf.ones(11), s)
    assert declined == [True]
    steps.dense_step(twin[:1], twin[1:2], twin[2:], None, [tf.ones(11)], s, cfg)  # eagerly: the op
    nc.assert_states_equal({"x": [w, m, v]}, {"x": twin}, "XLA inside jit_compile against the op")


# ----------------------------------------------------------------------------- fallbacks


def test_disabled_by_the_environment_the_xla_path_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[object] = []
    original = steps.compiled_dense
    monkeypatch.setattr(steps, "compiled_dense", lambda *args: compiled.append(args) or original(*args))
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv(native.ENV_NATIVE, flag)
        assert native.enabled() == (flag == "1")
        variables, ours, _ = _optimizers(**OPTIMIZER_FORMS[1])
        rng = np.random.default_rng(11)
        for _ in range(3):
            ours(tuple(tf.constant(rng.standard_normal(v.shape).astype(np.float32)) for v in variables))
        assert bool(compiled) == (flag == "0")  # the XLA path only when disabled
        runs.append(ours.state_dict())
    for name, value in runs[0].items():
        nc.assert_bits_equal(np.asarray(value), np.asarray(runs[1][name]), name)


NO_COMPILER = """
    import numpy as np, tensorflow as tf, msadam
    from msadam_tensorflow import native, steps
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(29).astype(np.float32), rng.standard_normal((3, 29)).astype(np.float32)
    ours = msadam.Parameter(tf.Variable(w0), name="w")
    reference = msadam.Parameter(w0.copy(), name="w", backend="numpy")
    opts = [msadam.Adam([p], use_nesterov=True, weight_decay=0.01, loss_scale=4.0) for p in (ours, reference)]
    for g in grads:
        opts[0]((tf.constant(g),))
        opts[1]((g,))
    assert not native.available() and not native.enabled(), native.status()
    assert native.status().startswith("unavailable: "), native.status()
    assert "no-such-compiler" in native.status(), native.status()
    assert len(steps._COMPILED) == 1  # the XLA path stepped
    assert all(np.array_equal(a.view(np.int32), b.view(np.int32))
               for a, b in zip(opts[0].state_dict().values(), opts[1].state_dict().values()))
    print("ok")
"""


def test_without_a_compiler_the_xla_path_steps(tmp_path: Path) -> None:
    """A kernel that cannot be built is reported, and the step runs on XLA with the same bits."""
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), MSADAM_TF_EXTENSIONS_DIR=str(tmp_path))
    env.pop(native.ENV_NATIVE, None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_COMPILER)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:] + done.stdout


REBUILD = """
    import os
    from msadam_tensorflow import native
    os.environ[native.ENV_NATIVE] = "0"
    assert not native.available() and native.status() == "disabled (MSADAM_TF_NATIVE=0)", native.status()
    os.environ[native.ENV_NATIVE] = "1"  # not remembered: the op is wanted now
    source = native._SOURCE.read_text(encoding="utf-8")
    digest = native._digest(source, *native._tf_flags())
    directory = native.cache_dir(native.ENV_DIR, "x") / f"msadam_adam_fp32_{digest}"
    directory.mkdir(parents=True)
    (directory / "msadam_adam_fp32_tf.so").write_text("not a library")  # an interrupted copy, say
    assert native.enabled(), native.status()
    assert native.status().startswith("ready (") and "did not load" in native.status(), native.status()
    print("ok")
"""


def test_disabled_first_then_enabled_and_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    env = dict(os.environ, MSADAM_TF_EXTENSIONS_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(REBUILD)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:] + done.stdout


NO_TENSORFLOW = """
    import sys
    sys.modules["tensorflow"] = None  # importing it now raises ImportError
    from msadam_tensorflow import native
    assert native.status().startswith("not built yet"), native.status()
    print("ok")
"""


def test_the_module_imports_without_tensorflow() -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_TENSORFLOW)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr + done.stdout


def test_status_and_instruction_sets() -> None:
    assert native.status().startswith("ready (")
    assert native.isas() and native.isas()[-1] == "base"
    assert all(isa in native.status() for isa in native.isas())
