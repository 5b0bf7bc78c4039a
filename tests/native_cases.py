"""Random float32 Adam states, step hyperparameters and the NumPy reference step for the compiled kernels.

``test_torch_native.py`` and ``test_tensorflow_native.py`` hold ``msadam_torch.native`` and
``msadam_tensorflow.native`` to :func:`reference_step` bit for bit on these states (``tests/`` is
not a package: ``import native_cases``, as ``scenarios`` and ``validation_cases`` are imported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from msadam.backend import StepHyper
from msadam.backends import numpy_kernels

# 1..17 cover "scalar tail only" (< 8) and every tail length; 1000 has no tail; two tensors of
# 100003 (tail 3) take the step past the kernel's parallel grain, so threads split tensors.
SMALL_SIZES = [*range(1, 18), 24, 1000]
# Per-tensor magnitude of gradient and state: ordinary, small, large, squares in float32's subnormal
# range, squares underflowing to zero, squares near the top, squares overflowing to inf. A tensor
# keeps its regime across steps (see test_torch_native.py::test_moments_round_once for states tiny
# against the gradient).
SCALES = [1.0, 1e-3, 1e3, 1e-19, 1e-25, 1e18, 1e20]
TENSORS = [(n, s) for s in SCALES for n in SMALL_SIZES] + [(100_003, 1.0), (100_003, 1e-19)]
DEFAULT = (0.9, 0.999, 1e-8)  # beta1, beta2, eps


def random_values(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Normal values times ``scale``, a quarter of them exactly zero (zero gradients, fresh state)."""
    return (rng.standard_normal(size) * scale * (rng.random(size) < 0.75)).astype(np.float32)


def random_squares(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """A second-moment state for gradients of ``scale`` (finite, non-negative)."""
    x = random_values(rng, size, scale).astype(np.float64)
    return np.minimum(x * x, 3e38).astype(np.float32)


def random_state(rng: np.random.Generator, tensors: list[tuple[int, float]],
                 amsgrad: bool) -> dict[str, list[np.ndarray]]:
    """Weights ``w`` and state ``m``, ``v`` (and ``vhat`` with AMSGrad) for tensors of ``(size, scale)``."""
    state = {
        "w": [random_values(rng, n, 1.0) for n, _ in tensors],
        "m": [random_values(rng, n, s) for n, s in tensors],
        "v": [random_squares(rng, n, s) for n, s in tensors],
    }
    if amsgrad:
        state["vhat"] = [random_squares(rng, n, s) for n, s in tensors]
    return state


def step_hyper(step: int, betas: tuple[float, float, float] = DEFAULT, nesterov: bool = False,
               amsgrad: bool = False, weight_decay: float | None = None,
               grad_scale: float | None = None) -> StepHyper:
    """The float32 hyperparameters of step ``step`` (learning rate ``1e-3 * step``; no centralization)."""
    b1, b2 = np.float32(betas[0]), np.float32(betas[1])
    return StepHyper(lr=np.float32(1e-3 * step), beta1=b1, beta2=b2, eps=np.float32(betas[2]),
                     beta1_power=b1 ** np.float32(step), beta2_power=b2 ** np.float32(step),
                     weight_decay=None if weight_decay is None else np.float32(weight_decay), centralize=False,
                     grad_scale=None if grad_scale is None else np.float32(grad_scale), use_nesterov=nesterov,
                     use_amsgrad=amsgrad)


def reference_step(state: dict[str, list[np.ndarray]], grads: list[np.ndarray], hyper: StepHyper) -> None:
    """The NumPy reference's step of ``state``, in place (weight decay and loss scale included)."""
    vhat = state.get("vhat")
    with np.errstate(all="ignore"):  # overflow to inf and inf - inf, as in MindSpore
        for i, g in enumerate(grads):
            g = numpy_kernels.preprocess(g, state["w"][i], hyper)
            numpy_kernels.adam(state["w"][i], state["m"][i], state["v"][i], None if vhat is None else vhat[i], g,
                               hyper)


def assert_bits_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal as float32 bit patterns (so -0.0 != 0.0), with any NaN matching any NaN."""
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan, err_msg=what)
    np.testing.assert_array_equal(actual.view(np.int32)[~nan], expected.view(np.int32)[~nan], err_msg=what)


def assert_states_equal(ours: dict[str, list[Any]], ref: dict[str, list[Any]], label: str) -> None:
    """:func:`assert_bits_equal` for each array of ``ref`` (NumPy arrays, or anything with ``.numpy()``)
    and its counterpart in ``ours`` (framework tensors or variables: anything with ``.numpy()``)."""
    for key, arrays in ref.items():
        for i, (actual, expected) in enumerate(zip(ours[key], arrays, strict=True)):
            expected = expected if isinstance(expected, np.ndarray) else expected.numpy()
            assert_bits_equal(actual.numpy(), expected, f"{label}: {key} of tensor {i} (size {expected.size})")
