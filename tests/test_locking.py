"""``use_locking=True``: concurrent ``opt(grads)`` calls are whole steps, one after another, on every backend.

Eight threads wait on a ``threading.Barrier`` and call the same optimizer at once, a few rounds each.
The result must be *bit for bit* a sequential run: with one gradient for all threads any order gives
the same numbers; with a different gradient per thread the order in which the threads took the lock
is recorded (inside the lock) and replayed sequentially on a fresh optimizer. What
``use_locking=False`` does instead is documented in docs/semantics.md (*What use_locking ... mean here*).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import msadam
from msadam.tensor import Parameter

THREADS, ROUNDS = 8, 3
SHAPES = {"w": (64, 33), "b": (33,)}  # 33 columns: both the 8-wide and the scalar-tail paths of the kernels


def _optimizer(backend_name: str, use_locking: bool) -> msadam.Adam:
    """Two buckets (different learning rates), so a step is several kernel calls that could interleave."""
    rng = np.random.default_rng(3)
    params = {name: Parameter(rng.standard_normal(shape).astype(np.float32), name=name, backend=backend_name)
              for name, shape in SHAPES.items()}
    return msadam.Adam([{"params": [params["w"]]}, {"params": [params["b"]], "lr": 0.05}], learning_rate=0.01,
                       weight_decay=0.01, use_locking=use_locking)


def _gradients(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape).astype(np.float32) for shape in SHAPES.values())


def _in_threads(call: Callable[[int], Any]) -> list[BaseException]:
    """Run ``call(i)`` in ``THREADS`` threads released together; the exceptions they raised."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            call(i)
        except BaseException as exc:  # collected, and checked by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a step never finished (deadlock?)"
    return errors


def _sequential(backend_name: str, grads: list[tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    opt = _optimizer(backend_name, use_locking=False)
    for g in grads:
        opt(g)
    return opt.state_dict()


def assert_bits_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype and actual[name].tobytes() == value.tobytes(), name


def _threaded_round(backend_name: str, grads: list[tuple[np.ndarray, ...]]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Thread ``i`` steps a fresh locking optimizer with ``grads[i]``: the state, and the order the steps ran in."""
    opt = _optimizer(backend_name, use_locking=True)
    order: list[int] = []
    step = opt._step

    def recorded(gradients: Any) -> Any:
        order.append(next(i for i, g in enumerate(grads) if g is gradients))  # inside the lock: the real order
        return step(gradients)

    opt._step = recorded  # type: ignore[method-assign]
    assert _in_threads(lambda i: opt(grads[i])) == []
    return opt.state_dict(), order


def test_same_gradient_from_eight_threads_equals_eight_sequential_steps(backend_name: str) -> None:
    grads = _gradients(1)
    expected = _sequential(backend_name, [grads] * THREADS)
    assert expected["global_step"].tolist() == [THREADS]
    for _ in range(ROUNDS):
        state, _order = _threaded_round(backend_name, [grads] * THREADS)
        assert_bits_equal(state, expected)


def test_different_gradients_equal_the_sequential_run_in_lock_order(backend_name: str) -> None:
    grads = [_gradients(10 + i) for i in range(THREADS)]
    for _ in range(ROUNDS):
        state, order = _threaded_round(backend_name, grads)
        assert sorted(order) == list(range(THREADS))
        assert state["global_step"].tolist() == [THREADS]
        assert_bits_equal(state, _sequential(backend_name, [grads[i] for i in order]))


def test_a_failing_call_releases_the_lock_and_changes_nothing(backend_name: str) -> None:
    """One thread's bad gradient is its own error; the seven good steps all happen, as seven sequential ones."""
    grads = _gradients(1)
    bad = (grads[0], grads[1][:-1])
    expected = _sequential(backend_name, [grads] * (THREADS - 1))
    opt = _optimizer(backend_name, use_locking=True)
    errors = _in_threads(lambda i: opt(bad if i == 3 else grads))
    assert [type(e) for e in errors] == [ValueError]
    assert_bits_equal(opt.state_dict(), expected)


@pytest.mark.parametrize("use_locking", [True, False])
def test_use_locking_does_not_change_the_numbers(backend_name: str, use_locking: bool) -> None:
    """Called from one thread, the flag changes nothing (it reaches the kernels only as MindSpore's flag does)."""
    grads = [_gradients(20 + i) for i in range(3)]
    opt = _optimizer(backend_name, use_locking)
    for g in grads:
        opt(g)
    assert_bits_equal(opt.state_dict(), _sequential(backend_name, grads))
