"""TensorFlow step time: msadam against keras.optimizers.Adam (jit-compiled) and the memory bound.

Issue #6's targets: 10M float32 parameters in 80 tensors at most 1.0x ``keras.optimizers.Adam``
and at most 1.5x the memory-bandwidth bound. Measured in one run, in turns (one step of each method,
round after round): (a) ``msadam``: ``msadam.Adam`` on the ``tensorflow`` backend (``tf.Variable``
parameters; the compiled one-pass op of ``msadam_tensorflow.native`` per bucket, when it builds);
(b) ``msadam_xla``: the same with ``MSADAM_TF_NATIVE=0`` (one XLA computation per bucket);
(c) ``msadam_tf``: ``msadam_tensorflow.Adam.apply`` in a ``tf.function(jit_compile=True)`` (its XLA
kernels: a custom op cannot be compiled by XLA); (c') ``msadam_tf_graph``: the same in a plain
``tf.function`` (what ``model.fit`` runs on a CPU-only machine: the compiled op per variable);
(d) ``keras``: ``keras.optimizers.Adam.apply`` jit-compiled, as (c); (e) the bound: 28 bytes
per parameter (read w, g, m, v; write w, m, v) over the bandwidth of an in-place ``v.assign_add(y)``
on a 256 MiB variable (12 counted bytes per element; eager: XLA's version writes a new buffer and
copies, at half the speed). Every step is followed by a read of one updated value (the same slice
of a ``tf.Variable`` in every method), so asynchronous work is included.

    python benchmarks/tensorflow_step.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import keras
import msadam_tensorflow
import numpy as np
import tensorflow as tf
from msadam_tensorflow import native
from timing import BYTES_PER_PARAM, interleaved

import msadam

CONFIGS = [(80, 125_000), (1, 10_000_000)]
METHODS = ["msadam", "msadam_xla", "msadam_tf", "msadam_tf_graph", "keras"]


def bandwidth_op() -> tuple[Callable[[], object], int]:
    n = 64 * 1024 * 1024
    x, y = tf.Variable(tf.ones(n)), tf.ones(n)

    def run() -> object:
        x.assign_add(y, read_value=False)  # AssignAddVariableOp: in place, on all cores (an XLA one copies)
        return x[0].numpy()

    return run, n


def methods_for(tensors: int, elements: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(elements).astype(np.float32) for _ in range(tensors)]
    grads = [tf.constant(rng.standard_normal(elements).astype(np.float32)) for _ in range(tensors)]

    grads_tuple = tuple(grads)

    def ours(use_native: bool) -> Callable[[], object]:
        params = [msadam.Parameter(tf.Variable(w), name=f"p{i}") for i, w in enumerate(w0)]
        opt = msadam.Adam(params, learning_rate=1e-3)

        def run() -> object:
            if use_native:
                opt(grads_tuple)
            else:
                saved = os.environ.get(native.ENV_NATIVE)
                os.environ[native.ENV_NATIVE] = "0"  # read at every step
                try:
                    opt(grads_tuple)
                finally:
                    os.environ.pop(native.ENV_NATIVE)
                    if saved is not None:
                        os.environ[native.ENV_NATIVE] = saved
            return params[-1].data[0].numpy()

        return run

    def keras_apply(optimizer: Any, jit_compile: bool = True) -> Callable[[], object]:
        variables = [keras.Variable(w) for w in w0]
        optimizer.build(variables)
        step = tf.function(lambda: optimizer.apply(grads, variables), jit_compile=jit_compile)

        def run() -> object:
            step()
            return variables[-1].value[0].numpy()  # one element (.numpy() would copy the whole variable)

        return run

    return {"msadam": ours(True), "msadam_xla": ours(False),
            "msadam_tf": keras_apply(msadam_tensorflow.Adam(learning_rate=1e-3)),
            "msadam_tf_graph": keras_apply(msadam_tensorflow.Adam(learning_rate=1e-3), jit_compile=False),
            "keras": keras_apply(keras.optimizers.Adam(learning_rate=1e-3))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    bound_op, n = bandwidth_op()
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}; msadam_tensorflow.native: "
          f"{native.status() if native.available() else native.status().splitlines()[0]}")
    print(f"{'tensors':>7} {'elements':>10} {'method':>15} {'ms':>8} {'x keras':>8} {'x bound':>8}")
    for tensors, elements in CONFIGS:
        t = interleaved(methods_for(tensors, elements) | {"rmw": bound_op}, args.repeats)
        bound = BYTES_PER_PARAM * tensors * elements / (12 * n / t["rmw"])
        for name in METHODS:
            print(f"{tensors:>7} {elements:>10} {name:>15} {t[name] * 1e3:>8.2f} {t[name] / t['keras']:>8.2f} "
                  f"{t[name] / bound:>8.2f}")
        print(f"{tensors:>7} {elements:>10} {'bound':>15} {bound * 1e3:>8.2f}   (in-place add "
              f"{12 * n / t['rmw'] / 1e9:.1f} GB/s)")


if __name__ == "__main__":
    main()
