"""Half precision: float16 parameters step as MindSpore 2.10 steps them on the CPU, bit for bit;
what MindSpore refuses (bfloat16; float16 with AMSGrad, offload or a sparse gradient) msadam refuses
with MindSpore's ``TypeError``, at the first step, changing nothing.

MindSpore registers its CPU ``Adam`` kernel for float32 only, so for a float16 parameter it runs the
float32 kernel (nnacl ``AdamFp32``) on float32 copies of ``w``, ``m``, ``v`` and the gradient (after
weight decay and loss scale in float16) and casts the results back (docs/semantics.md, *Half
precision*; ``numpy_kernels.VIA_FLOAT32``). Three layers of tests:

* live against real MindSpore (skipped without it): every configuration, every step, every state
  array compared bit for bit; and each refusal raised by MindSpore too;
* every installed backend against the NumPy reference, bit for bit, and with the same refusals;
* the reference's arithmetic, spelled out independently of MindSpore.
"""

from __future__ import annotations

import contextlib
import functools
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from mindspore_steps import sparse_caller  # tests/ is not a package

import msadam
from msadam.backends import numpy_kernels

F16 = np.float16
# Sizes 13 (a scalar tail of 5), 64 (none), 105 (1): the float32 kernel's scalar loop is reproduced too.
SHAPES: list[tuple[int, ...]] = [(13,), (4, 16), (3, 5, 7)]
STEPS = 6

# name -> (Adam keyword arguments, scale of the gradients). Scales 1e-4 make v underflow in float16
# (0 after the round trip, so the next step divides by eps alone); 4000 makes it overflow (inf).
CONFIGS: dict[str, tuple[dict[str, Any], float]] = {
    "plain": ({}, 1.0),
    "nesterov": ({"use_nesterov": True, "learning_rate": 0.01}, 1e-2),
    "decay-loss-scale": ({"weight_decay": 0.05, "loss_scale": 64.0, "learning_rate": 0.1}, 1.0),
    "nesterov-decay-eps": ({"use_nesterov": True, "weight_decay": 0.01, "eps": 1e-3, "beta1": 0.5,
                            "beta2": 0.9}, 1.0),
    "v-underflows": ({"learning_rate": 1e-4}, 1e-4),
    "v-overflows": ({"learning_rate": 0.5}, 4000.0),
    "lazy-dense-gradients": ({"use_lazy": True}, 1e-1),
    # groups: (indices of SHAPES, the group's own keys)
    "grouped": ({"groups": [((0,), {"lr": 0.05, "weight_decay": 0.1}), ((1, 2), {"weight_decay": 0.0})],
                 "use_nesterov": True, "loss_scale": 8.0}, 1.0),
}


