"""Should the TensorFlow backend use TensorFlow's own ``ResourceApplyAdam`` kernel? An evaluation.

TensorFlow's fused Adam kernel already puts epsilon where MindSpore does
(``var -= lr_t * m / (sqrt(v) + epsilon)`` with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``),
so it was a candidate for the backend's dense step. This script runs it next to ``msadam.Adam`` on
the NumPy reference (MindSpore 2.10's numbers, bit for bit) on the same gradients, and prints per
configuration: the share of elements of ``w``, ``m`` and ``v`` whose bits differ after the last
step, the worst relative error by the parity suite's measure (``max|diff| / max|reference|`` per
array, over all steps), and the largest element-wise relative error of ``w``. A speed figure is
beside the point (see ``benchmarks/tensorflow_step.py``).

The verdict printed at the end is measured, not assumed: within the parity target (1e-6 relative)
or not, and bit-exact or not — msadam's backends are bit-exact with the reference, so the kernel
would be used only if no bit differed. (It computes ``m += (g - m) * (1 - beta1)`` and
``v += (g*g - v) * (1 - beta2)`` with separate roundings, where nnacl's AdamFp32 fuses them into
multiply-adds.)

    python benchmarks/tensorflow_resource_adam.py [--steps N] [--size N]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf

import msadam

LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8


def evaluate(nesterov: bool, steps: int, size: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(size).astype(np.float32)
    reference = msadam.Adam([msadam.Parameter(w0.copy(), name="w", backend="numpy")], learning_rate=LR,
                            beta1=BETA1, beta2=BETA2, eps=EPS, use_nesterov=nesterov)
    var, m, v = tf.Variable(w0), tf.Variable(tf.zeros(size)), tf.Variable(tf.zeros(size))
    beta1_power = beta2_power = np.float32(1.0)
    worst = elementwise = 0.0
    for _ in range(steps):
        g = rng.standard_normal(size).astype(np.float32)
        reference((g,))
        beta1_power = np.float32(beta1_power * np.float32(BETA1))
        beta2_power = np.float32(beta2_power * np.float32(BETA2))
        tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power,
                                     beta2_power=beta2_power, lr=np.float32(LR), beta1=np.float32(BETA1),
                                     beta2=np.float32(BETA2), epsilon=np.float32(EPS), grad=g, use_nesterov=nesterov)
        expected = reference.state_dict()
        for got, name in ((var, "w"), (m, "moment1.w"), (v, "moment2.w")):
            diff = np.abs(got.numpy() - expected[name])
            worst = max(worst, float(diff.max() / max(float(np.abs(expected[name]).max()), 1e-30)))
        elementwise = max(elementwise, float(np.max(np.abs(var.numpy() - expected["w"]) /
                                                    np.maximum(np.abs(expected["w"]), 1e-30))))
    expected = reference.state_dict()
    return {"w bits differ": float(np.mean(var.numpy() != expected["w"])),
            "m bits differ": float(np.mean(m.numpy() != expected["moment1.w"])),
            "v bits differ": float(np.mean(v.numpy() != expected["moment2.w"])),
            "worst relative (parity measure)": worst, "worst element-wise relative (w)": elementwise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=1_000_003)
    args = parser.parse_args()
    exact, worst = True, 0.0
    print(f"tf.raw_ops.ResourceApplyAdam vs msadam's reference (MindSpore 2.10), {args.size} params, "
          f"{args.steps} steps, TensorFlow {tf.__version__}")
    for nesterov in (False, True):
        figures = evaluate(nesterov, args.steps, args.size)
        exact &= all(figures[k] == 0.0 for k in ("w bits differ", "m bits differ", "v bits differ"))
        worst = max(worst, figures["worst relative (parity measure)"])
        print(f"  use_nesterov={nesterov}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()))
    within = "within" if worst <= 1e-6 else "outside"
    print(f"verdict: {within} the 1e-6 parity target (worst {worst:.3g}); " +
          ("bit-exact: usable" if exact else "not bit-exact: the backend keeps its own kernel (bit-exact)"))


if __name__ == "__main__":
    main()
