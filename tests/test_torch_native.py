"""The compiled torch kernel (msadam_torch.native) against the NumPy reference, bit for bit."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("msadam_torch.native")

import native_cases as nc  # tests/ is not a package
import torch
from msadam_torch import native

from msadam.backend import StepHyper

STEPS = 4


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    if not native.available():
        pytest.skip(f"native kernel unavailable: {native.status()}")


def _native_step(state: dict[str, list[torch.Tensor]], grads: list[np.ndarray], hyper: StepHyper,
                 isa: str | None = None) -> None:
    assert native.adam_step_(state["w"], [torch.tensor(g) for g in grads], state["m"], state["v"],
                             state.get("vhat"), hyper, isa=isa)


def _torch_state(state: dict[str, list[np.ndarray]]) -> dict[str, list[torch.Tensor]]:
    return {key: [torch.tensor(a) for a in arrays] for key, arrays in state.items()}


@pytest.mark.parametrize("isa", native.isas() or ["none"])
@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
@pytest.mark.parametrize("nesterov", [False, True], ids=["plain", "nesterov"])
@pytest.mark.parametrize("betas", [nc.DEFAULT, (0.25, 0.5, 1e-3)], ids=["default", "odd"])
def test_bit_exact_with_numpy_reference(isa: str, amsgrad: bool, nesterov: bool,
                                        betas: tuple[float, float, float]) -> None:
    rng = np.random.default_rng([amsgrad, nesterov, int(betas[0] * 100)])
    ref = nc.random_state(rng, nc.TENSORS, amsgrad)
    ours = _torch_state(ref)
    for step in range(1, STEPS + 1):
        hyper = nc.step_hyper(step, betas, nesterov=nesterov, amsgrad=amsgrad)
        grads = [nc.random_values(rng, n, s) for n, s in nc.TENSORS]
        nc.reference_step(ref, grads, hyper)
        _native_step(ours, grads, hyper, isa)
        nc.assert_states_equal(ours, ref, f"step {step}")


def test_one_thread_equals_many() -> None:
    rng = np.random.default_rng(7)
    state = nc.random_state(rng, nc.TENSORS, amsgrad=False)
    grads = [nc.random_values(rng, n, s) for n, s in nc.TENSORS]
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, max(2, threads)):
            torch.set_num_threads(count)
            ours = _torch_state(state)
            _native_step(ours, grads, nc.step_hyper(1))
            results.append(torch.cat(ours["w"] + ours["m"] + ours["v"]))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])


def _halves(sizes: list[int], dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    return [torch.full((n,), 0.5, dtype=dtype) for n in sizes]


@pytest.mark.parametrize("spoil", ["float64", "strided grad", "one float64 state"])
def test_refuses_without_writing(spoil: str) -> None:
    sizes = [9, 100, 17]
    dtype = torch.float64 if spoil == "float64" else torch.float32
    w, g, m, v = (_halves(sizes, dtype) for _ in range(4))
    if spoil == "strided grad":
        g[1] = torch.full((200,), 0.5)[::2]
    elif spoil == "one float64 state":
        m[2] = m[2].double()
    before = [t.clone() for t in w + m + v]
    assert not native.adam_step_(w, g, m, v, None, nc.step_hyper(1))
    for old, new in zip(before, w + m + v, strict=True):
        assert torch.equal(old, new)


def test_empty_and_zero_size() -> None:
    hyper = nc.step_hyper(1)
    assert native.adam_step_([], [], [], [], None, hyper)
    w, g, m, v = (_halves([0, 3]) for _ in range(4))
    assert native.adam_step_(w, g, m, v, None, hyper)
    assert w[0].numel() == 0 and not torch.equal(w[1], torch.full((3,), 0.5))


def test_amsgrad_without_vhat_follows_the_reference() -> None:
    """``use_amsgrad`` without ``vhat``: no Nesterov anywhere (AMSGrad has no Nesterov form), as the reference."""
    rng = np.random.default_rng(3)
    tensors = [(13, 1.0), (16, 1.0)]
    ref = nc.random_state(rng, tensors, amsgrad=False)
    ours = _torch_state(ref)
    hyper = nc.step_hyper(1, nesterov=True, amsgrad=True)
    grads = [nc.random_values(rng, n, s) for n, s in tensors]
    nc.reference_step(ref, grads, hyper)
    _native_step(ours, grads, hyper)
    nc.assert_states_equal(ours, ref, "amsgrad without vhat")


def test_bumps_version_counters() -> None:
    w, g, m, v = (_halves([10]) for _ in range(4))
    versions = [t._version for t in w + m + v]
    assert native.adam_step_(w, g, m, v, None, nc.step_hyper(1))
    assert [t._version for t in w + m + v] == [n + 1 for n in versions]


def test_status_reports_ready() -> None:
    assert native.status().startswith("ready")


# Fused multiply-adds that computing a*b + c in float64 and then rounding to float32 gets wrong:
# with 1 - beta = 0.75, about one product in six is exactly halfway between two float32 values,
# and a tiny nonzero state (m, v far below the gradient's square) decides the direction. A float64
# sum drops it and rounds to the midpoint; the second rounding then ties to even, whereas one
# rounding of the exact value (fmaf, MindSpore's vector FMA) goes the state's way.
HAZARD_SIZE = 2051  # 2048 in the vector loop, 3 in the scalar tail


def _hazard() -> tuple[dict[str, list[np.ndarray]], list[np.ndarray], StepHyper]:
    rng = np.random.default_rng(11)
    g = rng.standard_normal(HAZARD_SIZE).astype(np.float32)
    state = {
        "w": [np.ones(HAZARD_SIZE, np.float32)],
        "m": [(rng.standard_normal(HAZARD_SIZE) * 1e-30).astype(np.float32)],
        "v": [(rng.random(HAZARD_SIZE) * 1e-40).astype(np.float32)],  # subnormal
    }
    return state, [g], nc.step_hyper(1, (0.25, 0.25, 1e-8))


def _round32(x: Fraction) -> np.float32:
    """``x`` correctly rounded to float32 (to nearest, ties to even)."""
    guess = np.float32(float(x))  # float(x) is correctly rounded; the cast may be off by one ulp
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - x), int(c.view(np.int32)) & 1))


def _exact_fma(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    return _round32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


@pytest.mark.parametrize("isa", native.isas() or ["none"])
def test_moments_round_once(isa: str) -> None:
    state, (g,), hyper = _hazard()
    m0, v0 = state["m"][0], state["v"][0]
    ours = _torch_state(state)
    _native_step(ours, [g], hyper, isa)
    one = np.float32(1)
    c1, c2 = one - hyper.beta1, one - hyper.beta2
    expected_m = [_exact_fma(gi - mi, c1, mi) for gi, mi in zip(g, m0, strict=True)]
    expected_v = [_exact_fma(_exact_fma(gi, gi, -vi), c2, vi) for gi, vi in zip(g, v0, strict=True)]
    nc.assert_bits_equal(ours["m"][0].numpy(), np.array(expected_m, np.float32), "m")
    nc.assert_bits_equal(ours["v"][0].numpy(), np.array(expected_v, np.float32), "v")


def test_numpy_reference_rounds_fma_once() -> None:
    """At float32 midpoints the reference's fma32 rounds once, as the native fmaf (and MindSpore's FMA) does."""
    state, grads, hyper = _hazard()
    ours = _torch_state(state)
    _native_step(ours, grads, hyper)
    nc.reference_step(state, grads, hyper)
    nc.assert_states_equal(ours, state, "hazard")
