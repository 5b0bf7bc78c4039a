"""Soak test: 20,000 steps per backend of a small realistic model; memory must stay flat.

The model, as a ported MindSpore script would step it: an embedding table (2000 x 32) whose
gradient is a ``RowTensor`` (128 rows, repeated indices) every 4th step and a dense array
otherwise, a dense layer, a head, and a bias and layer-norm ``gamma``/``beta`` in a second group
without weight decay. The first group's learning rate is a per-step list (one value per step, a
warm-up then a cosine decay), the default one a ``CosineDecayLR`` schedule; loss scale 1024
(gradients come scaled); ``beta2 = 0.99`` so that both float32 beta powers go subnormal and stop
at a floor during the run (``power * beta`` rounds back to ``power``): ``beta1_power`` (0.9) is
subnormal from step 829 and stays at 6e-45 from step 965, ``beta2_power`` (0.99) subnormal from
step 8,690 and 7e-44 from step 9,877 on.
Gradients cycle through 8 precomputed NumPy sets (NumPy in, so each step's conversion is soaked too).

Each backend runs in a fresh process of its own (resident memory is per process, and frameworks do
not unload). Every ``--sample-every`` steps the worker reads its resident set size (``VmRSS``) and,
when the backend offers ``allocator_memory``, the framework allocator's bytes in use. Reported per
backend: steps/s (the step loop alone, sampling excluded), RSS at the start (after the first
step: compiled programs and allocator pools exist), the middle and the end, the slope of RSS over
the second half (least squares, bytes/step), and a verdict.

**Criterion: flat memory** = the fitted growth over the second half, ``slope * steps/2``, is below
1 MiB (for RSS, and for the allocator's bytes when reported). Why: by the middle every cache
(compiled kernels, allocator pools, the sparse paths) has been exercised thousands of times, so a
steady state must be reached; a leak of one array per step, even the model's smallest (the
64-float bias, 256 bytes), grows 10,000 x 256 B = 2.4 MiB over the second half of the default run
and fails, while malloc arena and page-granularity noise (tens to hundreds of KiB) passes. The
slope over 50 samples, not the end-to-end difference, keeps one noisy sample from deciding. With
``--steps`` shorter than the default the same 1 MiB allows more bytes per step (it says so).
A relative bound (1% of RSS) was rejected: with TensorFlow or MindSpore loaded 1% is 5-10 MiB,
which would let a 500 B/step leak through.

``--check-underflow`` also runs the NumPy reference and compares every backend's end state with
it: ``global_step`` and both beta powers (subnormal by then) must be equal bit for bit, and
parameters and moments within ``--rtol`` relative (``max|diff| / max|reference|`` per array).

    python benchmarks/soak.py [--backends numpy,torch] [--steps N] [--sample-every N] [--check-underflow]

Exit status 1 when a backend fails the criterion, the underflow check, or does not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_STEPS = 20_000
FLAT_BYTES = 2**20  # the largest fitted growth over the second half that counts as flat memory
ROWS, DIM, HIDDEN, CLASSES, TOUCHED = 2000, 32, 64, 10, 128
SPARSE_EVERY = 4
GRADIENT_SETS = 8
LOSS_SCALE = 1024.0
BETA1, BETA2 = 0.9, 0.99
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the worker (one backend)


def _shapes() -> dict[str, tuple[int, ...]]:
    return {"emb.table": (ROWS, DIM), "dense.weight": (HIDDEN, DIM), "dense.bias": (HIDDEN,),
            "norm.gamma": (HIDDEN,), "norm.beta": (HIDDEN,), "head.weight": (CLASSES, HIDDEN)}


def _lr_values(steps: int) -> list[float]:
    """A warm-up over the first 5% of the steps, then a cosine decay to 1e-5: one value per step."""
    warm = max(1, steps // 20)
    values = []
    for i in range(steps):
        if i < warm:
            values.append(1e-3 * (i + 1) / warm)
        else:
            values.append(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * (i - warm) / max(1, steps - warm))))
    return values


def _gradient_sets() -> list[dict[str, Any]]:
    """Dense gradient sets (scaled by the loss scale) and, for the embedding, a sparse alternative."""
    rng = np.random.default_rng(0)
    sets = []
    for _ in range(GRADIENT_SETS):
        dense = {name: (rng.standard_normal(shape) * 0.1 * LOSS_SCALE).astype(np.float32)
                 for name, shape in _shapes().items()}
        indices = rng.integers(0, ROWS, TOUCHED).astype(np.int32)
        indices[-1] = indices[0]  # a repeated row every time
        values = (rng.standard_normal((TOUCHED, DIM)) * 0.1 * LOSS_SCALE).astype(np.float32)
        sets.append({"dense": dense, "sparse": (indices, values)})
    return sets


def _build(backend: str, steps: int) -> Any:
    import msadam

    rng = np.random.default_rng(1)
    params = {name: msadam.Parameter((rng.standard_normal(shape) * 0.1).astype(np.float32), name=name,
                                     backend=backend) for name, shape in _shapes().items()}
    groups = [
        {"params": [params["emb.table"], params["dense.weight"], params["head.weight"]], "weight_decay": 0.01,
         "lr": _lr_values(steps)},
        {"params": [params["dense.bias"], params["norm.gamma"], params["norm.beta"]], "weight_decay": 0.0},
    ]
    schedule = msadam.CosineDecayLR(min_lr=1e-5, max_lr=1e-3, decay_steps=max(1, steps))
    return msadam.Adam(groups, learning_rate=schedule, beta1=BETA1, beta2=BETA2, loss_scale=LOSS_SCALE)


def _rss_bytes() -> int:
    """The resident set size now (Linux ``/proc/self/statm``), or -1 where there is none."""
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return -1
    return resident * os.sysconf("SC_PAGE_SIZE")


def _end_state(opt: Any) -> dict[str, np.ndarray]:
    state = {"global_step": opt.global_step.asnumpy(), "beta1_power": opt.beta1_power.asnumpy(),
             "beta2_power": opt.beta2_power.asnumpy()}
    for slot, values in (("param", opt.parameters), ("moment1", opt.moment1), ("moment2", opt.moment2)):
        for p, value in zip(opt.parameters, values, strict=True):
            state[f"{slot}/{p.name}"] = np.array(value.asnumpy(), copy=True)
    return state


def worker(backend: str, steps: int, sample_every: int, out: Path) -> None:
    """Run the soak on ``backend``; write samples, timings and the end state to ``out`` (``.npz``)."""
    import msadam
    from msadam import registry

    allocator = getattr(registry.load_backend(backend), "allocator_memory", None)

    def allocated() -> int:
        stats = allocator(False) if allocator is not None else None
        return -1 if stats is None else int(stats[0])

    opt = _build(backend, steps)
    sets = _gradient_sets()
    names = [p.name for p in opt.parameters]
    sparse_shape = _shapes()["emb.table"]
    plans = []  # per set: the dense tuple and the tuple with the embedding's RowTensor
    for grads in sets:
        dense = tuple(grads["dense"][n] for n in names)
        indices, values = grads["sparse"]
        row = msadam.RowTensor(indices, values, sparse_shape)
        plans.append((dense, tuple(row if n == "emb.table" else grads["dense"][n] for n in names)))
    sample_steps, rss, alloc = [], [], []
    step_seconds = 0.0
    first_step_seconds = 0.0
    for i in range(steps):
        dense, sparse = plans[i % GRADIENT_SETS]
        start = time.perf_counter()
        opt(sparse if i % SPARSE_EVERY == SPARSE_EVERY - 1 else dense)
        elapsed = time.perf_counter() - start
        if i == 0:
            first_step_seconds = elapsed  # compilation, allocation: not part of the steady rate
        else:
            step_seconds += elapsed
        done = i + 1
        if done == 1 or done % sample_every == 0 or done == steps:
            state = opt.parameters[-1].asnumpy()  # waits for an asynchronous backend, as a user's read would
            del state
            sample_steps.append(done)
            rss.append(_rss_bytes())
            alloc.append(allocated())
    arrays: dict[str, Any] = {f"end/{k}": v for k, v in _end_state(opt).items()}
    arrays.update(sample_steps=np.array(sample_steps), rss=np.array(rss, np.int64), alloc=np.array(alloc, np.int64),
                  step_seconds=np.array(step_seconds), first_step_seconds=np.array(first_step_seconds),
                  version=np.array(registry.load_backend(backend).version()))
    np.savez(out, **arrays)


# ----------------------------------------------------------------------------- the parent


def _slope(steps: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of ``values`` against ``steps`` (bytes per step)."""
    if len(steps) < 2 or np.ptp(steps) == 0:
        return 0.0
    return float(np.polyfit(steps.astype(np.float64), values.astype(np.float64), 1)[0])


