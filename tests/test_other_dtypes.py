"""float64 and non-float parameters: stepped where MindSpore 2.10 steps them, refused where it refuses them.

(float16 and bfloat16: ``test_half_precision.py``.) Measured with MindSpore 2.10 on the CPU
(``docs/semantics.md``, *float64 and other dtypes*; ``msadam.kernel_dtypes``): ``mindspore.nn.Adam``
is built over float64 parameters (float64 moments) and

* **steps them in float64** with ``use_amsgrad=True`` (``ApplyAdamWithAmsgradV2``) and with a
  ``RowTensor`` gradient on the default composite sparse path (lazy or not, de-duplicated or not);
* **raises** ``TypeError`` **at the first step**, changing nothing, on the dense ``P.Adam`` path
  (plain, Nesterov, weight decay, ``use_lazy`` with a dense gradient, a float32 gradient cast to
  the float64 parameter), with ``use_offload`` and on the fused sparse kernels (``target='CPU'``).

Integer parameters are refused on every path. Two layers: live against MindSpore (its refusals,
and its float64 trajectories, which the NumPy reference reproduces bit for bit — with AMSGrad that
takes the kernel's own double formula, ``numpy_kernels._amsgrad_float64``); every installed backend
against the NumPy reference, bit for bit, with the same refusals and no state change.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from mindspore_steps import sparse_caller  # tests/ is not a package

import msadam
from msadam.parity.oracle import set_target
from msadam.testing import assert_trajectories_close

TABLE = (6, 3)
STEPS = 6
LR = 0.01

# name -> (Adam keyword arguments, "dense" or "sparse", opt.target or None)
Path = tuple[dict[str, Any], str, str | None]
FLOAT64_STEPPED: dict[str, Path] = {
    "amsgrad": ({"use_amsgrad": True}, "dense", None),
    "amsgrad-decay-loss-scale": ({"use_amsgrad": True, "weight_decay": 0.1, "loss_scale": 4.0}, "dense", None),
    "sparse": ({}, "sparse", None),
    "sparse-lazy": ({"use_lazy": True}, "sparse", None),
    "sparse-nesterov-decay": ({"use_nesterov": True, "weight_decay": 0.05}, "sparse", None),
    "sparse-gpu-unique": ({"loss_scale": 2.0}, "sparse", "GPU"),
}
FLOAT64_REFUSED: dict[str, Path] = {
    "dense": ({}, "dense", None),
    "nesterov": ({"use_nesterov": True}, "dense", None),
    "weight-decay": ({"weight_decay": 0.1}, "dense", None),
    "lazy-dense-gradient": ({"use_lazy": True}, "dense", None),
    "float32-gradient": ({}, "dense-float32", None),
    "offload": ({"use_offload": True}, "dense", None),
    "sparse-cpu": ({}, "sparse", "CPU"),
    "sparse-lazy-cpu": ({"use_lazy": True}, "sparse", "CPU"),
}
INT32_REFUSED: dict[str, Path] = {
    "int32-dense": ({}, "dense", None),
    "int32-amsgrad": ({"use_amsgrad": True}, "dense", None),
    "int32-sparse": ({}, "sparse", None),
}
REFUSED = {**FLOAT64_REFUSED, **INT32_REFUSED}


def _dtype(name: str) -> np.dtype:
    return np.dtype(np.int32 if name.startswith("int32") else np.float64)


def _initial(dtype: np.dtype) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(TABLE) * 4).astype(dtype)


def _steps(dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per step: RowTensor indices (a repeated row) and values, and a dense gradient."""
    rng = np.random.default_rng(1)
    return [(np.array([0, 2, 2, 5], np.int32), (rng.standard_normal((4, TABLE[1])) * 3).astype(dtype),
             (rng.standard_normal(TABLE) * 3).astype(dtype)) for _ in range(STEPS)]


