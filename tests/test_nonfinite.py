"""NaN and ±Inf gradients step exactly as in MindSpore 2.10, on every backend.

Each case runs four steps — finite gradients, gradients with non-finite (or overflowing) elements,
finite again, non-finite at other positions — through ``msadam.Adam`` on the backend under test and
through real ``mindspore.nn.Adam`` in this process (PyNative; sparse steps through a ``@jit`` Cell,
as PyNative rejects a ``RowTensor`` argument), and compares the whole state after every step with
NaN-aware equality: the same NaN positions, the same infinities, finite values within ``RTOL``
(the parity measure: relative to each element, with an absolute floor of ``RTOL`` times the array's
largest finite magnitude).

The non-finite values sit in both parts of nnacl's kernel — the 8-wide vector loop and the scalar
remainder (a 3 x 5 tensor has 8 + 7 elements) — and, for ``RowTensor`` gradients (MindSpore's
default scatter-add path and ``opt.target = 'CPU'``'s fused kernels, lazy or not), on a repeated
index, where the scatter-add or the merge of duplicates meets ``inf + -inf``. ``huge`` gradients
are finite but square to ``inf``: ``v`` becomes ``inf``, then ``inf - inf = NaN`` on the next step
while ``m`` stays finite. That is where AMSGrad's ``vhat = max(vhat, v)`` shows MindSpore's NaN
rule: its CPU kernel takes ``vhat < v ? v : vhat``, so a NaN ``v`` leaves ``vhat`` as it was
(``inf`` here) and the parameter finite (``m / inf = 0``), where ``np.maximum`` would propagate
the NaN into ``vhat`` and the parameter; and a NaN already in ``vhat`` stays.

Backends with a compiled float32 kernel (torch, jax, tensorflow) run the dense cases twice: through
the kernel and through their framework fallback (``MSADAM_<BACKEND>_NATIVE=0``; TensorFlow's is XLA's
code).
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from mindspore_steps import sparse_caller  # tests/ is not a package

import msadam

RTOL = 1e-6
LR = 0.1
STEPS = 4
NONFINITE_STEPS = {1: 0, 3: 1}  # step -> which positions (two different sets)

CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "nesterov": {"use_nesterov": True},
    "amsgrad": {"use_amsgrad": True},
    "decay-scale": {"weight_decay": 0.01, "loss_scale": 1024.0},
    "nesterov-decay-scale": {"use_nesterov": True, "weight_decay": 0.01, "loss_scale": 1024.0},
    "amsgrad-decay-scale": {"use_amsgrad": True, "weight_decay": 0.01, "loss_scale": 1024.0},
}
# The values put into some elements of the gradients at the non-finite steps. ``huge`` squares to
# inf even after a loss scale of 1024 (1e30 / 1024 squared is 1e54).
PATTERNS: dict[str, tuple[float, ...]] = {
    "nan": (np.nan,),
    "inf": (np.inf, -np.inf),
    "mixed": (np.nan, np.inf, -np.inf),
    "huge": (1e30, -3e29),
}
KINDS = ("dense", "sparse", "sparse-lazy", "sparse-cpu", "sparse-cpu-lazy")  # "-cpu": opt.target = "CPU"
DENSE_SHAPES = {"w": (3, 5), "b": (4,)}  # 15 = 8 (vector loop) + 7 (scalar loop)
TABLE_SHAPE = (6, 5)
INDICES = np.array([1, 4, 1, 0], np.int32)  # row 1 twice: the scatter-add adds its values
NATIVE_SWITCH = {"torch": "MSADAM_TORCH_NATIVE", "jax": "MSADAM_JAX_NATIVE", "tensorflow": "MSADAM_TF_NATIVE"}


def _cases() -> list[Any]:
    cases = []
    for kind, config, pattern in itertools.product(KINDS, CONFIGS, PATTERNS):
        if kind != "dense" and CONFIGS[config].get("use_amsgrad"):
            continue  # MindSpore's AMSGrad has no sparse kernel (test_amsgrad_rejects_sparse below)
        if kind == "sparse-cpu" and CONFIGS[config].get("use_nesterov"):
            continue  # MindSpore's FusedSparseAdam moves untouched rows by a stale workspace (undefined)
        cases.append(pytest.param(kind, config, pattern, id=f"{kind}-{config}-{pattern}"))
    return cases


# ------------------------------------------------------------------------------------------- inputs


def _poison(array: np.ndarray, values: tuple[float, ...], which: int) -> None:
    """Put ``values`` into a few elements of ``array`` (in place): near both ends, so in both loops."""
    flat = array.reshape(-1)
    for k, value in enumerate(values):
        flat[(which + 5 * k) % flat.size] = value
        flat[(flat.size - 1 - which - 2 * k) % flat.size] = value


def _initial() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    shapes = {**DENSE_SHAPES, "table": TABLE_SHAPE}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def _gradients(kind: str, pattern: str) -> list[dict[str, np.ndarray]]:
    """Per step: ``{name: gradient}`` (dense) or ``{"values": ...}`` (the RowTensor values at INDICES)."""
    rng = np.random.default_rng(11)
    steps = []
    for step in range(STEPS):
        if kind == "dense":
            grads = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in DENSE_SHAPES.items()}
        else:
            grads = {"values": rng.standard_normal((len(INDICES), TABLE_SHAPE[1])).astype(np.float32)}
        if step in NONFINITE_STEPS:
            for array in grads.values():
                _poison(array, PATTERNS[pattern], NONFINITE_STEPS[step])
            if kind != "dense":  # the first and the last value of the pattern meet on the repeated index 1
                column = 2 + NONFINITE_STEPS[step]
                grads["values"][0, column], grads["values"][2, column] = PATTERNS[pattern][0], PATTERNS[pattern][-1]
        steps.append(grads)
    return steps


# ------------------------------------------------------------------------------------------- the runs

State = dict[str, np.ndarray]


def _msadam_run(backend: str, kind: str, config: str, pattern: str) -> list[State]:
    init = _initial()
    names = list(DENSE_SHAPES) if kind == "dense" else ["table"]
    params = [msadam.Parameter(init[name].copy(), name=name, backend=backend) for name in names]
    opt = msadam.Adam(params, learning_rate=LR, use_lazy=kind.endswith("-lazy"), **CONFIGS[config])
    if kind.startswith("sparse-cpu"):
        opt.target = "CPU"
    trajectory = []
    for grads in _gradients(kind, pattern):
        if kind == "dense":
            assert opt(tuple(grads[name] for name in names)) == (True,) * len(names)
        else:
            assert opt((msadam.RowTensor(INDICES, grads["values"], TABLE_SHAPE),)) == (True,)
        trajectory.append({name: np.array(value) for name, value in opt.state_dict().items()
                           if not name.startswith("learning_rate")})
    return trajectory


_ORACLE: dict[tuple[str, str, str], list[State]] = {}
_ms_names = itertools.count()


def _mindspore_run(mindspore: ModuleType, kind: str, config: str, pattern: str) -> list[State]:
    """The same run in ``mindspore.nn.Adam``, its state named as msadam names it (computed once per case)."""
    key = (kind, config, pattern)
    if key in _ORACLE:
        return _ORACLE[key]
    init = _initial()
    names = list(DENSE_SHAPES) if kind == "dense" else ["table"]
    tag = f"nonfinite{next(_ms_names)}"  # MindSpore Parameter names unique in the process
    params = [mindspore.Parameter(mindspore.Tensor(init[name].copy()), name=f"{tag}.{name}") for name in names]
    kwargs = {"use_lazy": True} if kind.endswith("-lazy") else {}
    opt = mindspore.nn.Adam(params, learning_rate=LR, **kwargs, **CONFIGS[config])
    if kind.startswith("sparse-cpu"):
        opt.target = "CPU"  # the fused host kernels FusedSparseAdam / FusedSparseLazyAdam
    sparse_step = None if kind == "dense" else sparse_caller(mindspore)(opt, TABLE_SHAPE)
    trajectory = []
    for grads in _gradients(kind, pattern):
        if sparse_step is None:
            opt(tuple(mindspore.Tensor(grads[name]) for name in names))
        else:
            sparse_step(mindspore.Tensor(INDICES), mindspore.Tensor(grads["values"]))
        state: State = {"global_step": opt.global_step.asnumpy().copy()}
        state.update({name: p.asnumpy().copy() for name, p in zip(names, params, strict=True)})
        state["beta1_power"] = opt.beta1_power.asnumpy().copy()
        state["beta2_power"] = opt.beta2_power.asnumpy().copy()
        for prefix in ("moment1", "moment2", *(("vhat",) if CONFIGS[config].get("use_amsgrad") else ())):
            state.update({f"{prefix}.{name}": p.asnumpy().copy()
                          for name, p in zip(names, getattr(opt, prefix), strict=True)})
        trajectory.append(state)
    _ORACLE[key] = trajectory
    return trajectory


# ------------------------------------------------------------------------------------------- comparison


def nonfinite_mismatch(actual: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> str | None:
    """``None`` when ``actual`` equals ``expected`` NaN-aware, else what differs (first few elements)."""
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return f"{actual.dtype}{actual.shape} != {expected.dtype}{expected.shape}"
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if not np.array_equal(nan_a, nan_e):
        where = np.argwhere(nan_a != nan_e)[:4].tolist()
        return f"NaN positions differ at {where}: ours {a[nan_a != nan_e][:4]}, MindSpore {e[nan_a != nan_e][:4]}"
    inf_a, inf_e = np.isinf(a), np.isinf(e)
    if not np.array_equal(inf_a, inf_e) or not np.array_equal(a[inf_a], e[inf_e]):
        where = np.argwhere((inf_a != inf_e) | (inf_a & (a != e)))[:4].tolist()
        return f"infinities differ at {where}"
    finite = np.isfinite(e)
    if not finite.any():
        return None
    floor = rtol * float(np.abs(e[finite]).max())
    error = np.abs(a[finite] - e[finite])
    bad = error > rtol * np.abs(e[finite]) + floor
    if bad.any():
        return f"finite values differ by up to {error.max():.3e} (e.g. ours {a[finite][bad][:3]}, MindSpore " \
               f"{e[finite][bad][:3]})"
    return None


def assert_trajectory_equal(ours: list[State], theirs: list[State]) -> None:
    assert len(ours) == len(theirs)
    for step, (got, expected) in enumerate(zip(ours, theirs, strict=True)):
        assert sorted(got) == sorted(expected), step
        problems = {name: nonfinite_mismatch(got[name], expected[name]) for name in expected}
        problems = {name: problem for name, problem in problems.items() if problem}
        assert not problems, f"step {step}: {problems}"


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(("kind", "config", "pattern"), _cases())
def test_nonfinite_gradients_step_like_mindspore(mindspore: ModuleType, backend_name: str, kind: str, config: str,
                                                 pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = _mindspore_run(mindspore, kind, config, pattern)
    assert any(not np.isfinite(value).all() for value in theirs[-1].values())  # the case did reach the state
    switch = NATIVE_SWITCH.get(backend_name)
    for native_off in (False, True) if switch and kind == "dense" else (False,):  # compiled kernels: dense only
        if native_off:
            monkeypatch.setenv(str(switch), "0")  # the framework's own code (TensorFlow: XLA's)
        try:
            assert_trajectory_equal(_msadam_run(backend_name, kind, config, pattern), theirs)
        except AssertionError as exc:
            raise AssertionError(f"{backend_name}{f' with {switch}=0' if native_off else ''}: {exc}") from None


def test_cases_make_the_kernels_meet_what_they_should(mindspore: ModuleType) -> None:
    """The inputs do hit the interesting places: NaN/inf in both kernel loops, inf + -inf in the scatter-add,
    and, for AMSGrad, a NaN ``v`` beside a non-NaN ``vhat`` (MindSpore then keeps the parameter finite)."""
    grads = _gradients("dense", "mixed")[1]["w"].reshape(-1)
    assert not np.isfinite(grads[:8]).all() and not np.isfinite(grads[8:]).all()
    values = _gradients("sparse", "inf")[1]["values"]
    with np.errstate(invalid="ignore"):
        assert np.isnan(values[INDICES == 1].sum(axis=0)).any()  # +inf and -inf on the repeated index
    last = _mindspore_run(mindspore, "dense", "amsgrad", "huge")[2]
    nan_v = np.isnan(last["moment2.w"])
    # v went inf - inf = NaN; vhat keeps the inf of the step before, so the step is m / inf = 0
    assert nan_v.any() and np.isposinf(last["vhat.w"][nan_v]).all() and np.isfinite(last["w"][nan_v]).all()


def test_amsgrad_keeps_a_nan_vhat_like_mindspore(mindspore: ModuleType, backend_name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The other half of MindSpore's ``vhat < v ? v : vhat``: a NaN already in ``vhat`` (from a loaded state)
    stays NaN under a finite ``v`` — a symmetric NaN-dropping maximum (``fmax``) would replace it."""
    init = _initial()
    w0, v0 = init["w"], np.abs(init["table"][:3])  # any positive second moments
    vhat0 = (v0 * 2).astype(np.float32)
    vhat0[0, 0] = vhat0[2, 4] = np.nan  # one in the vector loop, one in the scalar loop
    grads = [g["w"] for g in _gradients("dense", "nan")]
    grads[1], grads[3] = grads[0], grads[2]  # finite gradients only

    param = mindspore.Parameter(mindspore.Tensor(w0.copy()), name=f"nonfinite{next(_ms_names)}.w")
    opt = mindspore.nn.Adam([param], learning_rate=LR, use_amsgrad=True)
    opt.moment2[0].set_data(mindspore.Tensor(v0.copy()))
    opt.vhat[0].set_data(mindspore.Tensor(vhat0.copy()))
    theirs = []
    for g in grads:
        opt((mindspore.Tensor(g),))
        theirs.append({"w": param.asnumpy().copy(), "vhat.w": opt.vhat[0].asnumpy().copy()})
    assert np.isnan(theirs[-1]["vhat.w"][[0, 2], [0, 4]]).all() and np.isnan(theirs[-1]["w"][[0, 2], [0, 4]]).all()

    switch = NATIVE_SWITCH.get(backend_name)
    for native_off in (False, True) if switch else (False,):
        if native_off:
            monkeypatch.setenv(str(switch), "0")
        ours = msadam.Adam([msadam.Parameter(w0.copy(), name="w", backend=backend_name)], learning_rate=LR,
                           use_amsgrad=True)
        loaded = ours.state_dict()
        loaded["moment2.w"], loaded["vhat.w"] = v0.copy(), vhat0.copy()
        ours.load_state_dict(loaded)
        trajectory = []
        for g in grads:
            ours((g,))
            state = ours.state_dict()
            trajectory.append({"w": np.array(state["w"]), "vhat.w": np.array(state["vhat.w"])})
        try:
            assert_trajectory_equal(trajectory, theirs)
        except AssertionError as exc:
            raise AssertionError(f"{backend_name}{f' with {switch}=0' if native_off else ''}: {exc}") from None


