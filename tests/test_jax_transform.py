"""msadam_jax.adam, the optax.GradientTransformation: msadam.Adam's numbers, checks and state, the optax way.

Parity tests run a jitted ``tx.update`` + ``optax.apply_updates`` step over a flax-style pytree and
``msadam.Adam`` on the NumPy reference (parameters named by ``msadam_jax.mindspore_names``, the same
gradients), and compare everything through ``msadam_jax.to_mindspore`` vs ``state_dict()``. After each
step the JAX parameters are reset to the reference's, so a tolerated last-bit difference (a scalar-tail
element moving by more than 2x: ``w + (new - w)`` is not ``new``) never reaches the next step's moments.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402
import msadam_jax  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402

import msadam  # noqa: E402

# Listeners cannot be unregistered: one for the module, counting XLA compilations.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
COMPILES = [0]


def _count_compiles(event: str, duration_secs: float, **kwargs: Any) -> None:
    if event == COMPILE_EVENT:
        COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)

# Sizes 35 and 56: a vector part and a scalar tail, and a multiple of 8; 7, 8 and 1: tail only, vector only, 0-d.
SHAPES = {"dense": {"kernel": (5, 7), "bias": (7,)}, "LayerNorm_0": {"scale": (7,), "bias": (7,)},
          "head": {"kernel": (7, 8), "bias": (8,)}, "logit_scale": ()}
SPARSE_SHAPES = {"dense": {"kernel": (3, 5)}, "embedding": (10, 3)}
STEPS = 4
IS_SPARSE = (msadam.RowTensor, jsparse.BCOO)


def random_tree(seed: int, scale: float = 1.0, shapes: Any = SHAPES) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda shape: (scale * rng.standard_normal(shape)).astype(np.float32), shapes,
                        is_leaf=lambda x: isinstance(x, tuple))


def init_params(shapes: Any = SHAPES) -> Any:
    return jax.tree.map(jnp.asarray, random_tree(0, 0.5, shapes))


def reference(params: Any, target: str | None = None, unique: bool = True, **kwargs: Any) -> msadam.Adam:
    """msadam.Adam on the NumPy backend over ``params``' leaves, named as msadam_jax names them."""
    names = jax.tree.leaves(msadam_jax.mindspore_names(params))
    opt = msadam.Adam([msadam.Parameter(np.asarray(w), name=n, backend="numpy")
                       for n, w in zip(names, jax.tree.leaves(params), strict=True)], **kwargs)
    if target is not None:
        opt.target = target
    opt.unique = unique
    return opt


def reference_grads(grads: Any) -> tuple[Any, ...]:
    """The gradient leaves as NumPy arrays / NumPy RowTensors, in ``opt.parameters``' order."""
    out = []
    for g in jax.tree.leaves(grads, is_leaf=lambda x: isinstance(x, IS_SPARSE)):
        if isinstance(g, IS_SPARSE):
            r = msadam_jax.row_tensor(g)
            g = msadam.RowTensor(np.asarray(r.indices), np.asarray(r.values), r.dense_shape)
        out.append(g if isinstance(g, msadam.RowTensor) else np.asarray(g))
    return tuple(out)


@functools.cache
def make_step(tx: Any, jit: bool = True) -> Any:
    def step(grads: Any, state: Any, params: Any) -> Any:
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step) if jit else step


def named(params: Any) -> dict[str, np.ndarray]:
    names = jax.tree.leaves(msadam_jax.mindspore_names(params))
    return {n: np.asarray(w) for n, w in zip(names, jax.tree.leaves(params), strict=True)}


def assert_bits(got: Any, want: Any, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert (got.dtype, got.shape) == (want.dtype, want.shape), what
    if got.tobytes() != want.tobytes():
        pytest.fail(f"{what}: {np.count_nonzero(got != want)} of {got.size} elements differ, "
                    f"max |diff| {np.max(np.abs(got.astype(np.float64) - want))}")


def assert_param(got: np.ndarray, want: np.ndarray, before: np.ndarray, exact: bool, what: str) -> None:
    """Bit-exact; unless ``exact``, a scalar-tail element that moved by more than 2x may be 1 ulp off."""
    if exact:
        return assert_bits(got, want, what)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=what)
    g, w, b = (np.asarray(x, np.float32).reshape(-1) for x in (got, want, before))
    off = np.flatnonzero(g != w)
    within_2x = (np.sign(b) == np.sign(w)) & (np.abs(b) / 2 <= np.abs(w)) & (np.abs(w) <= 2 * np.abs(b))
    assert np.all(off >= w.size - w.size % 8) and not np.any(within_2x[off]), (what, off, b[off], w[off])
    assert np.all(np.abs(g[off] - w[off]) <= np.spacing(np.abs(w[off]))), (what, g[off], w[off])


