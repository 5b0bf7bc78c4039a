"""The JAX backend (msadam-jax) against the NumPy reference: bit-exact float32 on the CPU, every path.

MindSpore parity itself is tested by test_parity.py (parametrized over installed backends); here
the JAX kernels are held to the reference's exact bits in both FMA modes, and the backend's own
promises are pinned: no retracing, donated (in-place) state that never deletes a user's array,
lazy steps that leave untouched rows alone, JAX's dtype rules, and a plugin that imports without JAX.
XLA flushes float32 subnormals to zero on the CPU, so "bit-exact" holds in float32's normal range.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, Jaxpr
from msadam_jax import kernels, native, rounding, steps
from msadam_jax.backend import JaxBackend

import msadam
from msadam.backends import numpy_kernels

JAX = JaxBackend()
# Sizes 1, 5, 999 (and the 3 of norm.gamma) end in MindSpore's scalar loop (size % 8); 64, 288, 320 do not.
SHAPES: list[tuple[int, ...]] = [(), (5,), (4, 16), (3, 32, 3), (9, 111)]
TABLE = (40, 8)

# One listener for the whole session (listeners cannot be unregistered): every XLA compilation.
COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kwargs: COMPILES.append(str(kwargs.get("fun_name", "?")))
    if event == "/jax/core/compile/backend_compile_duration" else None)


@contextlib.contextmanager
def compilations() -> Iterator[list[str]]:
    """The names of the functions XLA compiles inside the block."""
    start, seen = len(COMPILES), []
    yield seen
    seen.extend(COMPILES[start:])


def run(backend: str, *, sparse: bool = False, dtype: Any = np.float32, steps: int = 3, target: str | None = None,
        unique: bool = True, centralize: bool = False, **kwargs: Any) -> dict[str, np.ndarray]:
    """``steps`` steps of msadam.Adam on ``backend``; returns the whole state (MindSpore's names)."""
    rng = np.random.default_rng(0)
    dense = [msadam.Parameter(rng.standard_normal(s).astype(dtype), name=f"w{i}", backend=backend)
             for i, s in enumerate(SHAPES)]
    dense.append(msadam.Parameter(np.ones(3, dtype), name="norm.gamma", backend=backend))  # no decay by default
    table = msadam.Parameter(rng.standard_normal(TABLE).astype(dtype), name="table", backend=backend)
    params: Any = [*dense, table]
    if centralize:
        params = [{"params": dense, "grad_centralization": True}, {"params": [table]}]
    opt = msadam.Adam(params, learning_rate=0.01, **kwargs)
    if target is not None:
        opt.target, opt.unique = target, unique
    scale = 1.0 if dtype == np.float16 else 10.0 ** rng.integers(-3, 2, size=len(dense))
    for _ in range(steps):
        grads: list[Any] = [(rng.standard_normal(p.shape) * s).astype(dtype)
                            for p, s in zip(dense, np.broadcast_to(scale, len(dense)), strict=True)]
        if sparse:  # few rows: indices repeat
            indices = rng.integers(0, 12, size=20)
            grads.append(msadam.RowTensor(indices, rng.standard_normal((20, TABLE[1])).astype(dtype), TABLE))
        else:
            grads.append(rng.standard_normal(TABLE).astype(dtype))
        assert opt(tuple(grads)) == (True,) * len(grads)
    return opt.state_dict()


def assert_same_bits(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(reference)
    for name, expected in reference.items():
        assert ours[name].dtype == expected.dtype and np.array_equal(ours[name], expected), name


def assert_close(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray], rtol: float) -> None:
    """Within ``rtol`` of each array's scale (entries near zero are compared to the array's largest)."""
    assert sorted(ours) == sorted(reference)
    for name, expected in reference.items():
        e, o = expected.astype(np.float64), ours[name].astype(np.float64)
        assert ours[name].dtype == expected.dtype, name
        np.testing.assert_allclose(o, e, rtol=rtol, atol=rtol * float(np.abs(e).max(initial=1.0)), err_msg=name)


DENSE = {f"nesterov={n}-amsgrad={a}-decay={d}-loss_scale={s}":
         {"use_nesterov": n, "use_amsgrad": a, "weight_decay": d, "loss_scale": s}
         for n, a, d, s in itertools.product([False, True], [False, True], [0.0, 0.01], [1.0, 8.0])}
FMA_FORMS = list(DENSE)[::5]  # plain, amsgrad + loss scale, nesterov + decay, everything


# ----------------------------------------------------------------------------- numbers


@pytest.fixture(params=["native", "xla"])
def dense_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the compiled dense kernel (msadam_jax.native) and with XLA's kernels."""
    if request.param == "native" and not native.available():
        pytest.skip(f"msadam_jax.native: {native.status()}")
    monkeypatch.setenv(native.ENV_NATIVE, "1" if request.param == "native" else "0")
    return str(request.param)


@pytest.mark.parametrize("form", DENSE)
def test_dense_float32_is_bit_exact(form: str, dense_kernel: str) -> None:
    assert_same_bits(run("jax", **DENSE[form]), run("numpy", **DENSE[form]))


@pytest.mark.parametrize(("target", "unique"), [(None, True), ("CPU", True), ("GPU", True), ("GPU", False)],
                         ids=["default", "CPU", "GPU-unique", "GPU-repeats"])
@pytest.mark.parametrize("use_lazy", [False, True], ids=["dense", "lazy"])
@pytest.mark.parametrize("form", [{"weight_decay": 0.01}, {"use_nesterov": True, "weight_decay": 0.01,
                                                            "loss_scale": 4.0}], ids=["decay", "nesterov-decay-scale"])
def test_sparse_float32_is_bit_exact(target: str | None, unique: bool, use_lazy: bool, form: dict[str, Any]) -> None:
    kwargs = {"sparse": True, "target": target, "unique": unique, "use_lazy": use_lazy, **form}
    assert_same_bits(run("jax", **kwargs), run("numpy", **kwargs))


def test_gradient_centralization_is_within_1e6() -> None:
    """Not bit-exact: XLA sums the mean in another order than NumPy."""
    assert_close(run("jax", centralize=True, weight_decay=0.01), run("numpy", centralize=True, weight_decay=0.01),
                 rtol=1e-6)


HALF = [("plain", {}), ("nesterov-decay-scale", {"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 4.0}),
        ("lazy-dense", {"use_lazy": True})]


@pytest.mark.parametrize(("name", "form"), HALF, ids=[name for name, _ in HALF])
def test_float16_is_bit_exact(name: str, form: dict[str, Any]) -> None:
    """float16 runs the float32 kernel on float32 copies, rounded back, as MindSpore's CPU (and the reference)
    does. MindSpore refuses float16 with AMSGrad, offload or sparse gradients, and bfloat16 altogether:
    tests/test_half_precision.py pins those refusals and the bits against MindSpore itself."""
    kwargs = {"dtype": np.float16, **form}
    ours, reference = run("jax", **kwargs), run("numpy", **kwargs)
    assert ours["moment1.table"].dtype == ours["table"].dtype == np.float16
    assert not np.array_equal(ours["w3"], run("jax", **{**kwargs, "steps": 0})["w3"])  # the weights moved
    assert_same_bits(ours, reference)


# ----------------------------------------------------------------------------- rounding


@pytest.mark.parametrize("form", FMA_FORMS)
def test_emulated_fma_gives_the_same_bits(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV_NATIVE, "0")  # the FMA modes are XLA's kernels
    modes: list[str] = []
    dense_step = steps.dense_step  # the JaxBackend calls it with the kernel's Config

    def spy(*args: Any) -> None:
        modes.extend(a.fma for a in args if isinstance(a, kernels.Config))
        dense_step(*args)

    monkeypatch.setattr(steps, "dense_step", spy)
    results = {}
    for mode in ("contract", "emulate"):
        monkeypatch.setenv(rounding.ENV_FMA, mode)
        modes.clear()
        results[mode] = run("jax", **DENSE[form])
        assert modes and set(modes) == {mode}  # every bucket stepped with this mode's kernel
    assert_same_bits(results["emulate"], results["contract"])  # and contract == NumPy: test_dense_float32_...


def test_fma_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rounding.ENV_FMA, " Emulate ")
    assert rounding.fma_mode() == "emulate"
    monkeypatch.setenv(rounding.ENV_FMA, "fused")
    with pytest.raises(ValueError, match=rounding.ENV_FMA):
        rounding.fma_mode()
    param = msadam.Parameter(jnp.ones(5, jnp.float32), name="w")
    with pytest.raises(ValueError, match=rounding.ENV_FMA):
        msadam.Adam([param])((np.ones(5, np.float32),))


def fma_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random operands over many magnitudes (with cancellation), then crafted ties.

    Returns ``a, b, c`` and, for the crafted elements (the last four), the correctly rounded result.
    XLA on the CPU flushes float32 subnormals to zero (inputs and results), so every product, addend
    and sum here stays in float32's normal range.
    """
    rng = np.random.default_rng(3)
    n = 20_000
    a = (rng.standard_normal(n) * 2.0 ** rng.integers(-40, 20, n)).astype(np.float32)
    b = (rng.standard_normal(n) * 2.0 ** rng.integers(-40, 20, n)).astype(np.float32)
    c = (rng.standard_normal(n) * 2.0 ** rng.integers(-90, 40, n)).astype(np.float32)
    near = rng.random(n) < 0.3  # c close to -a*b: the sum cancels
    c[near] = (-(a[near].astype(np.float64) * b[near]) * (1 + rng.standard_normal(near.sum()) * 2.0**-20)
               ).astype(np.float32)
    exact, tiny = a.astype(np.float64) * b + c, np.finfo(np.float32).tiny
    normal = (np.abs(a * b) >= tiny) & (np.abs(c) >= tiny) & ((np.abs(exact) >= tiny) | (exact == 0))
    a, b, c = a[normal], b[normal], c[normal]
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 lies on a float32 tie; +-2**-80 breaks it, below float64's
    # precision: rounding the float64 sum to float32 (two roundings) gets these wrong.
    x, tie = np.float32(1 + 2.0**-12), np.float32(2.0**-80)
    a = np.concatenate([a, [x, x, x, x]]).astype(np.float32)
    b = np.concatenate([b, [x, x, -x, -x]]).astype(np.float32)
    c = np.concatenate([c, [tie, -tie, tie, -tie]]).astype(np.float32)
    up, down = np.float32(1 + 2.0**-11 + 2.0**-23), np.float32(1 + 2.0**-11)
    return a, b, c, np.array([up, down, -down, -up], np.float32)


def test_fma_emulated_rounds_once_like_the_reference() -> None:
    a, b, c, crafted = fma_inputs()
    expected = numpy_kernels.fma32(a, b, c)
    np.testing.assert_array_equal(expected[-4:], crafted)
    twice = (a.astype(np.float64) * b + c).astype(np.float32)
    assert not np.array_equal(twice[-4:], crafted)  # the crafted ties do catch double rounding
    got = np.asarray(jax.jit(rounding.fma_emulated)(a, b, c))
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


def test_rounded_prevents_contraction() -> None:
    a, b, c, _ = fma_inputs()
    separate = a * b + c  # NumPy: the product is rounded before the addition
    assert not np.array_equal(separate, numpy_kernels.fma32(a, b, c))  # the inputs tell both apart
    got = jax.jit(lambda a, b, c, z: rounding.rounded(a * b, z) + c)(a, b, c, np.int32(0))
    np.testing.assert_array_equal(np.asarray(got).view(np.int32), separate.view(np.int32))


# ----------------------------------------------------------------------------- compilation


@pytest.mark.parametrize("lr", ["schedule", "list"])
def test_steps_do_not_retrace(lr: str, dense_kernel: str) -> None:
    rng = np.random.default_rng(4)
    k = ["schedule", "list"].index(lr)  # shapes of their own: the warm-up step must compile
    params = [msadam.Parameter(rng.standard_normal(s).astype(np.float32), name=f"p{i}", backend="jax")
              for i, s in enumerate([(6, 5 + k), (13 + k,), ()])]
    learning_rate: Any = msadam.ExponentialDecayLR(0.1, 0.5, 1) if lr == "schedule" else [0.1 / 2**i for i in range(7)]
    opt = msadam.Adam(params, learning_rate=learning_rate, weight_decay=0.01)
    host = [tuple(rng.standard_normal(p.shape).astype(np.float32) for p in params) for _ in range(6)]
    native = [tuple(jnp.asarray(g) for g in grads) for grads in host]
    with compilations() as warm_up:
        opt(host[0])
    assert any(("_native_bucket" if dense_kernel == "native" else "_dense_bucket") in name for name in warm_up), warm_up
    lrs, weights = [], []
    with compilations() as compiled:
        for step in range(1, 6):
            lrs.append(float(np.asarray(opt.get_lr())))
            opt(host[step] if step % 2 else native[step])
            weights.append(params[0].asnumpy())
    assert compiled == []
    assert len(set(lrs)) == 5 and all(not np.array_equal(x, y) for x, y in itertools.pairwise(weights))


NNZ = [1, 3, 8, 9, 12, 16, 17, 31]  # 8 sizes, 3 padded sizes


def sparse_batches(shape: tuple[int, int], native: bool) -> list[msadam.RowTensor]:
    """A RowTensor per size in NNZ (a table shape of its own per test: XLA's caches are process-wide)."""
    rng = np.random.default_rng(5)
    parts = [(rng.integers(0, shape[0], n).astype(np.int32), rng.standard_normal((n, shape[1]), np.float32))
             for n in NNZ]
    return [msadam.RowTensor(*(map(jnp.asarray, part) if native else part), shape) for part in parts]


def test_sparse_kernels_compile_once_per_padded_size() -> None:
    table = msadam.Parameter(np.zeros((97, 5), np.float32), name="table", backend="jax")
    opt = msadam.Adam([table], use_lazy=True)
    with compilations() as compiled:
        for grad in sparse_batches((97, 5), native=False):
            opt((grad,))
    assert [steps.padded_size(n) for n in NNZ] == [8, 8, 8, 16, 16, 16, 32, 32]
    kernels_compiled = [name for name in compiled if "sparse_update" in name]
    assert 0 < len(kernels_compiled) <= len({steps.padded_size(n) for n in NNZ}), compiled


def test_a_new_nnz_of_a_compiled_padded_size_compiles_nothing() -> None:
    table = msadam.Parameter(np.zeros((89, 7), np.float32), name="table", backend="jax")
    opt = msadam.Adam([table])
    batches = sparse_batches((89, 7), native=True)
    for grad, nnz in zip(batches, NNZ, strict=True):
        if nnz in (1, 9, 17):  # one per padded size
            opt((grad,))
    with compilations() as compiled:
        for grad in batches:
            opt((grad,))
    assert compiled == []


# ----------------------------------------------------------------------------- donation and the lazy path


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="buffer pointers are checked on the CPU")
def test_state_is_updated_in_place_and_user_arrays_survive(dense_kernel: str) -> None:
    mine, grad = jnp.arange(13, dtype=jnp.float32), jnp.ones(13, jnp.float32)
    param = msadam.Parameter(mine, name="w")
    opt = msadam.Adam([param, msadam.Parameter(jnp.ones((4, 16)), name="q")], learning_rate=0.1, use_amsgrad=True)
    assert param.backend == "jax" and param.data is not mine  # the backend copied it
    users = [mine]
    for replace in (False, True):
        if replace:  # Parameter.set_data(jax.Array), then a step
            users.append(jnp.full(13, 2.0, jnp.float32))
            param.set_data(users[-1])
        old = [p.data for p in opt.parameters_and_state() if isinstance(p.data, jax.Array)]
        assert len(old) == 8  # parameters, moment1, moment2, vhat
        pointers = [a.unsafe_buffer_pointer() for a in old]
        opt((grad, jnp.ones((4, 16))))
        new = [p.data for p in opt.parameters_and_state() if isinstance(p.data, jax.Array)]
        assert [a.unsafe_buffer_pointer() for a in new] == pointers  # XLA wrote into the donated buffers
        assert all(a.is_deleted() for a in old) and not any(a.is_deleted() for a in (*new, grad, *users))
    np.testing.assert_array_equal(np.asarray(users[0]), np.arange(13, dtype=np.float32))
    np.testing.assert_array_equal(np.asarray(users[1]), np.full(13, 2.0, np.float32))


@pytest.mark.parametrize("target", [None, "CPU", "GPU"])
@pytest.mark.parametrize("use_nesterov", [False, True], ids=["", "nesterov"])
def test_lazy_steps_leave_untouched_rows_alone(target: str | None, use_nesterov: bool) -> None:
    rng = np.random.default_rng(6)
    start = {"table": rng.standard_normal((1000, 4)).astype(np.float32),  # nonzero state: decay would show
             "moment1.table": rng.standard_normal((1000, 4)).astype(np.float32),
             "moment2.table": rng.random((1000, 4)).astype(np.float32)}
    table = msadam.Parameter(start["table"], name="table", backend="jax")
    opt = msadam.Adam([table], learning_rate=0.1, use_lazy=True, use_nesterov=use_nesterov, weight_decay=0.1)
    if target is not None:
        opt.target = target
    opt.load_state_dict(start, strict=False)
    touched = np.array([3, 7, 3, 998])
    for _ in range(2):
        opt((msadam.RowTensor(touched, np.ones((4, 4), np.float32), (1000, 4)),))
    after = opt.state_dict()
    untouched = np.setdiff1d(np.arange(1000), touched)
    for name, value in start.items():
        assert np.array_equal(after[name][untouched], value[untouched]), name
        assert (after[name][np.unique(touched)] != value[np.unique(touched)]).all(), name


def _table_ops(jaxpr: Jaxpr, shape: tuple[int, ...]) -> set[str]:
    """The primitives (nested jaxprs included) whose result is a whole table of ``shape``."""
    names = set()
    for eqn in jaxpr.eqns:
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else [value]:
                if isinstance(sub, ClosedJaxpr | Jaxpr):
                    names |= _table_ops(sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub, shape)
        if any(getattr(v.aval, "shape", None) == shape for v in eqn.outvars):
            names.add(eqn.primitive.name)
    return names


@pytest.mark.parametrize(("composite", "deduplicate"), [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("nesterov", [False, True], ids=["", "nesterov"])
def test_lazy_kernels_only_scatter_into_the_table(composite: bool, deduplicate: bool, nesterov: bool) -> None:
    table, f32 = jnp.zeros((1000, 4)), np.float32
    s = kernels.Scalars(f32(0.01), f32(0.9), f32(0.999), f32(1e-8), f32(0.1), f32(0.5), np.int32(0))
    args = (table, table, table, jnp.zeros(8, jnp.int32), jnp.ones((8, 4)), s)

    def ops(lazy: bool) -> set[str]:
        cfg = kernels.SparseConfig(nesterov, lazy, composite, deduplicate)
        return _table_ops(jax.make_jaxpr(lambda *a: kernels.sparse_update(*a, cfg=cfg))(*args).jaxpr, (1000, 4))

    assert ops(lazy=True) <= {"scatter", "scatter-add"}
    assert "mul" in ops(lazy=False)  # the walk does see whole-table arithmetic


# ----------------------------------------------------------------------------- dtypes and the plugin


def test_without_x64_nothing_is_narrowed_silently() -> None:
    assert not jax.config.jax_enable_x64
    for wide in (np.ones(3), np.ones(3, np.complex128)):
        with pytest.raises(TypeError, match="jax_enable_x64"):
            JAX.from_numpy(wide)
    narrowed = JAX.from_numpy(np.array([0, 5, 2**31 - 1], np.int64))
    assert narrowed.dtype == jnp.int32 and np.asarray(narrowed).tolist() == [0, 5, 2**31 - 1]
    for too_big in (np.array([2**31]), np.array([-(2**31) - 1])):
        with pytest.raises(OverflowError):
            JAX.from_numpy(too_big)
    with pytest.raises(TypeError, match="jax_enable_x64"):
        msadam.Parameter(np.ones(3), backend="jax")


def test_wide_gradients_and_indices_are_refused_before_the_step() -> None:
    param = msadam.Parameter(jnp.ones((10, 4), jnp.float32), name="w")
    opt = msadam.Adam([param], learning_rate=0.1)
    with pytest.raises(TypeError):  # MindSpore's class for a float64 gradient of a float32 parameter
        opt((np.ones((10, 4)),))
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):  # checked on the host, before any int32 conversion
        opt((msadam.RowTensor(np.array([1, 2**40]), np.ones((2, 4), np.float32), (10, 4)),))
    assert opt.global_step.asnumpy().tolist() == [0] and (param.asnumpy() == 1).all()
    opt((msadam.RowTensor(np.array([1, 2, 1], np.int64), np.ones((3, 4), np.float32), (10, 4)),))
    reference = msadam.Parameter(np.ones((10, 4), np.float32), name="w", backend="numpy")
    msadam.Adam([reference], learning_rate=0.1)((msadam.RowTensor([1, 2, 1], np.ones((3, 4), np.float32), (10, 4)),))
    np.testing.assert_array_equal(param.asnumpy(), reference.asnumpy())


NO_JAX = """
import contextlib, importlib.abc, io, sys

class NoJax(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("jax", "jaxlib", "optax"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoJax())
import msadam_jax, msadam_jax.plugin
assert not {"jax", "jaxlib"} & set(sys.modules), "importing msadam_jax imported jax"
try:
    msadam_jax.adam
    raise AssertionError("msadam_jax.adam without jax")
except ImportError as exc:
    assert 'pip install "msadam-jax[jax]"' in str(exc), exc
import msadam, msadam.cli, msadam.registry
status = {s.name: s for s in msadam.registry.backend_status()}
assert status["numpy"].ok and not status["jax"].ok and "No module named 'jax'" in status["jax"].error, status
assert "jax" not in msadam.available_backends()
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert msadam.cli.main(["backends"]) == 0
assert any(line.split()[:2] == ["jax", "FAILED"] for line in out.getvalue().splitlines()), out.getvalue()
print("ok")
"""


def test_the_plugin_imports_without_jax() -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(NO_JAX)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr + done.stdout


# ----------------------------------------------------------------------------- the compiled kernel

NO_COMPILER = """
    import numpy as np, jax.numpy as jnp, msadam
    from msadam_jax import native, steps
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(29).astype(np.float32), rng.standard_normal((3, 29)).astype(np.float32)
    ours = msadam.Parameter(jnp.asarray(w0), name="w")
    reference = msadam.Parameter(w0.copy(), name="w", backend="numpy")
    opts = [msadam.Adam([p], use_nesterov=True, weight_decay=0.01) for p in (ours, reference)]
    for g in grads:
        opts[0]((jnp.asarray(g),))
        opts[1]((g,))
    assert not native.available() and not steps.uses_native([ours.data], "cpu")
    assert native.status().startswith("unavailable: "), native.status()
    assert "no-such-compiler" in native.status()
    assert all(np.array_equal(a, b) for a, b in zip(opts[0].state_dict().values(), opts[1].state_dict().values()))
    print("ok")
"""


def test_without_a_compiler_the_xla_kernels_step(tmp_path: Path) -> None:
    """A kernel that cannot be built is reported, and the step runs on XLA's kernels with the same bits."""
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), MSADAM_JAX_EXTENSIONS_DIR=str(tmp_path))
    env.pop(native.ENV_NATIVE, None)
    done = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(NO_COMPILER)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr + done.stdout


def test_the_compiled_kernel_reports_its_state(monkeypatch: pytest.MonkeyPatch) -> None:
    if not native.available():
        pytest.skip(f"msadam_jax.native: {native.status()}")
    assert native.status().startswith("ready (")
    params = [jnp.ones(9, jnp.float32)]
    assert steps.uses_native(params, "cpu") and not steps.uses_native(params, "gpu")
    assert not steps.uses_native([jnp.ones(9, jnp.bfloat16)], "cpu")
    monkeypatch.setenv(native.ENV_NATIVE, "0")
    assert not native.enabled() and not steps.uses_native(params, "cpu")
