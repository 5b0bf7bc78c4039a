"""Record ``msadam/data/selfcheck_mindspore.npz`` from real MindSpore 2.10 (run by hand, then commit).

    python tests/golden/record_selfcheck.py            # all scenarios, one subprocess each
    python tests/golden/record_selfcheck.py --one NAME  # one scenario, prints an npz path

Each scenario runs in its own process: MindSpore's graph caches leak state between runs that reuse
parameter names. Sparse gradients need graph mode (PyNative rejects ``RowTensor``), so the step is
wrapped in a graph-mode ``Cell``. MindSpore's ``Centralization`` kernel exists only on Ascend, so
``optimizer.op_gc`` is replaced by the same formula built from portable ops (``g - mean(g, axes)``),
called at the same place in MindSpore's step.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from msadam import selfcheck  # noqa: E402

OUTPUT = ROOT / "msadam" / "data" / "selfcheck_mindspore.npz"


def _mindspore():  # type: ignore[no-untyped-def]
    os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp())
    os.environ.setdefault("GLOG_v", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mindspore as ms
    with contextlib.suppress(SystemError):  # NumPy 2 vs a NumPy-1 build: the first reshape raises SystemError
        ms.Tensor(np.ones(1, np.float32)).reshape(())
    return ms


def run_one(name: str) -> dict[str, np.ndarray]:
    ms = _mindspore()
    from mindspore import nn, ops
    from mindspore.common.sparse_tensor import RowTensorInner
    from mindspore.nn.optim import optimizer as ms_optimizer

    class Centralization(nn.Cell):
        def construct(self, x, axis):  # type: ignore[no-untyped-def]
            return x - ops.mean(x, tuple(axis), True)

    ms_optimizer.op_gc = Centralization()
    scenario = next(s for s in selfcheck.SCENARIOS if s.name == name)
    ms.set_context(mode=ms.GRAPH_MODE if scenario.sparse else ms.PYNATIVE_MODE)
    schedule = nn.ExponentialDecayLR(0.1, 0.9, 4, is_stair=True)
    params = selfcheck.build_params(lambda value, pname: ms.Parameter(ms.Tensor(value), name=pname),
                                    scenario, schedule)
    opt = nn.Adam(params, **scenario.options)
    if scenario.target is not None:
        opt.target = scenario.target

    class SparseStep(nn.Cell):
        def __init__(self, optimizer: nn.Adam) -> None:
            super().__init__()
            self.optimizer = optimizer

        def construct(self, dense_grads, indices, values):  # type: ignore[no-untyped-def]
            table = RowTensorInner(indices, values, (50, 8))
            return self.optimizer((dense_grads[0], dense_grads[1], dense_grads[2], table))

    names = [p.name for p in opt.parameters]  # before a wrapping Cell prefixes them with "optimizer."
    sparse_step = SparseStep(opt) if scenario.sparse else None
    history: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for step in range(selfcheck.STEPS):
        grads = selfcheck.gradients(step, scenario.sparse)
        if sparse_step is not None:
            dense = tuple(ms.Tensor(grads[name]) for name in names[:3])
            indices, values = grads["embedding"]
            sparse_step(dense, ms.Tensor(indices), ms.Tensor(values))
        else:
            opt(tuple(ms.Tensor(grads[name]) for name in names))
        for pname, p in zip(names, opt.parameters, strict=True):
            history[pname].append(p.asnumpy().copy())
    result = {f"{name}/{k}": np.stack(v) for k, v in history.items()}
    result["mindspore_version"] = np.array(ms.__version__)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one")
    args = parser.parse_args()
    if args.one:
        out = Path(tempfile.mkdtemp()) / "one.npz"
        np.savez(out, **run_one(args.one))
        print(out)
        return
    merged: dict[str, np.ndarray] = {}
    for scenario in selfcheck.SCENARIOS:
        done = subprocess.run([sys.executable, __file__, "--one", scenario.name], check=True,
                              capture_output=True, text=True)
        with np.load(done.stdout.strip().splitlines()[-1]) as data:
            merged.update({key: data[key] for key in data.files})
    OUTPUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUTPUT, **merged)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