def test_amsgrad_rejects_sparse_gradients(backend_name: str) -> None:
    """MindSpore's AMSGrad has no sparse kernel (``adam.py`` registers ``_run_opt_with_one_number_use_amsgrad``
    for dense Tensors only); msadam refuses the step, whatever the gradient's values."""
    table = msadam.Parameter(_initial()["table"], name="table", backend=backend_name)
    opt = msadam.Adam([table], learning_rate=LR, use_amsgrad=True)
    values = np.full((len(INDICES), TABLE_SHAPE[1]), np.nan, np.float32)
    before = table.asnumpy().copy()
    with pytest.raises((TypeError, ValueError, RuntimeError), match="AMSGrad"):
        opt((msadam.RowTensor(INDICES, values, TABLE_SHAPE),))
    assert np.array_equal(table.asnumpy(), before) and int(opt.global_step.asnumpy()[0]) == 0


@pytest.mark.parametrize(("actual", "expected", "ok"), [
    ([np.nan, 1.0], [np.nan, 1.0 + 1e-7], True),
    ([np.nan, 1.0], [1.0, 1.0], False),
    ([np.inf, 1.0], [-np.inf, 1.0], False),
    ([np.inf, 1.0], [np.inf, 1.0], True),
    ([3.0, 1.0], [3.0, 1.0 + 1e-5], False),
    ([0.0, 1.0], [1e-9, 1.0], True),  # within the absolute floor of the array's scale
])
def test_nan_aware_equality(actual: list[float], expected: list[float], ok: bool) -> None:
    result = nonfinite_mismatch(np.array(actual, np.float32), np.array(expected, np.float32))
    assert (result is None) == ok, result