def _second_half(data: dict[str, np.ndarray], key: str, steps: int) -> tuple[float, float] | None:
    """The slope (bytes/step) and the fitted growth over the second half of ``key``'s samples."""
    values, at = data[key], data["sample_steps"]
    if (values < 0).any():
        return None
    half = at >= steps // 2
    slope = _slope(at[half], values[half])
    return slope, slope * (steps - steps // 2)


def _mib(value: float) -> str:
    return f"{value / 2**20:8.1f}"


def _run_worker(backend: str, args: argparse.Namespace, tmp: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    out = tmp / f"{backend}.npz"
    env = {**os.environ, "GLOG_v": "3", "TF_CPP_MIN_LOG_LEVEL": "2", "MS_OM_PATH": str(tmp)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", backend, "--steps",
                           str(args.steps), "--sample-every", str(args.sample_every), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp, env=env, check=False)
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"exit status {done.returncode}"
    with np.load(out, allow_pickle=False) as loaded:
        return {k: loaded[k] for k in loaded.files}, ""


def _compare_end(reference: dict[str, np.ndarray], data: dict[str, np.ndarray], rtol: float) -> tuple[bool, str]:
    """Bit-for-bit step count and beta powers, parameters and moments within ``rtol`` of the reference."""
    problems, worst, worst_key = [], 0.0, ""
    for key in sorted(k for k in reference if k.startswith("end/")):
        ref, got = reference[key], data.get(key)
        if got is None or got.shape != ref.shape:
            problems.append(f"{key} missing or reshaped")
            continue
        if key.removeprefix("end/") in ("global_step", "beta1_power", "beta2_power"):
            if not np.array_equal(ref, got):
                problems.append(f"{key.removeprefix('end/')} {got.ravel().tolist()} != {ref.ravel().tolist()}")
            continue
        scale = max(float(np.abs(ref).max()), float(np.finfo(np.float32).tiny))
        rel = float(np.abs(got.astype(np.float64) - ref).max()) / scale if np.isfinite(got).all() else math.inf
        if rel > worst:
            worst, worst_key = rel, key.removeprefix("end/")
    if worst > rtol:
        problems.append(f"{worst_key} off by {worst:.2e} relative")
    powers = f"beta1_power={float(data['end/beta1_power']):.3g} beta2_power={float(data['end/beta2_power']):.3g}"
    summary = f"worst {worst:.2e} ({worst_key or '-'}); {powers}"
    return not problems, "; ".join(problems) if problems else summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps per backend (default {DEFAULT_STEPS})")
    parser.add_argument("--sample-every", type=int, default=None,
                        help="steps between memory samples (default: steps/100)")
    parser.add_argument("--check-underflow", action="store_true",
                        help="compare each backend's end state with the NumPy reference's")
    parser.add_argument("--rtol", type=float, default=1e-5,
                        help="--check-underflow: largest relative error of a parameter or moment (default 1e-5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    args.sample_every = args.sample_every or max(1, args.steps // 100)
    if args.worker:
        worker(args.worker, args.steps, args.sample_every, args.out)
        return 0

    import msadam

    names = args.backends.split(",") if args.backends else msadam.available_backends()
    runs = list(dict.fromkeys(["numpy", *names] if args.check_underflow else names))
    print(f"soak: {args.steps} steps per backend, memory sampled every {args.sample_every} steps; flat = fitted "
          f"growth over the second half < {FLAT_BYTES / 2**20:g} MiB "
          f"({FLAT_BYTES / (args.steps - args.steps // 2):.0f} B/step)", flush=True)
    if args.steps < DEFAULT_STEPS:
        print(f"  (shorter than the default {DEFAULT_STEPS}: the criterion allows more bytes per step)")
    results: dict[str, dict[str, Any]] = {}
    failed = False
    header = (f"{'backend':<11}{'steps/s':>9}{'RSS start':>11}{'middle':>9}{'end':>9} MiB"
              f"{'slope B/step':>14}{'2nd half KiB':>14}  verdict")
    with tempfile.TemporaryDirectory(prefix="msadam-soak-") as tmp_name:
        data_by_backend: dict[str, dict[str, np.ndarray]] = {}
        for backend in runs:
            started = time.monotonic()
            data, error = _run_worker(backend, args, Path(tmp_name))
            wall = time.monotonic() - started
            if data is None:
                results[backend] = {"error": error}
                if backend in names:
                    failed = True
                print(f"{backend:<11} FAILED to run: {error}", flush=True)
                continue
            data_by_backend[backend] = data
            rate = (args.steps - 1) / float(data["step_seconds"]) if float(data["step_seconds"]) > 0 else math.inf
            rss = data["rss"]
            middle = int(rss[np.searchsorted(data["sample_steps"], args.steps // 2)])
            row: dict[str, Any] = {
                "version": str(data["version"]), "steps_per_second": rate, "wall_seconds": wall,
                "first_step_seconds": float(data["first_step_seconds"]),
                "rss_start": int(rss[0]), "rss_middle": middle, "rss_end": int(rss[-1]),
            }
            verdicts = []
            for key in ("rss", "alloc"):
                fit = _second_half(data, key, args.steps)
                if fit is None:
                    continue
                slope, growth = fit
                row[f"{key}_slope_bytes_per_step"], row[f"{key}_second_half_growth"] = slope, growth
                verdicts.append(growth < FLAT_BYTES)
                if key == "alloc":
                    row["alloc_start"], row["alloc_end"] = int(data["alloc"][0]), int(data["alloc"][-1])
            row["flat"] = bool(verdicts) and all(verdicts)
            if backend in names:
                failed |= not row["flat"]
            results[backend] = row
            if not args.json:
                if len(results) == 1 or backend == runs[0]:
                    print(header)
                verdict = "PASS" if row["flat"] else "FAIL" if verdicts else "FAIL (no memory reading)"
                print(f"{backend:<11}{rate:9.0f}{_mib(row['rss_start']):>11}{_mib(middle):>9}{_mib(row['rss_end']):>9}"
                      f"    {row.get('rss_slope_bytes_per_step', math.nan):14.1f}"
                      f"{row.get('rss_second_half_growth', math.nan) / 1024:14.1f}  {verdict}"
                      + (f"  (backend={backend} not requested: reference only)" if backend not in names else ""),
                      flush=True)
                if "alloc_slope_bytes_per_step" in row:
                    print(f"{'':<11}allocator: {row['alloc_start'] / 2**20:.1f} -> {row['alloc_end'] / 2**20:.1f} MiB "
                          f"in use, slope {row['alloc_slope_bytes_per_step']:.1f} B/step, second half "
                          f"{row['alloc_second_half_growth'] / 1024:.1f} KiB")
        if args.check_underflow:
            reference = data_by_backend.get("numpy")
            if not args.json:
                print("end state against the NumPy reference (global_step and beta powers bit for bit, "
                      f"parameters and moments within {args.rtol:g}):")
            for backend in names:
                if backend not in data_by_backend or reference is None:
                    failed = True
                    continue
                ok, summary = _compare_end(reference, data_by_backend[backend], args.rtol)
                results[backend]["underflow_check"] = {"ok": ok, "summary": summary}
                failed |= not ok
                if not args.json:
                    print(f"  {backend:<11}{'PASS' if ok else 'FAIL'}  {summary}")
    if args.json:
        print(json.dumps({"steps": args.steps, "sample_every": args.sample_every, "flat_bytes": FLAT_BYTES,
                          "backends": results, "ok": not failed}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