def _grouped(params: list[Any], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``Adam``'s first argument and its other keywords, for a configuration of ``CONFIGS``."""
    kwargs = dict(kwargs)
    groups = kwargs.pop("groups", None)
    if groups is None:
        return params, kwargs
    return [{"params": [params[i] for i in members], **keys} for members, keys in groups], kwargs


def _initial(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(F16) for shape in SHAPES]


def _gradients(scale: float, seed: int = 1) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    limit = float(np.finfo(F16).max) / 2  # finite gradients
    return [tuple(np.clip(rng.standard_normal(shape) * scale * 10.0 ** rng.uniform(-1, 1), -limit, limit).astype(F16)
                  for shape in SHAPES) for _ in range(STEPS)]


def _bits(array: Any) -> np.ndarray:
    """float16 bits, every NaN made one (a NaN's sign and payload are the CPU's, not the algorithm's)."""
    array = np.asarray(array)
    return np.where(np.isnan(array), np.uint16(0x7E00), array.view(np.uint16))


def _same(a: Any, b: Any) -> bool:
    """The same dtype, shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _run(backend: str, kwargs: dict[str, Any], grads: list[tuple[np.ndarray, ...]]) -> list[dict[str, np.ndarray]]:
    """msadam.Adam on ``backend``: the state_dict after every step."""
    params = [msadam.Parameter(w, name=f"w{i}", backend=backend) for i, w in enumerate(_initial())]
    items, kwargs = _grouped(params, kwargs)
    opt = msadam.Adam(items, **kwargs)
    states = []
    for step_grads in grads:
        assert opt(step_grads) == (True,) * len(params)
        states.append(opt.state_dict())
    return states


@functools.cache
def _reference(config: str) -> list[dict[str, np.ndarray]]:
    """The NumPy reference's states for a configuration of ``CONFIGS`` (computed once)."""
    kwargs, scale = CONFIGS[config]
    return _run("numpy", kwargs, _gradients(scale))


def _assert_same_bits(ours: dict[str, np.ndarray], expected: dict[str, np.ndarray], where: str) -> None:
    for name, value in expected.items():
        if np.asarray(value).dtype == F16:
            assert np.asarray(ours[name]).dtype == F16, f"{where}: {name}"
            assert np.array_equal(_bits(ours[name]), _bits(value)), f"{where}: {name} differs"


# ----------------------------------------------------------------------------- live: MindSpore itself


def _mindspore_run(ms: ModuleType, kwargs: dict[str, Any], grads: list[tuple[np.ndarray, ...]]
                   ) -> list[dict[str, np.ndarray]]:
    params = [ms.Parameter(ms.Tensor(w), name=f"w{i}") for i, w in enumerate(_initial())]
    items, kwargs = _grouped(params, kwargs)
    opt = ms.nn.Adam(items, **kwargs)
    states = []
    for step_grads in grads:
        opt(tuple(ms.Tensor(g) for g in step_grads))
        state = {p.name: p.asnumpy().copy() for p in params}
        for prefix, moments in (("moment1", opt.moment1), ("moment2", opt.moment2)):
            state.update({f"{prefix}.{p.name}": m.asnumpy().copy() for p, m in zip(params, moments, strict=True)})
        states.append(state)
    return states


@pytest.mark.parametrize("config", CONFIGS)
def test_float16_matches_mindspore_bit_for_bit(mindspore: ModuleType, config: str) -> None:
    kwargs, scale = CONFIGS[config]
    expected = _mindspore_run(mindspore, kwargs, _gradients(scale))
    ours = _reference(config)
    assert expected[0]["moment1.w0"].dtype == F16  # MindSpore's moments are clones of the parameters
    for step, (mine, theirs) in enumerate(zip(ours, expected, strict=True), 1):
        _assert_same_bits(mine, theirs, f"{config}, step {step}")
    if config == "v-underflows":
        assert not expected[0]["moment2.w0"].any()  # the regime is reached: v is 0 in float16
    if config == "v-overflows":
        assert np.isinf(expected[0]["moment2.w0"]).any()


def _mindspore_refuses(ms: ModuleType, refused: str) -> None:
    """``refused`` on real MindSpore: the optimizer is built, its first step raises TypeError."""
    if refused == "bfloat16":
        # Under NumPy 2, MindSpore 2.10 cannot build a bfloat16 Parameter from data, nor clone one
        # (its initializer goes through a NumPy bfloat16); build float32 and retype, as NumPy 1 would.
        param = ms.Parameter(ms.Tensor(np.ones(5, np.float32)), name="w")
        opt = ms.nn.Adam([param])
        for p in (param, *opt.moment1, *opt.moment2):
            p.set_dtype(ms.bfloat16)
        with pytest.raises(TypeError):
            opt((ms.Tensor(np.ones(5, np.float32)).astype(ms.bfloat16),))
        return
    flags = {"amsgrad": {"use_amsgrad": True}, "offload": {"use_offload": True}, "sparse-lazy": {"use_lazy": True}}
    param = ms.Parameter(ms.Tensor(np.ones((4, 3), F16)), name="w")
    opt = ms.nn.Adam([param], **flags.get(refused, {}))
    assert opt.moment1[0].dtype == ms.float16
    if not refused.startswith("sparse"):
        with pytest.raises(TypeError):
            opt((ms.Tensor(np.ones((4, 3), F16)),))
        return
    if refused == "sparse-cpu":
        opt.target = "CPU"

    with pytest.raises(TypeError, match="cannot be converted"):
        sparse_caller(ms)(opt, (4, 3))(ms.Tensor(np.array([1, 3], np.int32)), ms.Tensor(np.ones((2, 3), F16)))


REFUSED = ["bfloat16", "amsgrad", "offload", "sparse", "sparse-lazy", "sparse-cpu"]


@pytest.mark.parametrize("refused", REFUSED)
def test_mindspore_refuses_at_the_first_step(mindspore: ModuleType, refused: str) -> None:
    _mindspore_refuses(mindspore, refused)


# ----------------------------------------------------------------------------- every backend


@pytest.mark.parametrize("config", ["plain", "decay-loss-scale", "nesterov-decay-eps", "v-underflows", "v-overflows",
                                    "grouped"])
def test_backends_match_the_reference_bit_for_bit(backend_name: str, config: str) -> None:
    kwargs, scale = CONFIGS[config]
    reference = _reference(config)
    ours = _run(backend_name, kwargs, _gradients(scale))
    for step, (mine, expected) in enumerate(zip(ours, reference, strict=True), 1):
        _assert_same_bits(mine, expected, f"{backend_name} {config}, step {step}")
    assert {k: v.dtype for k, v in ours[-1].items() if k.startswith(("moment", "w"))} == \
        {k: np.dtype(F16) for k in ours[-1] if k.startswith(("moment", "w"))}


def test_grouped_buckets_match_the_reference(backend_name: str) -> None:
    """float16 and float32 parameters side by side, two learning rates: one bucket per dtype and group."""
    rng = np.random.default_rng(7)
    values = [rng.standard_normal(s).astype(dtype) for s, dtype in [((9,), F16), ((9,), np.float32), ((2, 16), F16)]]
    grads = [tuple(rng.standard_normal(v.shape).astype(v.dtype) for v in values) for _ in range(4)]

    def run(backend: str) -> dict[str, np.ndarray]:
        ps = [msadam.Parameter(v, name=f"p{i}", backend=backend) for i, v in enumerate(values)]
        opt = msadam.Adam([{"params": ps[:2], "lr": 0.05, "weight_decay": 0.1}, {"params": ps[2:]}],
                          use_nesterov=True, loss_scale=8.0)
        for g in grads:
            opt(g)
        return opt.state_dict()

    reference, ours = run("numpy"), run(backend_name)
    for name, value in reference.items():
        assert _same(ours[name], value), name


def _refused_optimizer(backend: str, refused: str) -> tuple[msadam.Adam, tuple[Any, ...]]:
    if refused == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        bf16 = np.dtype(ml_dtypes.bfloat16)
        if backend == "mindspore":
            pytest.skip("the mindspore backend refuses bfloat16 when the optimizer is built (its moments need NumPy 1)")
        with contextlib.suppress(TypeError):  # a backend without bfloat16 refuses it when the Parameter is made
            param = msadam.Parameter(np.ones((4, 3), bf16), name="w", backend=backend)
            grad = msadam.Parameter(np.ones((4, 3), bf16), name="g", backend=backend).data  # a native array
            return msadam.Adam([param]), (grad,)
        pytest.skip(f"the {backend} backend holds no bfloat16 arrays")
    param = msadam.Parameter(np.ones((4, 3), F16), name="w", backend=backend)
    if refused.startswith("sparse"):
        opt = msadam.Adam([param], use_lazy=refused == "sparse-lazy")
        if refused == "sparse-cpu":
            opt.target = "CPU"
        return opt, (msadam.RowTensor(np.array([1, 3]), np.ones((2, 3), F16), (4, 3)),)
    opt = msadam.Adam([param], use_amsgrad=refused == "amsgrad", use_offload=refused == "offload")
    return opt, (np.ones((4, 3), F16),)


@pytest.mark.parametrize("refused", REFUSED)
def test_refused_at_the_first_step_changing_nothing(backend_name: str, refused: str) -> None:
    opt, grads = _refused_optimizer(backend_name, refused)
    before = opt.state_dict()
    assert before["moment1.w"].dtype == before["w"].dtype  # built fine, moments in the parameter's dtype
    with pytest.raises(TypeError, match=r"MindSpore 2\.10 cannot step here"):
        opt(grads)
    after = opt.state_dict()
    assert before.keys() == after.keys()
    assert all(_same(before[k], after[k]) for k in before)


def test_float32_gradients_for_float16_parameters_are_refused(backend_name: str) -> None:
    """MindSpore cannot convert the float16 Parameter to the gradient's float32 (TypeError)."""
    param = msadam.Parameter(np.ones(3, F16), name="w", backend=backend_name)
    opt = msadam.Adam([param])
    with pytest.raises(TypeError):
        opt((np.ones(3, np.float32),))
    assert int(opt.global_step.asnumpy()[0]) == 0


# ----------------------------------------------------------------------------- the reference's arithmetic


def test_reference_is_the_float32_kernel_rounded_back() -> None:
    """One step spelled out: decay and loss scale in float16, the float32 kernel, float16 results."""
    w = np.array([0.5, -1.25, 3.0], F16)
    g = np.array([0.1, -0.2, 1e-3], F16)
    opt = msadam.Adam([msadam.Parameter(w, name="w")], learning_rate=0.1, weight_decay=0.5, loss_scale=2.0)
    opt((g,))
    g16 = (w * F16(np.float32(0.5) * np.float32(2.0)) + g) * F16(np.float32(0.5))  # each product rounded to float16
    g32 = g16.astype(np.float32)
    m32 = np.float32(1 - np.float32(0.9)) * g32  # m = fma(g - 0, 1-b1, 0)
    v32 = np.float32(1 - np.float32(0.999)) * (g32 * g32)  # v = fma(fma(g, g, -0), 1-b2, 0)
    lr_t = np.float32(np.float32(0.1) * np.sqrt(np.float32(1) - np.float32(0.999)) / (np.float32(1) - np.float32(0.9)))
    # size 3 < 8: all three elements go through nnacl's scalar loop (the update in double)
    w_new = (w.astype(np.float64) - (lr_t * m32).astype(np.float64)
             / (np.sqrt(v32.astype(np.float64)) + np.float64(np.float32(1e-8)))).astype(np.float32)
    state = opt.state_dict()
    assert np.array_equal(_bits(state["moment1.w"]), _bits(m32.astype(F16)))
    assert np.array_equal(_bits(state["moment2.w"]), _bits(v32.astype(F16)))
    assert np.array_equal(_bits(state["w"]), _bits(w_new.astype(F16)))
    # The formula in float16 would be far off: eps = 1e-8 is 0 there, and 1 - beta2 is 0.000977.
    assert F16(1e-8) == 0


def test_kernel_routes_float16_through_float32() -> None:
    assert np.dtype(F16) in numpy_kernels.VIA_FLOAT32 and np.dtype(np.float32) not in numpy_kernels.VIA_FLOAT32
