"""NumPy-backend step time for 1, 100 and 1,000 tensors: the baseline later backends are compared with.

Prints, per configuration, the median time of one ``opt(grads)`` step; the time of the reference
kernel alone (``numpy_kernels.adam``, MindSpore's exact rounding) on one flat buffer of the same
size; the plain float32 formula on that buffer (what the exact rounding costs on top); and the
memory-bandwidth bound (28 bytes moved per float32 parameter over the copy bandwidth measured in
this run). ``overhead`` = step - kernel: the core's per-step Python cost (validation, learning
rates, bookkeeping, gradient concatenation). The headline is that overhead with 1,000 small
tensors (target < 2 ms).

    python benchmarks/numpy_step.py [--repeats N]
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import BYTES_PER_PARAM, median_seconds

import msadam
from msadam.backend import StepHyper
from msadam.backends import numpy_kernels


def copy_bandwidth(repeats: int) -> float:
    """Bytes per second of a large float32 copy (read + write), measured now."""
    src = np.ones(32 * 1024 * 1024 // 4 * 8, np.float32)  # 256 MiB
    dst = np.empty_like(src)
    seconds = median_seconds(lambda: np.copyto(dst, src), max(3, repeats // 10))
    return 2 * src.nbytes / seconds


def kernel_alone(size: int, repeats: int) -> float:
    """``numpy_kernels.adam`` (MindSpore's rounding) on one flat buffer, without the optimizer around it."""
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    f32 = np.float32
    hyper = StepHyper(f32(1e-3), f32(0.9), f32(0.999), f32(1e-8), f32(0.9), f32(0.999), None, False, None, False, False)
    return median_seconds(lambda: numpy_kernels.adam(w, m, v, None, g, hyper), repeats)


def flat_floor(size: int, repeats: int) -> float:
    """The plain float32 formula on one flat buffer (no exact rounding), without msadam."""
    w, g = np.ones(size, np.float32), np.full(size, 0.1, np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    b1, b2, eps, lr_t = np.float32(0.9), np.float32(0.999), np.float32(1e-8), np.float32(1e-3)

    def step() -> None:
        m.__imul__(b1)
        m.__iadd__((1 - b1) * g)
        v.__imul__(b2)
        v.__iadd__((1 - b2) * (g * g))
        w.__isub__(lr_t * m / (np.sqrt(v) + eps))

    return median_seconds(step, repeats)


def msadam_step(tensors: int, elements: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    params = [msadam.Parameter(rng.standard_normal(elements).astype(np.float32), name=f"p{i}", backend="numpy")
              for i in range(tensors)]
    grads = tuple(rng.standard_normal(elements).astype(np.float32) for _ in range(tensors))
    opt = msadam.Adam(params, learning_rate=1e-3)
    return median_seconds(lambda: opt(grads), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    bandwidth = copy_bandwidth(args.repeats)
    print(f"copy bandwidth: {bandwidth / 1e9:.1f} GB/s")
    print(f"{'tensors':>8} {'elements':>10} {'msadam ms':>10} {'kernel ms':>10} {'plain ms':>9} {'bound ms':>9} "
          f"{'overhead ms':>12} {'kernel/plain':>13} {'x bound':>8}")
    for tensors, elements in [(1, 1_000_000), (100, 10_000), (1000, 1_000), (1000, 100), (1, 10_000_000)]:
        size = tensors * elements
        ours = msadam_step(tensors, elements, args.repeats)
        kernel = kernel_alone(size, args.repeats)
        floor = flat_floor(size, args.repeats)
        bound = BYTES_PER_PARAM * size / bandwidth
        print(f"{tensors:>8} {elements:>10} {ours * 1e3:>10.3f} {kernel * 1e3:>10.3f} {floor * 1e3:>9.3f} "
              f"{bound * 1e3:>9.3f} {(ours - kernel) * 1e3:>12.3f} {kernel / floor:>13.2f} {ours / bound:>8.2f}")


if __name__ == "__main__":
    main()