def assert_same_checkpoint(got: dict[str, Any], want: dict[str, Any]) -> None:
    want = {k: v for k, v in want.items() if not k.startswith("learning_rate")}
    assert list(got) == list(want)
    for name in want:
        assert_bits(got[name], want[name], name)


def run_parity(tx: Any, opt: msadam.Adam, params: Any, grads: list[Any], exact: bool) -> None:
    step, state = make_step(tx), tx.init(params)
    for g in grads:
        before = named(params)
        params, state = step(g, state, params)
        opt(reference_grads(g))
        got, want = msadam_jax.to_mindspore(state, params), opt.state_dict()
        assert list(got) == [k for k in want if not k.startswith("learning_rate")]
        for name, value in got.items():
            (functools.partial(assert_param, before=before[name], exact=exact) if name in before else assert_bits)(
                value, want[name], what=name)
        params = jax.tree.unflatten(jax.tree.structure(params), [jnp.asarray(p.asnumpy()) for p in opt.parameters])


def reference_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """msadam.Adam's equivalent of msadam_jax.adam's kwargs (an optax schedule: its float32 value per step)."""
    out = dict(kwargs)
    lr, wd = kwargs.get("learning_rate"), kwargs.get("weight_decay")
    if isinstance(lr, jax.Array):
        out["learning_rate"] = float(lr) if lr.ndim == 0 else np.asarray(lr)
    elif callable(lr) and not isinstance(lr, msadam.LearningRateSchedule):
        out["learning_rate"] = [np.float32(lr(jnp.int32(i))) for i in range(STEPS)]
    if callable(wd) and not isinstance(wd, msadam.LearningRateSchedule):
        values = [np.float32(wd(jnp.int32(i))) for i in range(STEPS)]
        out["weight_decay"] = lambda step: values[int(step[0])]
    return out


# ----------------------------------------------------------------------------- 1. numbers