# ------------------------------------------------------------------------------------------- loss-scale overflow
#
# MindSpore's ``Model(..., loss_scale_manager=manager)`` trains through
# ``nn.TrainOneStepWithLossScaleCell(net_with_loss, optimizer, scale_sense=manager.get_update_cell())``
# (``train/amp.py`` ``build_train_network``, lines 764-789), or, for
# ``FixedLossScaleManager(drop_overflow_update=False)`` (no update cell), through
# ``nn.TrainOneStepCell(net_with_loss, optimizer, sens=loss_scale)`` with the optimizer's own
# ``loss_scale`` set to the same value (the manager's docstring). One step of the former
# (``nn/wrap/loss_scale.py`` ``construct``, lines 417-435): gradients of the loss with ``sens`` = the
# current scale, ``grads * reciprocal(scale)``, overflow = some gradient is not finite, then
# ``update_cell(scale_sense, overflow)`` updates the scale, and the optimizer runs only without overflow.
#
# On a CPU MindSpore picks its Ascend-910A overflow check (``NPUGetFloatStatusV2``, which has no CPU
# kernel); the oracle below switches the cell to its own "INFNAN" Ascend check — ``IsFinite`` on
# every gradient, ``AddN``, ``1 <= sum`` (``_get_ascend_overflow_status_on_infnan_mode`` with
# ``enable_allfinite`` off) — whose kernels exist on CPU. Everything else is MindSpore's ``construct``.

