"""Lazy sparse steps cost O(touched rows), not O(table size): step time against table size.

For each of MindSpore's sparse paths (the default scatter-add composite, the fused host kernel
after ``opt.target = 'CPU'``, and the de-duplicating 'GPU' path), one lazy step with the same
256 touched rows (with repeats) is timed on tables of 10^3 to 10^6 rows x 64 columns. A lazy path
whose time grew with the table would show ratios near the table-size ratio (1000x); the non-lazy
path is printed as the contrast.

    python benchmarks/sparse_lazy.py [--repeats N] [--backend numpy|torch|jax]

An asynchronous backend (JAX) is waited for after each step (``block_until_ready``), on the updated
table only.
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import median_seconds

import msadam

COLUMNS, TOUCHED = 64, 256


def step_seconds(rows: int, lazy: bool, target: str | None, repeats: int, backend: str) -> float:
    rng = np.random.default_rng(0)
    table = msadam.Parameter(rng.standard_normal((rows, COLUMNS)).astype(np.float32), name="emb", backend=backend)
    opt = msadam.Adam([table], learning_rate=1e-3, use_lazy=lazy)
    if target is not None:
        opt.target = target
    indices = rng.integers(0, min(rows, 512), TOUCHED).astype(np.int32)
    grad = (msadam.RowTensor(indices, rng.standard_normal((TOUCHED, COLUMNS)).astype(np.float32), (rows, COLUMNS)),)

    def step() -> None:
        opt(grad)
        wait = getattr(table.data, "block_until_ready", None)  # jax.Array: dispatch is asynchronous
        if wait is not None:
            wait()

    return median_seconds(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backend", default="numpy", choices=msadam.available_backends())
    args = parser.parse_args()
    print(f"backend: {args.backend}")
    sizes = [1_000, 10_000, 100_000, 1_000_000]
    print(f"{'path':<28}" + "".join(f"{n:>12,} rows" for n in sizes) + f"{'largest/smallest':>18}")
    for label, lazy, target in [("lazy, default composite", True, None), ("lazy, target='CPU' fused", True, "CPU"),
                                ("lazy, target='GPU' dedup", True, "GPU"), ("not lazy, default", False, None)]:
        times = [step_seconds(n, lazy, target, args.repeats, args.backend) for n in sizes]
        cells = "".join(f"{t * 1e3:>13.3f} ms " for t in times)
        print(f"{label:<28}{cells}{times[-1] / times[0]:>17.1f}x")


if __name__ == "__main__":
    main()
