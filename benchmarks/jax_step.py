"""JAX step time: msadam's jitted bucket step and optimizers against optax.adam and the memory bound.

The issue's targets: 10M float32 parameters in 80 tensors at most 1.05x ``optax.adam`` (under
``jax.jit`` with donation) and at most 1.3x the memory-bandwidth bound. 1,000 x 1k and 1 x 10M are
printed for context.

Everything is measured in this run, on JAX's default device: the median time of one step of
(a) ``kernel``: ``msadam_jax.steps.dense_step`` on lists of arrays, the backend's bucket step alone
(it donates and replaces the list elements): the compiled one-pass kernel (``msadam_jax.native``)
when it is available; (a') ``xla``: the same with that kernel off (``MSADAM_JAX_NATIVE=0``);
(b) ``msadam``: the whole ``msadam.Adam`` on the jax backend, ``opt(grads)``, i.e. (a) plus the
core's Python per-step work; (c) ``msadam_jax``:
``msadam_jax.adam`` in a jitted step ``u, s = tx.update(g, s, p); p = optax.apply_updates(p, u)``
donating params and state; (d) ``optax``: ``optax.adam(1e-3)`` in the same step. Every call blocks on
its outputs (``jax.block_until_ready``); the methods are timed in turns (one step each, round after
round) so drift hits all alike. Before timing, one step of each (which also compiles) checks that
(a), (b) and (c) give the same parameters from the same inputs, and the compilations during the
timed loop are counted (they must be 0).

(e) The bound: 28 bytes per parameter (read w, g, m, v; write w, m, v) over a bandwidth measured
with jitted, donating ops on 256 MiB float32 arrays, timed in the same rounds as the steps (so the
bound drifts with them). ``x bound`` uses ``x + y`` with ``x`` donated: an in-place
read-modify-write (12 counted bytes per element) that, like a donated Adam step, writes only lines
it has just read. ``x copy bd`` uses ``y * 2`` written into a donated ``x`` that it does not read
(8 counted bytes): its stores also read the destination first (write-allocate), so its bandwidth is
understated and its bound loose; it is printed for comparison with torch_step.py's "copy" column.

    python benchmarks/jax_step.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import msadam_jax
import numpy as np
import optax
from msadam_jax import kernels, native, steps
from msadam_jax.rounding import fma_mode
from timing import BYTES_PER_PARAM, interleaved

import msadam
from msadam.backend import StepHyper

# 80 x 125,004: every tensor has scalar-loop elements (size % 8 == 4), written back by a second dispatch.
CONFIGS = [(80, 125_000), (80, 125_004), (1000, 1000), (1, 10_000_000)]
METHODS = ["kernel", "xla", "msadam", "msadam_jax", "optax"]

_compiles = [0]


def _count_compiles(event: str, duration: float, **kwargs: Any) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)
# A donation XLA cannot use would silently copy: make it fail instead.
warnings.filterwarnings("error", message=".*donated buffers were not usable.*")


def bandwidth_ops() -> tuple[dict[str, Callable[[], object]], int]:
    """The rmw (``x + y``, x donated) and copy (``y * 2`` into a donated x) steps on 256 MiB, and their length."""
    n = 64 * 1024 * 1024
    box = {"rmw": jnp.ones(n, jnp.float32), "copy": jnp.ones(n, jnp.float32)}
    y = jnp.ones(n, jnp.float32)
    ops = {"rmw": jax.jit(lambda x, y: x + y, donate_argnums=0),
           "copy": jax.jit(lambda x, y: y * 2, donate_argnums=0, keep_unused=True)}

    def runner(name: str) -> Callable[[], object]:
        def run() -> object:
            box[name] = jax.block_until_ready(ops[name](box[name], y))
            return box[name]

        return run

    runs = {name: runner(name) for name in ops}
    for run in runs.values():
        run()  # compile now
    return runs, n


def first_step_hyper() -> StepHyper:
    """The hyper-parameters of msadam.Adam(learning_rate=1e-3)'s first step (beta powers advanced once)."""
    b1, b2 = np.float32(0.9), np.float32(0.999)
    return StepHyper(lr=np.float32(1e-3), beta1=b1, beta2=b2, eps=np.float32(1e-8), beta1_power=b1,
                     beta2_power=b2, weight_decay=None, centralize=False, grad_scale=None,
                     use_nesterov=False, use_amsgrad=False)


def optax_step(tx: optax.GradientTransformation) -> Callable[..., Any]:
    def step(p: list[jax.Array], s: Any, g: list[jax.Array]) -> tuple[list[jax.Array], Any]:
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    return jax.jit(step, donate_argnums=(0, 1))