NUMBERS = [
    pytest.param({}, True, id="defaults"),
    pytest.param({"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 128.0}, True, id="nesterov-decay-scale"),
    pytest.param({"use_amsgrad": True, "learning_rate": 0.01, "weight_decay": 1e-3}, False, id="amsgrad"),
    pytest.param({"learning_rate": 0.02}, False, id="lr-float"),
    pytest.param({"learning_rate": jnp.float32(0.02)}, False, id="lr-0d-jax-array"),
    pytest.param({"learning_rate": [0.01, 0.03, 0.002, 0.02]}, False, id="lr-list"),
    pytest.param({"learning_rate": jnp.array([0.02, 0.01, 0.005, 0.001])}, False, id="lr-1d-jax-array"),
    *(pytest.param({"learning_rate": schedule}, False, id=f"lr-{schedule.cls_name}") for schedule in (
        msadam.ExponentialDecayLR(0.01, 0.9, 2, True), msadam.NaturalExpDecayLR(0.01, 0.5, 2),
        msadam.InverseDecayLR(0.01, 0.5, 2), msadam.CosineDecayLR(0.001, 0.01, 3),
        msadam.PolynomialDecayLR(0.01, 0.001, 3, 2.0), msadam.WarmUpLR(0.01, 3))),
    pytest.param({"learning_rate": optax.exponential_decay(0.01, 2, 0.5)}, False, id="lr-optax-schedule"),
    pytest.param({"weight_decay": msadam.ExponentialDecayLR(0.1, 0.5, 1), "loss_scale": 4.0}, True,
                 id="decay-msadam-schedule"),
    pytest.param({"weight_decay": optax.piecewise_constant_schedule(0.1, {2: 0.5})}, True, id="decay-optax-schedule"),
]
EAGER = [p for p in NUMBERS if p.id in ("nesterov-decay-scale", "amsgrad", "lr-list", "lr-optax-schedule")]


@pytest.mark.parametrize(("kwargs", "exact"), NUMBERS)
def test_jitted_steps_match_msadam_numpy(kwargs: dict[str, Any], exact: bool) -> None:
    params = init_params()
    run_parity(msadam_jax.adam(**kwargs), reference(params, **reference_kwargs(kwargs)), params,
               [random_tree(10 + i) for i in range(STEPS)], exact)


@pytest.mark.parametrize("kwargs", [p.values[0] for p in EAGER], ids=[p.id for p in EAGER])
def test_eager_update_gives_the_jitted_bits(kwargs: dict[str, Any]) -> None:
    tx = msadam_jax.adam(**{"learning_rate": 0.05, **kwargs})
    runs = []
    for jit in (True, False):
        params, step = init_params(), make_step(tx, jit)
        state = tx.init(params)
        for i in range(STEPS):
            params, state = step(random_tree(10 + i), state, params)
        runs.append(msadam_jax.to_mindspore(state, params))
    assert_same_checkpoint(runs[1], runs[0])


# ----------------------------------------------------------------------------- 2. names and the decay filter

def mask(*names: str) -> Any:
    return jax.tree.map(lambda n: n in names, msadam_jax.mindspore_names(init_params()))


def rename_head(params: Any) -> Any:
    return jax.tree.map(lambda n: n.replace("head.", "gamma_head."), msadam_jax.mindspore_names(params))


@pytest.mark.parametrize(("kwargs", "decayed"), [
    pytest.param({}, {"dense.kernel", "dense.bias", "head.kernel", "head.bias", "logit_scale"}, id="default-filter"),
    pytest.param({"decay_mask": mask("dense.kernel", "LayerNorm_0.gamma")}, {"dense.kernel", "LayerNorm_0.gamma"},
                 id="mask-pytree"),
    pytest.param({"decay_mask": lambda p: jax.tree.map(lambda w: w.ndim == 2, p)}, {"dense.kernel", "head.kernel"},
                 id="mask-callable"),
    pytest.param({"names": functools.partial(msadam_jax.mindspore_names, norm_map=False)},
                 set(named(init_params())), id="no-norm-map"),
    pytest.param({"names": rename_head}, {"dense.kernel", "dense.bias", "logit_scale"}, id="names-custom"),
])
def test_weight_decay_filter(kwargs: dict[str, Any], decayed: set[str]) -> None:
    """With zero gradients only the decayed leaves move."""
    params = init_params()
    tx = msadam_jax.adam(learning_rate=0.1, weight_decay=0.5, **kwargs)
    new_params, _ = make_step(tx)(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    old = named(params)
    assert {name for name, w in named(new_params).items() if not np.array_equal(w, old[name])} == decayed


def test_names_and_checkpoint_names() -> None:
    params = init_params()
    assert msadam_jax.mindspore_names(params) == {  # flax's norm scale/bias are MindSpore's gamma/beta
        "dense": {"kernel": "dense.kernel", "bias": "dense.bias"},
        "LayerNorm_0": {"scale": "LayerNorm_0.gamma", "bias": "LayerNorm_0.beta"},
        "head": {"kernel": "head.kernel", "bias": "head.bias"}, "logit_scale": "logit_scale"}
    tx = msadam_jax.adam(names=rename_head)
    _, state = make_step(tx)(random_tree(1), tx.init(params), params)
    ckpt = msadam_jax.to_mindspore(state, params, names=rename_head)
    assert {"gamma_head.kernel", "moment1.gamma_head.bias", "moment2.LayerNorm_0.gamma"} <= set(ckpt)
    assert not any(k.startswith(("head.", "moment1.head.")) for k in ckpt)
    _, loaded = msadam_jax.from_mindspore(ckpt, params, names=rename_head)
    assert_bits(loaded.moment2["head"]["bias"], state.moment2["head"]["bias"], "moment2")
    with pytest.raises(KeyError):
        msadam_jax.from_mindspore(ckpt, params)  # default names: moment1.head.* are missing


# ----------------------------------------------------------------------------- 3. sparse gradients

def sparse_grads(kind: str, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    indices = np.array([3, 7, 3, 0, 9, 3]) if seed % 2 else rng.integers(0, 4, 6)  # repeats, always
    values = rng.standard_normal((6, 3)).astype(np.float32)
    if kind == "RowTensor":
        grad = msadam.RowTensor(jnp.asarray(indices), jnp.asarray(values), SPARSE_SHAPES["embedding"])
    else:
        grad = jsparse.BCOO((jnp.asarray(values), jnp.asarray(indices)[:, None]), shape=SPARSE_SHAPES["embedding"])
    return {"dense": {"kernel": jnp.asarray(rng.standard_normal((3, 5)), jnp.float32)}, "embedding": grad}


@pytest.mark.parametrize(("kind", "extra"), [
    ("RowTensor", {}), ("BCOO", {"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 2.0})],
    ids=["RowTensor", "BCOO-nesterov-decay-scale"])
@pytest.mark.parametrize(("target", "unique", "use_lazy"), [
    (None, True, False), (None, True, True), ("CPU", True, False), ("CPU", True, True), ("GPU", True, False),
    ("GPU", True, True), ("GPU", False, True)], ids=str)
def test_sparse_gradients_match_msadam_numpy(kind: str, extra: dict[str, Any], target: str | None, unique: bool,
                                             use_lazy: bool) -> None:
    params = init_params(SPARSE_SHAPES)
    tx = msadam_jax.adam(use_lazy=use_lazy, target=target, unique=unique, **extra)
    opt = reference(params, target, unique, use_lazy=use_lazy, **extra)
    run_parity(tx, opt, params, [sparse_grads(kind, seed) for seed in range(3)], exact=True)


@pytest.mark.parametrize("flag", ["use_amsgrad", "use_offload"])
def test_sparse_gradient_without_a_sparse_kernel_is_a_type_error(flag: str) -> None:
    params, grads = init_params(SPARSE_SHAPES), sparse_grads("RowTensor", 1)
    with pytest.raises(TypeError):
        reference(params, **{flag: True})(reference_grads(grads))
    tx = msadam_jax.adam(**{flag: True})
    with pytest.raises(TypeError):
        make_step(tx)(grads, tx.init(params), params)


def test_row_tensor_conversion() -> None:
    indices, values = jnp.array([2, 0, 2]), jnp.arange(6.0, dtype=jnp.float32).reshape(3, 2)
    row = msadam_jax.row_tensor(jsparse.BCOO((values, indices[:, None]), shape=(4, 2)))
    assert isinstance(row, msadam.RowTensor) and row.dense_shape == (4, 2)
    assert_bits(row.indices, indices, "indices")  # repeated indices kept, not summed
    assert_bits(row.values, values, "values")
    same = msadam.RowTensor(indices, values, (4, 2))
    assert msadam_jax.row_tensor(same) is same
    n_sparse_2 = jsparse.BCOO((values[:, 0], jnp.stack([indices, indices % 2], 1)), shape=(4, 2))
    n_batch_1 = jsparse.BCOO((values.T, indices.reshape(1, 3, 1).repeat(2, 0)), shape=(2, 4))
    assert (n_sparse_2.n_sparse, n_batch_1.n_batch) == (2, 1)
    for bad in (n_sparse_2, n_batch_1):
        with pytest.raises(ValueError):
            msadam_jax.row_tensor(bad)
    for not_sparse in (values, np.asarray(values), [[1.0, 2.0]]):
        with pytest.raises(TypeError):
            msadam_jax.row_tensor(not_sparse)
    params = {"embedding": jnp.zeros((4, 2))}
    tx = msadam_jax.adam()
    with pytest.raises(ValueError):
        tx.update({"embedding": n_sparse_2}, tx.init(params), params)


# ----------------------------------------------------------------------------- 4. validation

MISSING = object()


def msadam_error(kwargs: dict[str, Any]) -> type[BaseException] | None:
    """What msadam.Adam (MindSpore's classes) raises for these arguments; ``target``/``unique`` are properties."""
    kwargs = dict(kwargs)
    target, unique = kwargs.pop("target", MISSING), kwargs.pop("unique", MISSING)
    try:
        opt = msadam.Adam([msadam.Parameter(np.ones(3, np.float32), name="w", backend="numpy")], **kwargs)
        if target is not MISSING:
            opt.target = target
        if unique is not MISSING:
            opt.unique = unique
    except Exception as exc:
        return type(exc)
    return None


INVALID = [
    {"beta1": 1.0}, {"beta1": 0}, {"beta1": "0.9"}, {"beta2": 0.0}, {"beta2": 1}, {"eps": 0.0}, {"eps": -1e-8},
    {"eps": 1}, {"learning_rate": -0.1}, {"learning_rate": -1}, {"learning_rate": float("inf")},
    {"learning_rate": None}, {"learning_rate": "a"}, {"learning_rate": np.float32(0.1)}, {"learning_rate": 1j},
    {"learning_rate": msadam.WarmUpLR}, {"weight_decay": -0.1}, {"weight_decay": "0.1"}, {"weight_decay": None},
    {"weight_decay": float}, {"loss_scale": 0.0}, {"loss_scale": -2.0}, {"loss_scale": 0}, {"loss_scale": "1"},
    {"use_nesterov": 1}, {"use_locking": None}, {"use_amsgrad": "yes"}, {"use_lazy": 1},
    {"use_lazy": True, "use_offload": True}, {"use_amsgrad": True, "use_lazy": True},
    {"use_amsgrad": True, "use_offload": True}, {"target": "TPU"}, {"target": "cpu"}, {"target": 1},
    {"unique": "yes"}, {"unique": 1},
    # the order of the checks: loss_scale, learning rate, weight decay, then Adam's own
    {"loss_scale": "1", "beta1": 1.0}, {"learning_rate": -1.0, "beta1": "x"}, {"weight_decay": "x", "eps": 0.0},
    {"learning_rate": "a", "weight_decay": -1.0}, {"use_nesterov": 1, "use_lazy": True, "use_offload": True},
    {"learning_rate": np.array(0.1)},
    {"learning_rate": np.array(-0.1)},
]


@pytest.mark.parametrize("kwargs", INVALID, ids=str)
def test_invalid_arguments_raise_msadams_exception_class(kwargs: dict[str, Any]) -> None:
    expected = msadam_error(kwargs)
    assert expected is not None
    with pytest.raises(expected) as info:
        msadam_jax.adam(**kwargs)
    assert type(info.value) is expected


@pytest.mark.parametrize("kwargs", [
    {"learning_rate": True}, {"learning_rate": 1}, {"learning_rate": []}, {"learning_rate": [[0.1, 0.2]]},
    {"loss_scale": 2}, {"loss_scale": True}, {"beta1": np.float64(0.5)}, {"weight_decay": 0},
    {"target": "Ascend", "unique": False}, {"beta1": float("nan")},
    {"learning_rate": np.zeros((1, 2))}], ids=str)
def test_arguments_msadam_accepts_are_accepted(kwargs: dict[str, Any]) -> None:
    assert msadam_error(kwargs) is None
    msadam_jax.adam(**kwargs)


@pytest.mark.parametrize(("learning_rate", "good_steps", "jit"), [
    pytest.param([0.01, 0.02], 2, True, id="list-jit"),
    pytest.param([0.01, 0.02], 2, False, id="list-eager"),
    pytest.param([], 0, True, id="empty-jit"), pytest.param([], 0, False, id="empty-eager")])
def test_list_learning_rate_read_past_its_end_fails_the_step(learning_rate: list[float], good_steps: int,
                                                             jit: bool) -> None:
    """MindSpore's RuntimeError, raised in the host callback; JAX re-raises it as JaxRuntimeError (a
    RuntimeError) or, on jit's C++ fast-dispatch path, as ValueError — with msadam's message either way."""
    params = init_params()
    tx = msadam_jax.adam(learning_rate=learning_rate)
    step, state = make_step(tx, jit), tx.init(params)
    for i in range(good_steps):
        params, state = step(random_tree(i), state, params)
    with pytest.raises((RuntimeError, ValueError), match="cannot be read at global step"):
        jax.block_until_ready(step(random_tree(9), state, params))


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
def test_update_value_errors(jit: bool) -> None:
    params = init_params()
    tx = msadam_jax.adam(learning_rate=[[0.1, 0.2], [0.3, 0.4]])  # accepted, as by MindSpore: the first step fails
    with pytest.raises(ValueError):
        make_step(tx, jit)(random_tree(1), tx.init(params), params)
    update = jax.jit(msadam_jax.adam().update) if jit else msadam_jax.adam().update
    with pytest.raises(ValueError):  # no params
        update(random_tree(1), tx.init(params))


# ----------------------------------------------------------------------------- 5. no retracing

@pytest.mark.parametrize("kwargs", [
    {"learning_rate": optax.warmup_cosine_decay_schedule(0.0, 0.01, 2, 6)},
    {"learning_rate": msadam.WarmUpLR(0.01, 3), "weight_decay": msadam.ExponentialDecayLR(0.1, 0.5, 1)},
    {"learning_rate": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]},
    {"learning_rate": 0.01, "weight_decay": optax.linear_schedule(0.1, 0.0, 4)}],
    ids=["optax-lr", "msadam-lr-and-decay", "list-lr", "optax-decay"])
def test_jitted_step_compiles_once(kwargs: dict[str, Any]) -> None:
    params, grads = init_params(), random_tree(1)
    tx = msadam_jax.adam(**kwargs)
    step, state = make_step(tx), tx.init(params)
    before, trajectory = COMPILES[0], []
    for _ in range(6):
        params, state = jax.block_until_ready(step(grads, state, params))
        trajectory.append(np.asarray(params["head"]["bias"]))
    assert COMPILES[0] - before == 1  # the first call compiled (the listener works), no later call did
    assert len({np.abs(b - a).max() for a, b in itertools.pairwise(trajectory)}) > 1  # the rate did change


@pytest.mark.parametrize("static_args", [
    pytest.param((), id="as-is"),
    pytest.param(("beta1", "beta2", "eps", "weight_decay", "loss_scale"), id="other-numbers-static")])
def test_inject_hyperparams_learning_rate(static_args: tuple[str, ...]) -> None:
    """A jitted step follows ``hyperparams['learning_rate']`` (the numbers of adam(learning_rate=lr)), compiled once."""
    tx = optax.inject_hyperparams(msadam_jax.adam, static_args=static_args)(learning_rate=0.01)
    params, grads = init_params(), random_tree(1)
    step, state = make_step(tx), tx.init(params)
    assert set(state.hyperparams) == {"learning_rate", "beta1", "beta2", "eps", "weight_decay", "loss_scale"} - \
        set(static_args)
    wants, compiles = {}, []
    for lr in (0.01, 0.05, 0.002):
        plain = msadam_jax.adam(learning_rate=lr)
        wants[lr] = named(make_step(plain)(grads, plain.init(params), params)[0])
    for lr, want in wants.items():
        state = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)})
        before = COMPILES[0]
        got, _ = jax.block_until_ready(step(grads, state, params))
        compiles.append(COMPILES[0] - before)
        for name, value in named(got).items():
            assert_bits(value, want[name], f"lr={lr}: {name}")
    assert compiles == [1, 0, 0]


# ----------------------------------------------------------------------------- 6. state

def train(tx: Any, params: Any, state: Any, seeds: range) -> tuple[Any, Any]:
    for seed in seeds:
        params, state = make_step(tx)(random_tree(seed), state, params)
    return params, state


@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
def test_state_pytree_checkpoint_names_and_round_trip(amsgrad: bool) -> None:
    params = init_params()
    tx = msadam_jax.adam(learning_rate=0.05, use_amsgrad=amsgrad)
    params, state = train(tx, params, tx.init(params), range(3))
    assert isinstance(state, msadam_jax.AdamState) and (state.vhat is None) != amsgrad
    leaves, treedef = jax.tree.flatten(state)
    assert len(leaves) == 3 + (3 if amsgrad else 2) * len(jax.tree.leaves(params))
    rebuilt = jax.tree.unflatten(treedef, leaves)
    copied = jax.jit(lambda s: jax.tree.map(lambda x: x + 0, s))(state)
    assert isinstance(rebuilt, msadam_jax.AdamState) and jax.tree.structure(copied) == treedef
    for a, b, c in zip(leaves, jax.tree.leaves(rebuilt), jax.tree.leaves(copied), strict=True):
        assert_bits(b, a, "unflatten")
        assert_bits(c, a, "tree.map")
    ckpt = msadam_jax.to_mindspore(state, params)
    names = jax.tree.leaves(msadam_jax.mindspore_names(params))
    moments = [f"{p}.{n}" for p in ["moment1", "moment2"] + (["vhat"] if amsgrad else []) for n in names]
    assert list(ckpt) == ["global_step", *names, "beta1_power", "beta2_power", *moments]
    assert list(ckpt) == [k for k in reference(params, use_amsgrad=amsgrad).state_dict() if k != "learning_rate"]
    assert list(msadam_jax.to_mindspore(state)) == ["global_step", "beta1_power", "beta2_power", *moments]
    b1, b2 = np.float32(0.9), np.float32(0.999)
    assert_bits(ckpt["global_step"], np.array([3], np.int32), "global_step")
    assert_bits(ckpt["beta1_power"], np.array(b1 * b1 * b1), "beta1_power")  # float32 running products
    assert_bits(ckpt["beta2_power"], np.array(b2 * b2 * b2), "beta2_power")
    assert all(type(v) is np.ndarray and v.shape == ckpt[k.split(".", 1)[1]].shape
               for k, v in ckpt.items() if k in moments)
    loaded_params, loaded = msadam_jax.from_mindspore(ckpt, init_params())  # init_params(): the template
    assert jax.tree.structure((loaded_params, loaded)) == jax.tree.structure((params, state))
    for a, b in zip(jax.tree.leaves((params, state)), jax.tree.leaves((loaded_params, loaded)), strict=True):
        assert_bits(b, a, "round trip")
    assert_same_checkpoint(msadam_jax.to_mindspore(*train(tx, loaded_params, loaded, range(5, 7))[::-1]),
                           msadam_jax.to_mindspore(*train(tx, params, state, range(5, 7))[::-1]))


@pytest.mark.parametrize("trained_by", ["msadam", "msadam_jax"])
def test_checkpoints_interoperate_with_msadam(trained_by: str) -> None:
    kwargs = {"use_amsgrad": True, "weight_decay": 0.01}
    params, tx = init_params(), msadam_jax.adam(**kwargs)
    opt = reference(params, **kwargs)
    if trained_by == "msadam":
        for seed in range(3):
            opt(reference_grads(random_tree(seed)))
        params, state = msadam_jax.from_mindspore(opt.state_dict(), params)
    else:
        params, state = train(tx, params, tx.init(params), range(3))
        opt.load_state_dict(msadam_jax.to_mindspore(state, params), strict=False)
    assert_same_checkpoint(msadam_jax.to_mindspore(state, params), opt.state_dict())
    for seed in range(5, 7):
        opt(reference_grads(random_tree(seed)))
    assert_same_checkpoint(msadam_jax.to_mindspore(*train(tx, params, state, range(5, 7))[::-1]), opt.state_dict())


def test_from_mindspore_errors_and_partial_checkpoints() -> None:
    params = init_params()
    tx = msadam_jax.adam(use_amsgrad=True)
    params, state = train(tx, params, tx.init(params), range(1))
    ckpt, template = msadam_jax.to_mindspore(state, params), init_params()
    for missing in ("global_step", "beta2_power", "moment1.head.bias", "vhat.LayerNorm_0.gamma"):
        with pytest.raises(KeyError):
            msadam_jax.from_mindspore({k: v for k, v in ckpt.items() if k != missing}, template)
    for key in ("moment2.dense.kernel", "dense.kernel", "vhat.head.bias"):
        with pytest.raises(ValueError):
            msadam_jax.from_mindspore({**ckpt, key: np.zeros((2, 2), np.float32)}, template)
    with pytest.raises(TypeError):
        msadam_jax.from_mindspore(list(ckpt.items()), template)
    state_only = msadam_jax.to_mindspore(state)  # parameters absent: the template's values are kept
    loaded_params, loaded = msadam_jax.from_mindspore(state_only, template)
    assert_bits(loaded_params["dense"]["kernel"], template["dense"]["kernel"], "template")
    assert loaded.vhat is not None
    assert msadam_jax.from_mindspore(state_only, template, use_amsgrad=False)[1].vhat is None


# ----------------------------------------------------------------------------- 7. composition with optax

def test_chain_with_clip_by_global_norm_under_jit() -> None:
    params, grads, tx = init_params(), jax.tree.map(lambda g: 10 * g, random_tree(1)), msadam_jax.adam(0.01)
    chained = optax.chain(optax.clip_by_global_norm(1.0), msadam_jax.adam(0.01))
    params_c, (_, state_c) = make_step(chained)(grads, chained.init(params), params)
    clipped, _ = jax.jit(optax.clip_by_global_norm(1.0).update)(grads, optax.EmptyState())
    assert float(optax.tree.norm(clipped)) == pytest.approx(1.0, rel=1e-5)
    params_a, state_a = make_step(tx)(clipped, tx.init(params), params)
    got, want = msadam_jax.to_mindspore(state_c, params_c), msadam_jax.to_mindspore(state_a, params_a)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-12, err_msg=name)


def test_tiny_mlp_trains() -> None:
    params = init_params({"Dense_0": {"kernel": (4, 16), "bias": (16,)}, "Dense_1": {"kernel": (16, 1), "bias": (1,)}})
    x = np.random.default_rng(3).standard_normal((64, 4)).astype(np.float32)
    y = np.sin(x @ np.array([1.0, -2.0, 0.5, 1.5], np.float32))[:, None]

    def loss_fn(p: Any) -> Any:
        h = jnp.tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return jnp.mean((h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"] - y) ** 2)

    tx = msadam_jax.adam(learning_rate=1e-2, weight_decay=1e-4)

    @jax.jit
    def train_step(p: Any, s: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    state, losses = tx.init(params), []
    for _ in range(50):
        params, state, loss = train_step(params, state)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    assert int(state.global_step[0]) == 50


@pytest.mark.parametrize(("name", "values"), [("weight_decay", (0.0, 0.01)), ("beta2", (0.999, 0.95)),
                                              ("loss_scale", (1.0, 4.0))])
def test_inject_hyperparams_other_numbers(name: str, values: tuple[float, ...]) -> None:
    """Traced beta2 / weight decay / loss scale give adam(name=value)'s numbers (float32 values)."""
    tx = optax.inject_hyperparams(msadam_jax.adam)(learning_rate=0.01, weight_decay=0.001)
    params, grads = init_params(), random_tree(2)
    step, state = make_step(tx), tx.init(params)
    for value in values:
        plain = msadam_jax.adam(**{"learning_rate": 0.01, "weight_decay": 0.001, name: value})
        want = named(make_step(plain)(grads, plain.init(params), params)[0])
        traced = state._replace(hyperparams={**state.hyperparams, name: jnp.asarray(value, jnp.float32)})
        got = named(step(grads, traced, params)[0])
        for key, array in got.items():
            assert_bits(array, want[key], f"{name}={value}: {key}")


@pytest.mark.parametrize(("tree", "expected"), [
    ({"layer_norm": {"scale": 0, "offset": 0}}, {"layer_norm": {"scale": "layer_norm.gamma",
                                                               "offset": "layer_norm.beta"}}),  # haiku
    ({"BatchNorm_1": {"scale": 0, "bias": 0}}, {"BatchNorm_1": {"scale": "BatchNorm_1.gamma",
                                                                "bias": "BatchNorm_1.beta"}}),  # flax
    ({"embed": {"embeddings": 0}, "Embed_2": {"embedding": 0}},
     {"embed": {"embeddings": "embed.embedding_table"}, "Embed_2": {"embedding": "Embed_2.embedding_table"}}),
    ({"embedder": {"bias": 0}, "blocks": [{"w": 0}]}, {"embedder": {"bias": "embedder.bias"},
                                                      "blocks": [{"w": "blocks.0.w"}]}),  # left alone
])
def test_mindspore_names_map_framework_conventions(tree: Any, expected: Any) -> None:
    assert msadam_jax.mindspore_names(tree) == expected
