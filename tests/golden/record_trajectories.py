"""Record golden Adam trajectories from real MindSpore (the oracle) for ``tests/test_parity.py``.

Usage::

    python tests/golden/record_trajectories.py                 # every named + 12 random scenarios
    python tests/golden/record_trajectories.py --only plain --random 0 --jobs 2

Every scenario runs in its own subprocess (graph-mode caches leak state between scenarios in one
process) and, by default, twice: the two runs must agree bit for bit, so a fixture never pins an
undefined or non-deterministic MindSpore result. How MindSpore is driven:

* Start-up: ``GLOG_v=3``, ``MS_OM_PATH`` in a temporary folder (failed compiles write ``rank_0/``
  into the cwd otherwise), and one throwaway ``Tensor(...).reshape(())`` (MindSpore is built against
  NumPy 1; the first call after import raises ``SystemError`` under NumPy 2).
* Dense scenarios: PyNative mode, ``opt(tuple_of_tensors)`` (``Adam.construct`` is ``@jit`` anyway).
* Sparse scenarios: GRAPH mode; :class:`_GraphStep` builds ``RowTensorInner(indices, values,
  dense_shape)`` inside its ``construct`` and calls the optimizer (PyNative rejects RowTensor).
* Targets: ``'default'`` assigns nothing (``Adam.__init__`` sets ``_is_device = True`` while
  ``_target`` stays ``'CPU'``: the composite path without de-duplication). ``'CPU'`` is the public
  ``opt.target = 'CPU'`` (fused host kernels). ``'GPU'``/``'Ascend'`` are refused on a CPU machine by
  ``Optimizer._set_base_target``; the recorder sets exactly the two attributes that setter would
  set, ``opt._target = value`` and ``opt._is_device = True``, so MindSpore's own
  ``_grad_sparse_indices_deduplicate`` (``P.Unique`` + ``UnsortedSegmentSum`` when ``opt.unique``)
  and composite path run unchanged.
* Gradient centralization: the ``Centralization`` kernel exists only on Ascend. The module global
  ``mindspore.nn.optim.optimizer.op_gc`` (the op both ``_apply_grad_centralization`` overloads call)
  is replaced by :class:`_Centralization`, ``g - ReduceMean(keep_dims=True)(g, axes)``; the call site,
  and therefore the order decay -> centralization -> loss scale, stays MindSpore's.
  :func:`check_centralization_order` proves it on one step (``--check``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scenarios as sc  # tests/ is not a package

RANDOM_SEEDS = range(12)


# ----------------------------------------------------------------------------- in the worker process


def import_mindspore() -> Any:
    """MindSpore, imported with the environment and NumPy-2 workaround every process needs."""
    os.environ.setdefault("GLOG_v", "3")
    os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp(prefix="msadam-om-"))
    import mindspore

    with contextlib.suppress(SystemError):
        mindspore.Tensor(np.ones(1, np.float32)).reshape(())
    return mindspore


def install_centralization() -> None:
    """Replace MindSpore's Ascend-only ``Centralization`` op by the same formula in portable ops."""
    from mindspore import nn, ops
    from mindspore.nn.optim import optimizer

    class _Centralization(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.mean = ops.ReduceMean(keep_dims=True)

        def construct(self, x: Any, axis: Any) -> Any:
            return x - self.mean(x, tuple(axis))

    optimizer.op_gc = _Centralization()


def mindspore_library() -> sc.Library:
    ms = import_mindspore()
    return sc.Library(adam=ms.nn.Adam, parameter=lambda a, n: ms.Parameter(ms.Tensor(a), name=n),
                      tensor=ms.Tensor, schedules=ms.nn, gradient=ms.Tensor)


def set_target(opt: Any, scen: sc.Scenario) -> None:
    """``opt.target``/``opt.unique`` as the module docstring says ('GPU'/'Ascend': the private pair)."""
    target = scen["target"]
    if target == "CPU":
        opt.target = "CPU"
    elif target in ("GPU", "Ascend"):
        opt._target = target
        opt._is_device = True
    opt.unique = scen["unique"]


def _graph_stepper(opt: Any, scen: sc.Scenario) -> sc.Stepper:
    """A GRAPH-mode step taking RowTensor gradients (built inside ``construct`` from flat inputs)."""
    import mindspore as ms
    from mindspore.common.sparse_tensor import RowTensorInner

    sparse = set(scen["sparse"]["params"])
    layout = tuple(tuple(p.shape) if p.name in sparse else () for p in opt.parameters)

    class _GraphStep(ms.nn.Cell):
        def __init__(self) -> None:
            super().__init__(auto_prefix=False)  # keep the user's parameter names
            self.opt = opt
            self.layout = layout

        def construct(self, *inputs: Any) -> Any:
            grads: tuple[Any, ...] = ()
            i = 0
            for shape in self.layout:
                if shape:
                    grads += (RowTensorInner(inputs[i], inputs[i + 1], shape),)
                    i += 2
                else:
                    grads += (inputs[i],)
                    i += 1
            lr = self.opt.get_lr()
            return self.opt(grads), lr

    cell = _GraphStep()

    def step(grads: tuple[sc.Gradient, ...]) -> Any:
        flat: list[Any] = []
        for g in grads:
            parts = (g.indices, g.values) if isinstance(g, sc.SparseGradient) else (g,)
            flat += [ms.Tensor(part) for part in parts]
        return sc.freeze_lr(cell(*flat)[1])

    return step


def run_mindspore(scen: sc.Scenario) -> tuple[sc.Trajectory, str]:
    """The scenario's trajectory through ``mindspore.nn.Adam`` (call once per process), and the version."""
    ms = import_mindspore()
    lib = mindspore_library()
    install_centralization()
    ms.set_context(mode=ms.GRAPH_MODE if scen["sparse"] else ms.PYNATIVE_MODE)
    opt = sc.build_optimizer(scen, lib)
    set_target(opt, scen)
    if scen["sparse"]:
        step = _graph_stepper(opt, scen)
    else:

        def step(grads: tuple[sc.Gradient, ...]) -> Any:
            lr = sc.freeze_lr(opt.get_lr())
            opt(tuple(lib.gradient(g) for g in grads))
            return lr

    return sc.run(scen, opt, step), ms.__version__


def check_centralization_order() -> float:
    """One grouped step (decay, centralization, loss scale all on) against the closed form.

    Returns the relative error against decay -> centralization -> scale; raises if that is not
    within 1e-6, or if centralization before decay, or no centralization at all, fits as well.
    """
    ms = import_mindspore()
    install_centralization()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((2, 16)).astype(np.float32) + 3.0  # a non-zero row mean
    g = rng.standard_normal((2, 16)).astype(np.float32)
    wd, scale, lr, beta1, beta2, eps = 0.5, 4.0, 0.1, 0.9, 0.999, 1e-8
    w = ms.Parameter(ms.Tensor(w0), name="conv.weight")
    opt = ms.nn.Adam([{"params": [w], "weight_decay": wd, "grad_centralization": True}], learning_rate=lr,
                     loss_scale=scale, beta1=beta1, beta2=beta2, eps=eps)
    opt((ms.Tensor(g),))

    def closed_form(grad: np.ndarray) -> np.ndarray:
        m, v = (1 - beta1) * grad, (1 - beta2) * grad * grad
        return w0 - lr * np.sqrt(1 - beta2) / (1 - beta1) * m / (np.sqrt(v) + eps)

    def centered(x: np.ndarray) -> np.ndarray:
        return x - x.mean(axis=1, keepdims=True)

    got = w.asnumpy()
    rel, other_order, none = (
        float(np.abs(got - closed_form(grad / scale)).max() / np.abs(got).max())
        for grad in (centered(g + wd * scale * w0), centered(g) + wd * scale * w0, g + wd * scale * w0)
    )
    if rel > 1e-6 or other_order < 1e-3 or none < 1e-3:
        raise AssertionError(f"centralization emulation: {rel=:.2e} {other_order=:.2e} {none=:.2e}")
    return rel


def _worker(argv: list[str]) -> int:
    if argv[0] == "--worker-check":
        print(json.dumps({"relative_error": check_centralization_order()}))
        return 0
    scen = json.loads(Path(argv[1]).read_text())
    trajectory, version = run_mindspore(scen)
    payload: dict[str, Any] = {f"traj/{k}": v for k, v in trajectory.items()}
    np.savez(argv[2], mindspore_version=np.array(version), **payload)
    return 0


# ----------------------------------------------------------------------------- in the parent process


def _subprocess(args: list[str], workdir: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GLOG_v": "3", "MS_OM_PATH": workdir}
    env.pop("PYTHONWARNINGS", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"MindSpore worker {args[:2]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def record(scen: sc.Scenario, timeout: float = 900.0) -> tuple[sc.Trajectory, str]:
    """Run ``scen`` in real MindSpore in a fresh subprocess; its trajectory and MindSpore's version."""
    with tempfile.TemporaryDirectory(prefix="msadam-record-") as tmp:
        src, out = Path(tmp) / "scenario.json", Path(tmp) / "trajectory.npz"
        src.write_text(sc.to_json(scen))
        _subprocess(["--worker-run", str(src), str(out)], tmp, timeout)
        with np.load(out, allow_pickle=False) as data:
            traj = {k.removeprefix("traj/"): data[k] for k in data.files if k.startswith("traj/")}
            return traj, str(data["mindspore_version"])


def record_checked(scen: sc.Scenario, repeats: int = 2) -> tuple[sc.Trajectory, str]:
    """:func:`record` ``repeats`` times; every run must give bit-identical arrays."""
    runs = [record(scen) for _ in range(repeats)]
    for traj, _ in runs[1:]:
        mismatch = sc.compare(runs[0][0], traj)
        if mismatch.error != 0.0:
            raise RuntimeError(f"{scen['name']}: MindSpore is not deterministic here ({mismatch})")
    return runs[0]


def centralization_check() -> float:
    """:func:`check_centralization_order` in a fresh MindSpore subprocess."""
    with tempfile.TemporaryDirectory(prefix="msadam-record-") as tmp:
        proc = _subprocess(["--worker-check"], tmp, 600.0)
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["relative_error"])


def all_scenarios(n_random: int = len(RANDOM_SEEDS)) -> list[sc.Scenario]:
    return sc.named_scenarios() + [sc.random_scenario(seed) for seed in range(n_random)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=sc.FIXTURE_DIR)
    parser.add_argument("--only", nargs="*", help="scenario names to record (default: all)")
    parser.add_argument("--random", type=int, default=len(RANDOM_SEEDS), help="number of random scenarios")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=2, help="runs per scenario that must agree bitwise")
    args = parser.parse_args(argv)
    chosen = [s for s in all_scenarios(args.random) if not args.only or s["name"] in args.only]
    print(f"centralization emulation order check: relative error {centralization_check():.2e}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    def one(scen: sc.Scenario) -> str:
        traj, version = record_checked(scen, args.repeats)
        path = args.out / f"{scen['name']}.npz"
        sc.save_fixture(path, sc.Fixture(scen, traj, version, sc.inputs_digest(scen)))
        return f"{scen['name']:<45} {path.stat().st_size / 1024:7.1f} KiB"

    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(one, chosen):
            print(line, flush=True)
    if not args.only:
        keep = {f"{s['name']}.npz" for s in chosen}
        for stale in args.out.glob("*.npz"):
            if stale.name not in keep:
                stale.unlink()
    total = sum(p.stat().st_size for p in args.out.glob("*.npz"))
    print(f"{len(chosen)} fixtures in {time.monotonic() - start:.0f}s; {total / 2**20:.2f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--worker"):
        sys.exit(_worker(sys.argv[1:]))
    sys.exit(main())