SCALE_LR = 0.01
SCALE_STEPS = 9
BATCH, IN, OUT = 4, 3, 2
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _dense_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    weight = (rng.standard_normal((OUT, IN)) / 2).astype(np.float32)
    bias = (rng.standard_normal(OUT) / 2).astype(np.float32)
    x = rng.standard_normal((SCALE_STEPS, BATCH, IN)).astype(np.float32)
    y = rng.standard_normal((BATCH, OUT)).astype(np.float32)
    return weight, bias, x, y


# name -> (manager class, its arguments, input multiplier, the steps whose inputs are multiplied).
# "dynamic-huge-scale" overflows from the scale alone: 2**126 times gradients of ~1e4 is inf, 2**106
# times them is finite (the margins are checked below), and a factor of 2**20 every 2 clean steps
# takes it back up to 2**126. 2**126 is the largest scale whose float32 reciprocal is not subnormal.
LOSS_SCALE_CASES: dict[str, tuple[str, dict[str, Any], float, tuple[int, ...]]] = {
    "dynamic": ("DynamicLossScaleManager", {"init_loss_scale": 2.0**10, "scale_factor": 2, "scale_window": 2},
                1e38, (2, 3, 6)),
    "dynamic-huge-scale": ("DynamicLossScaleManager",
                           {"init_loss_scale": 2.0**126, "scale_factor": 2**20, "scale_window": 2},
                           1e2, tuple(range(SCALE_STEPS))),
    "fixed-drop": ("FixedLossScaleManager", {"loss_scale": 2.0**10, "drop_overflow_update": True}, 1e38, (1, 4)),
    "fixed-no-drop": ("FixedLossScaleManager", {"loss_scale": 2.0**10, "drop_overflow_update": False}, 1e18, (3,)),
}