def methods_for(tensors: int, elements: int) -> tuple[dict[str, Callable[[], object]], Callable[[], list[Any]]]:
    """The four timed steps on one shared set of gradients, and a function returning each one's params."""
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(elements).astype(np.float32) for _ in range(tensors)]
    grads = [jnp.asarray(rng.standard_normal(elements).astype(np.float32)) for _ in range(tensors)]

    def fresh() -> list[jax.Array]:
        return [jnp.array(w) for w in w0]

    # (a) the bucket step alone
    bucket_w = fresh()
    bucket_m, bucket_v = [jnp.zeros_like(w) for w in bucket_w], [jnp.zeros_like(w) for w in bucket_w]
    scalars, cfg = kernels.scalars(first_step_hyper()), kernels.Config(False, False, False, fma_mode())

    def kernel() -> object:
        steps.dense_step(bucket_w, bucket_m, bucket_v, None, grads, scalars, cfg)
        return jax.block_until_ready(bucket_w)

    # (a') the same with XLA's kernels (the compiled kernel switched off)
    xla_w = fresh()
    xla_m, xla_v = [jnp.zeros_like(w) for w in xla_w], [jnp.zeros_like(w) for w in xla_w]

    def xla() -> object:
        os.environ[native.ENV_NATIVE] = "0"
        try:
            steps.dense_step(xla_w, xla_m, xla_v, None, grads, scalars, cfg)
        finally:
            del os.environ[native.ENV_NATIVE]
        return jax.block_until_ready(xla_w)

    # (b) the whole optimizer
    params = [msadam.Parameter(w, name=f"p{i}") for i, w in enumerate(fresh())]
    opt, grads_tuple = msadam.Adam(params, learning_rate=1e-3), tuple(grads)

    def optimizer() -> object:
        opt(grads_tuple)
        return jax.block_until_ready([p.data for p in params])

    # (c), (d) optax transformations in a jitted, donating step
    def transformation(tx: optax.GradientTransformation) -> tuple[Callable[[], object], dict[str, Any]]:
        p = fresh()
        box = {"p": p, "s": tx.init(p)}
        jitted = optax_step(tx)

        def run() -> object:
            box["p"], box["s"] = jax.block_until_ready(jitted(box["p"], box["s"], grads))
            return box["p"]

        return run, box

    ours, ours_box = transformation(msadam_jax.adam(1e-3))
    reference, _ = transformation(optax.adam(1e-3))
    methods = {"kernel": kernel, "xla": xla, "msadam": optimizer, "msadam_jax": ours, "optax": reference}
    return methods, lambda: [list(bucket_w), list(xla_w), [p.data for p in params], list(ours_box["p"])]


def check_first_step(methods: dict[str, Callable[[], object]], current: Callable[[], list[Any]]) -> int:
    """One step of each method (compiling it); (a), (b), (c) must agree. Returns the compilations it took."""
    before = _compiles[0]
    for fn in methods.values():
        fn()
    kernel_w, xla_w, optimizer_w, transform_w = current()
    n = len(kernel_w)
    for i in sorted({0, 1, n // 2, n - 1} & set(range(n))):
        a, x, b, c = (np.array(w[i], copy=True) for w in (kernel_w, xla_w, optimizer_w, transform_w))
        assert np.array_equal(a, b), f"dense_step and msadam.Adam differ in tensor {i}"
        assert np.array_equal(a, x), f"the compiled kernel and XLA's differ in tensor {i}"
        ulps = np.abs(a.view(np.int32).astype(np.int64) - c.view(np.int32).astype(np.int64))
        assert ulps.max() <= 1 and np.count_nonzero(ulps) <= a.size % 8, \
            f"dense_step and msadam_jax.adam differ in tensor {i} (max {ulps.max()} ulp)"
    return _compiles[0] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    bandwidth, n = bandwidth_ops()
    print(f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0]}, fma {fma_mode()}; "
          f"compiled kernel: {native.available() and native.status()}")
    print(f"{'tensors':>7} {'elements':>10} {'method':>10} {'ms':>8} {'x optax':>7} {'x bound':>7} {'x copy bd':>9}")
    for tensors, elements in CONFIGS:
        size = tensors * elements
        methods, current = methods_for(tensors, elements)
        warm = check_first_step(methods, current)
        before = _compiles[0]
        t = interleaved(methods | bandwidth, args.repeats)
        timed = _compiles[0] - before
        rmw_bw, copy_bw = 12 * n / t["rmw"], 8 * n / t["copy"]
        bound, copy_bound = BYTES_PER_PARAM * size / rmw_bw, BYTES_PER_PARAM * size / copy_bw
        for name in METHODS:
            print(f"{tensors:>7} {elements:>10} {name:>10} {t[name] * 1e3:>8.2f} {t[name] / t['optax']:>7.2f} "
                  f"{t[name] / bound:>7.2f} {t[name] / copy_bound:>9.2f}")
        print(f"{tensors:>7} {elements:>10} {'bound':>10} {bound * 1e3:>8.2f}   (in-place add {rmw_bw / 1e9:.1f} GB/s; "
              f"copy {copy_bw / 1e9:.1f} GB/s, bound {copy_bound * 1e3:.2f} ms)")
        print(f"{'':>18} (a), (b), (c) agree after one step; compilations: {warm} before timing, {timed} while timed")
        assert timed == 0, f"{timed} compilations while timing"
        del methods, current


if __name__ == "__main__":
    main()
