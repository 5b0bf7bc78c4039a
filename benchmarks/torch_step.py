"""Torch step time: msadam's compiled kernel against torch.optim.Adam (fused, foreach) and the memory bound.

Issue #4's targets: 10M float32 parameters in 80 tensors at most 1.05x ``torch.optim.Adam(fused=True)``
and at most 1.3x the memory-bandwidth bound; 1,000 tensors of 1k elements at most 1.2x fused.

Everything is measured in this run, with the same thread count (``--threads``, default torch's):
the median time of one step of (a) ``msadam_torch.native.adam_step_``, (b) ``Adam(fused=True)``,
(c) ``Adam(foreach=True)``, (e) ``msadam_torch.Adam`` (the whole optimizer, when installed), and
(d) the bound: 28 bytes per parameter (read w, g, m, v; write w, m, v) over the bandwidth of a
large ``copy_``. A copy's bandwidth counts the 2 bytes it asks for, but its stores also read the
destination first (write-allocate), so the "copy" bound is loose; the "rmw" bound uses an in-place
``a.add_(b)`` instead, which like Adam writes only lines it has just read (12 counted bytes each).
The methods are timed in turns (one step each, round after round) so drift hits all alike.

    python benchmarks/torch_step.py [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from msadam_torch import native
from timing import BYTES_PER_PARAM, interleaved, median_seconds

from msadam.backend import StepHyper


def msadam_optimizer() -> Callable[..., torch.optim.Optimizer] | None:
    """``msadam_torch.Adam``, or None before the optimizer wrapper is installed."""
    try:
        from msadam_torch.optim import Adam
    except ImportError:
        return None
    return Adam


MsAdam = msadam_optimizer()

CONFIGS = [(80, 125_000), (1000, 1000), (1, 10_000_000)]



def bandwidths(repeats: int) -> tuple[float, float]:
    """Bytes per second of a 256 MiB ``copy_`` (2 per element byte) and of ``a.add_(b)`` (3 per byte)."""
    src = torch.ones(64 * 1024 * 1024)
    dst = torch.empty_like(src)
    copy = 2 * src.numel() * 4 / median_seconds(lambda: dst.copy_(src), repeats)
    rmw = 3 * src.numel() * 4 / median_seconds(lambda: dst.add_(src), repeats)
    return copy, rmw


def hyper() -> StepHyper:
    b1, b2 = np.float32(0.9), np.float32(0.999)
    return StepHyper(lr=np.float32(1e-3), beta1=b1, beta2=b2, eps=np.float32(1e-8), beta1_power=b1 * b1,
                     beta2_power=b2 * b2, weight_decay=None, centralize=False, grad_scale=None,
                     use_nesterov=False, use_amsgrad=False)


def methods_for(tensors: int, elements: int) -> dict[str, Callable[[], object]]:
    params = [torch.nn.Parameter(torch.randn(elements)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(elements)
    weights = [p.detach() for p in params]
    grads = [p.grad for p in params if p.grad is not None]
    m = [torch.zeros(elements) for _ in range(tensors)]
    v = [torch.zeros(elements) for _ in range(tensors)]
    step_hyper = hyper()
    methods: dict[str, Callable[[], object]] = {
        "native": lambda: native.adam_step_(weights, grads, m, v, None, step_hyper),
        "fused": torch.optim.Adam(params, lr=1e-3, fused=True).step,
        "foreach": torch.optim.Adam(params, lr=1e-3, foreach=True).step,
    }
    if MsAdam is not None:
        methods["msadam"] = MsAdam(params, learning_rate=1e-3).step
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    ready = native.available()
    print(f"native kernel: {native.status()} (first call {time.perf_counter() - start:.1f} s)")
    if not ready:
        return
    copy_bw, rmw_bw = bandwidths(max(5, args.repeats // 3))
    print(f"torch {torch.__version__}, {args.threads} threads, {torch.backends.cpu.get_cpu_capability()}; "
          f"copy {copy_bw / 1e9:.1f} GB/s, in-place add {rmw_bw / 1e9:.1f} GB/s")
    if MsAdam is None:
        print("msadam_torch.optim.Adam: not installed yet (column omitted)")
    header = (f"{'tensors':>7} {'elements':>10} {'native ms':>9} {'fused ms':>8} {'foreach ms':>10} "
              f"{'copy bd ms':>10} {'rmw bd ms':>9} {'nat/fused':>9} {'nat/copy':>8} {'nat/rmw':>7}")
    print(header + (f" {'msadam ms':>9} {'ms/fused':>8}" if MsAdam is not None else ""))
    for tensors, elements in CONFIGS:
        size = tensors * elements
        t = interleaved(methods_for(tensors, elements), args.repeats)
        copy_bound, rmw_bound = BYTES_PER_PARAM * size / copy_bw, BYTES_PER_PARAM * size / rmw_bw
        line = (f"{tensors:>7} {elements:>10} {t['native'] * 1e3:>9.2f} {t['fused'] * 1e3:>8.2f} "
                f"{t['foreach'] * 1e3:>10.2f} {copy_bound * 1e3:>10.2f} {rmw_bound * 1e3:>9.2f} "
                f"{t['native'] / t['fused']:>9.2f} {t['native'] / copy_bound:>8.2f} {t['native'] / rmw_bound:>7.2f}")
        if "msadam" in t:
            line += f" {t['msadam'] * 1e3:>9.2f} {t['msadam'] / t['fused']:>8.2f}"
        print(line)


if __name__ == "__main__":
    main()