def _inputs(case: str) -> list[np.ndarray]:
    _, _, factor, steps = LOSS_SCALE_CASES[case]
    x = _dense_data()[2]
    return [(x[i] * np.float32(factor)).astype(np.float32) if i in steps else x[i] for i in range(SCALE_STEPS)]


def dense_mse_grads(weight: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray,
                    sens: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``mean((x @ weight.T + bias - y) ** 2)`` times ``sens``, in float32, in the order of
    MindSpore's backward pass (ReduceMean: ``sens / n``; Square: ``* (2 * diff)``; MatMul, BiasAdd)."""
    with np.errstate(all="ignore"):
        diff = x @ weight.T + bias - y
        dy = (np.float32(sens) / np.float32(diff.size)) * (np.float32(2.0) * diff)
        return (dy.T @ x).astype(np.float32), dy.sum(axis=0, dtype=np.float32)


ScaleStep = dict[str, Any]


def _compat_loss_scale_run(backend: str, case: str) -> list[ScaleStep]:
    """The loop of ``TrainOneStepWithLossScaleCell`` (or ``TrainOneStepCell``) written with msadam_compat."""
    import msadam_compat as ms

    from msadam import registry

    manager_name, kwargs, _, _ = LOSS_SCALE_CASES[case]
    manager = getattr(ms, manager_name)(**kwargs)
    update_cell = manager.get_update_cell()
    weight0, bias0, _, y = _dense_data()
    native = registry.load_backend(backend)
    weight = ms.Parameter(native.from_numpy(weight0.copy()), name="weight")
    bias = ms.Parameter(native.from_numpy(bias0.copy()), name="bias")
    if update_cell is None:  # Fixed, drop_overflow_update=False: the optimizer unscales
        opt = ms.nn.Adam([weight, bias], learning_rate=SCALE_LR, loss_scale=manager.get_loss_scale())
    else:
        opt = ms.nn.Adam([weight, bias], learning_rate=SCALE_LR)
    scale_sense = ms.Parameter(ms.Tensor(manager.get_loss_scale(), ms.float32), name="scale_sense")
    trajectory = []
    for x in _inputs(case):
        scale = np.float32(scale_sense.asnumpy())
        grads = dense_mse_grads(weight.asnumpy(), bias.asnumpy(), x, y, scale)
        grads = tuple(native.from_numpy(g) for g in grads)
        if update_cell is None:
            overflow = False
            opt(grads)
        else:
            with np.errstate(all="ignore"):
                reciprocal = np.float32(1.0) / scale
            grads = tuple(native.from_numpy(native.to_numpy(g) * reciprocal) for g in grads)
            overflow = bool(update_cell(scale_sense, ms.Tensor(not ms.amp.all_finite(grads))))
            if not overflow:
                opt(grads)
        state = {name: np.array(value) for name, value in opt.state_dict().items()
                 if not name.startswith("learning_rate")}
        trajectory.append({"overflow": overflow, "scale": float(scale_sense.asnumpy()), "state": state})
    return trajectory


_LOSS_SCALE_ORACLE: dict[str, list[ScaleStep]] = {}


def _mindspore_loss_scale_run(mindspore: ModuleType, case: str) -> list[ScaleStep]:
    """The same training in MindSpore's own cells (computed once per case)."""
    if case in _LOSS_SCALE_ORACLE:
        return _LOSS_SCALE_ORACLE[case]
    nn = mindspore.nn
    manager_name, kwargs, _, _ = LOSS_SCALE_CASES[case]
    manager = getattr(mindspore.amp, manager_name)(**kwargs)
    weight0, bias0, _, y = _dense_data()
    net = nn.Dense(IN, OUT, weight_init=mindspore.Tensor(weight0.copy()), bias_init=mindspore.Tensor(bias0.copy()))
    net_with_loss = nn.WithLossCell(net, nn.MSELoss())
    update_cell = manager.get_update_cell()
    if update_cell is None:
        opt = nn.Adam(net.trainable_params(), learning_rate=SCALE_LR, loss_scale=manager.get_loss_scale())
        train = nn.TrainOneStepCell(net_with_loss, opt, sens=manager.get_loss_scale())
    else:
        opt = nn.Adam(net.trainable_params(), learning_rate=SCALE_LR)
        train = nn.TrainOneStepWithLossScaleCell(net_with_loss, opt, scale_sense=update_cell)
        # MindSpore's INFNAN overflow check (see above): IsFinite + AddN, which run on CPU.
        train.ascend_910b_target, train._ascend_check_overflow_mode, train.enable_allfinite = True, None, False
    train.set_train()
    trajectory = []
    for x in _inputs(case):
        if update_cell is None:
            train(mindspore.Tensor(x), mindspore.Tensor(y))
            overflow, scale = False, float(manager.get_loss_scale())
        else:
            _, cond, scale_sense = train(mindspore.Tensor(x), mindspore.Tensor(y))
            overflow, scale = bool(cond.asnumpy()), float(scale_sense.asnumpy())
        state: State = {"global_step": opt.global_step.asnumpy().copy()}
        for name, param in zip(("weight", "bias"), opt.parameters, strict=True):
            state[name] = param.asnumpy().copy()
        state["beta1_power"] = opt.beta1_power.asnumpy().copy()
        state["beta2_power"] = opt.beta2_power.asnumpy().copy()
        for prefix in ("moment1", "moment2"):
            for name, param in zip(("weight", "bias"), getattr(opt, prefix), strict=True):
                state[f"{prefix}.{name}"] = param.asnumpy().copy()
        trajectory.append({"overflow": overflow, "scale": scale, "state": state})
    _LOSS_SCALE_ORACLE[case] = trajectory
    return trajectory


@pytest.mark.parametrize("case", LOSS_SCALE_CASES)
def test_loss_scale_overflow_drops_steps_like_mindspore(mindspore: ModuleType, backend_name: str, case: str) -> None:
    theirs = _mindspore_loss_scale_run(mindspore, case)
    ours = _compat_loss_scale_run(backend_name, case)
    assert [step["overflow"] for step in ours] == [step["overflow"] for step in theirs]
    assert [step["scale"] for step in ours] == [step["scale"] for step in theirs]
    assert_trajectory_equal([step["state"] for step in ours], [step["state"] for step in theirs])


def test_loss_scale_cases_do_what_they_say(mindspore: ModuleType) -> None:
    """Each case skips (or, without dropping, takes) the steps it means to, with the scales it means to."""
    runs = {case: _mindspore_loss_scale_run(mindspore, case) for case in LOSS_SCALE_CASES}
    skipped = {case: [i for i, step in enumerate(run) if step["overflow"]] for case, run in runs.items()}
    assert skipped == {"dynamic": [2, 3, 6], "dynamic-huge-scale": [0, 3, 6], "fixed-drop": [1, 4],
                       "fixed-no-drop": []}
    assert [step["scale"] for step in runs["dynamic"]] == [1024.0, 2048.0, 1024.0, 512.0, 512.0, 1024.0, 512.0,
                                                         512.0, 1024.0]
    assert [step["scale"] for step in runs["dynamic-huge-scale"]] == [2.0**106, 2.0**106, 2.0**126] * 3
    for case, run in runs.items():  # a skipped step leaves everything as it was, global_step included
        steps = [int(step["state"]["global_step"][0]) for step in run]
        assert steps == list(np.cumsum([not step["overflow"] for step in run])), case
    no_drop = runs["fixed-no-drop"]  # without dropping, step 3's inf gradients reach the optimizer
    assert all(np.isfinite(value).all() for value in no_drop[2]["state"].values())
    assert np.isnan(no_drop[3]["state"]["weight"]).any() and np.isinf(no_drop[3]["state"]["moment1.weight"]).any()
    # No decision of the huge-scale case sits near float32's limit: gradients at 2**126 are inf,
    # at 2**106 below a 16th of the largest float32.
    weight, bias, _, y = _dense_data()
    for x in _inputs("dynamic-huge-scale"):
        assert not np.isfinite(dense_mse_grads(weight, bias, x, y, np.float32(2.0**126))[0]).all()
        grads = dense_mse_grads(weight, bias, x, y, np.float32(2.0**106))
        assert max(float(np.abs(g).max()) for g in grads) < FLOAT32_MAX / 16