def _gradient(kind: str, step: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    indices, values, dense = step
    if kind == "sparse":
        return msadam.RowTensor(indices, values, TABLE)
    return dense.astype(np.float32) if kind == "dense-float32" else dense


def _optimizer(backend: str, path: Path, dtype: np.dtype) -> msadam.Adam:
    kwargs, _, target = path
    opt = msadam.Adam([msadam.Parameter(_initial(dtype), name="w", backend=backend)], learning_rate=LR, **kwargs)
    if target is not None:
        opt.target = target
    return opt


def _msadam_run(backend: str, name: str) -> dict[str, np.ndarray]:
    """msadam's trajectory: every state array (learning rates aside), stacked over the steps."""
    path = FLOAT64_STEPPED[name]
    opt = _optimizer(backend, path, np.dtype(np.float64))
    states = []
    for step in _steps(np.dtype(np.float64)):
        assert opt((_gradient(path[1], step),)) == (True,)
        states.append({k: np.array(v) for k, v in opt.state_dict().items() if not k.startswith("learning_rate")})
    return {k: np.stack([s[k] for s in states]) for k in states[0]}


@functools.cache
def _reference(name: str) -> dict[str, np.ndarray]:
    return _msadam_run("numpy", name)


# ----------------------------------------------------------------------------- live: MindSpore itself


def _mindspore_optimizer(ms: ModuleType, path: Path, dtype: np.dtype) -> tuple[Any, Any]:
    kwargs, _, target = path
    param = ms.Parameter(ms.Tensor(_initial(dtype)), name="w")
    opt = ms.nn.Adam([param], learning_rate=LR, **kwargs)
    if target is not None:
        set_target(opt, {"target": target, "unique": True})  # 'GPU' on a CPU machine: the private pair
    return param, opt


def _mindspore_step(ms: ModuleType, opt: Any, kind: str, step: tuple[np.ndarray, np.ndarray, np.ndarray],
                    sparse_step: Any) -> None:
    indices, values, dense = step
    if kind == "sparse":
        sparse_step(ms.Tensor(indices), ms.Tensor(values))
    else:
        opt((ms.Tensor(dense.astype(np.float32) if kind == "dense-float32" else dense),))


@pytest.mark.parametrize("name", FLOAT64_STEPPED)
def test_float64_trajectories_match_mindspore(mindspore: ModuleType, name: str) -> None:
    path = FLOAT64_STEPPED[name]
    param, opt = _mindspore_optimizer(mindspore, path, np.dtype(np.float64))
    sparse_step = sparse_caller(mindspore)(opt, TABLE) if path[1] == "sparse" else None
    states = []
    for step in _steps(np.dtype(np.float64)):
        _mindspore_step(mindspore, opt, path[1], step, sparse_step)
        state = {"w": param.asnumpy().copy(), "moment1.w": opt.moment1[0].asnumpy().copy(),
                 "moment2.w": opt.moment2[0].asnumpy().copy()}
        if path[0].get("use_amsgrad"):
            state["vhat.w"] = opt.vhat[0].asnumpy().copy()
        states.append(state)
    expected = {k: np.stack([s[k] for s in states]) for k in states[0]}
    assert all(v.dtype == np.float64 for v in expected.values())  # MindSpore ran it in float64
    ours = {k: v for k, v in _reference(name).items() if k in expected}
    assert all(v.dtype == np.float64 for v in ours.values())
    assert_trajectories_close(expected, ours, 0.0, label=f"{name}: msadam vs MindSpore")


@pytest.mark.parametrize("name", REFUSED)
def test_mindspore_refuses_at_the_first_step(mindspore: ModuleType, name: str) -> None:
    path, dtype = REFUSED[name], _dtype(name)
    param, opt = _mindspore_optimizer(mindspore, path, dtype)
    assert opt.moment1[0].asnumpy().dtype == dtype  # built: its moments are clones of the parameter
    sparse_step = sparse_caller(mindspore)(opt, TABLE) if path[1] == "sparse" else None
    with pytest.raises(TypeError):
        _mindspore_step(mindspore, opt, path[1], _steps(dtype)[0], sparse_step)
    assert np.array_equal(param.asnumpy(), _initial(dtype))


# ----------------------------------------------------------------------------- every backend


def _holds(backend: str, dtype: np.dtype) -> None:
    try:
        msadam.Parameter(np.zeros(1, dtype), name="probe", backend=backend)
    except TypeError as exc:  # JAX without jax_enable_x64 has no 64-bit arrays
        pytest.skip(f"the {backend} backend holds no {dtype} arrays: {exc}")


@pytest.mark.parametrize("name", FLOAT64_STEPPED)
def test_float64_steps_match_the_reference(backend_name: str, name: str) -> None:
    _holds(backend_name, np.dtype(np.float64))
    ours = _msadam_run(backend_name, name)
    assert all(v.dtype == np.float64 for k, v in ours.items() if k.startswith(("w", "moment", "vhat")))
    assert_trajectories_close(_reference(name), ours, 0.0, label=f"{backend_name} {name} vs the NumPy reference")


@pytest.mark.parametrize("name", REFUSED)
def test_refused_at_the_first_step_changing_nothing(backend_name: str, name: str) -> None:
    path, dtype = REFUSED[name], _dtype(name)
    _holds(backend_name, dtype)
    opt = _optimizer(backend_name, path, dtype)
    before = {k: np.array(v) for k, v in opt.state_dict().items()}
    assert before["moment1.w"].dtype == dtype  # built, as mindspore.nn.Adam is
    with pytest.raises(TypeError, match=r"MindSpore 2\.10 cannot step here"):
        opt((_gradient(path[1], _steps(dtype)[0]),))
    after = opt.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert np.array_equal(np.asarray(after[key]), value) and np.asarray(after[key]).dtype == value.dtype, key


@pytest.mark.parametrize("name", FLOAT64_STEPPED)
def test_jax_steps_float64_with_x64_enabled(name: str) -> None:
    """JAX holds float64 only under ``jax_enable_x64`` (the jax case above skips without it)."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("msadam_jax")
    with jax.enable_x64(True):
        ours = _msadam_run("jax", name)
    assert all(v.dtype == np.float64 for k, v in ours.items() if k.startswith(("w", "moment", "vhat")))
    assert_trajectories_close(_reference(name), ours, 0.0, label=f"jax (x64) {name} vs the NumPy reference")
