"""The oracle: a whole scenario run by real ``mindspore.nn.Adam``, in a subprocess of its own.

MindSpore is imported only in that subprocess (``python -m msadam.parity.oracle --worker-run``),
never by this module: each scenario gets a fresh process (graph-mode caches leak state between
scenarios in one process), and a MindSpore that crashes or does not import cannot take the caller
down. How MindSpore is driven there:

* Start-up: ``GLOG_v=3``, ``MS_OM_PATH`` in a temporary folder (failed compiles write ``rank_0/``
  into the cwd otherwise), and one throwaway ``Tensor(...).reshape(())`` (MindSpore is built against
  NumPy 1; the first call after import raises ``SystemError`` under NumPy 2).
* Dense scenarios: PyNative mode, ``opt(tuple_of_tensors)`` (``Adam.construct`` is ``@jit`` anyway).
* Sparse scenarios: GRAPH mode; ``_GraphStep`` builds ``RowTensorInner(indices, values,
  dense_shape)`` inside its ``construct`` and calls the optimizer (PyNative rejects RowTensor).
* Targets: ``'default'`` assigns nothing (``Adam.__init__`` sets ``_is_device = True`` while
  ``_target`` stays ``'CPU'``: the composite path without de-duplication). ``'CPU'`` is the public
  ``opt.target = 'CPU'`` (fused host kernels). ``'GPU'``/``'Ascend'`` are refused on a CPU machine by
  ``Optimizer._set_base_target``; the worker sets exactly the two attributes that setter would
  set, ``opt._target = value`` and ``opt._is_device = True``, so MindSpore's own
  ``_grad_sparse_indices_deduplicate`` (``P.Unique`` + ``UnsortedSegmentSum`` when ``opt.unique``)
  and composite path run unchanged.
* Gradient centralization: the ``Centralization`` kernel exists only on Ascend. The module global
  ``mindspore.nn.optim.optimizer.op_gc`` (the op both ``_apply_grad_centralization`` overloads call)
  is replaced by ``_Centralization``, ``g - ReduceMean(keep_dims=True)(g, axes)``; the call site,
  and therefore the order decay -> centralization -> loss scale, stays MindSpore's.
  :func:`check_centralization_order` proves it on one step.

The worker reports progress on stdout (``step <i>`` lines) and writes the trajectory, MindSpore's
version and the time of each step to an ``.npz``; exit status 3 means MindSpore does not import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from msadam.parity.errors import OracleError, OracleUnavailable
from msadam.parity.run import (
    Gradient,
    Library,
    SparseGradient,
    Stepper,
    Trajectory,
    build_optimizer,
    freeze_lr,
    run,
)
from msadam.parity.scenarios import Scenario, to_json

__all__ = ["OracleResult", "OracleRun", "centralization_check", "check_centralization_order",
           "mindspore_installed", "record", "run_mindspore"]

EXIT_NO_MINDSPORE = 3
DEFAULT_TIMEOUT = 900.0


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


def mindspore_library() -> Library:
    """MindSpore's spelling of what a scenario needs."""
    ms = import_mindspore()
    return Library(adam=ms.nn.Adam, parameter=lambda a, n: ms.Parameter(ms.Tensor(a), name=n),
                   tensor=ms.Tensor, schedules=ms.nn, gradient=ms.Tensor)


def set_target(opt: Any, scen: Scenario) -> None:
    """``opt.target``/``opt.unique`` as the module docstring says ('GPU'/'Ascend': the private pair)."""
    target = scen["target"]
    if target == "CPU":
        opt.target = "CPU"
    elif target in ("GPU", "Ascend"):
        opt._target = target
        opt._is_device = True
    opt.unique = scen["unique"]


def _graph_stepper(opt: Any, scen: Scenario) -> Stepper:
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

    def step(grads: tuple[Gradient, ...]) -> Any:
        flat: list[Any] = []
        for g in grads:
            parts = (g.indices, g.values) if isinstance(g, SparseGradient) else (g,)
            flat += [ms.Tensor(part) for part in parts]
        return freeze_lr(cell(*flat)[1])

    return step


def run_mindspore(scen: Scenario, timings: list[float] | None = None,
                  on_step: Callable[[int], None] | None = None) -> tuple[Trajectory, str]:
    """The scenario's trajectory through ``mindspore.nn.Adam`` (once per process), and MindSpore's version."""
    ms = import_mindspore()
    lib = mindspore_library()
    install_centralization()
    ms.set_context(mode=ms.GRAPH_MODE if scen["sparse"] else ms.PYNATIVE_MODE)
    opt = build_optimizer(scen, lib)
    set_target(opt, scen)
    if scen["sparse"]:
        step = _graph_stepper(opt, scen)
    else:

        def step(grads: tuple[Gradient, ...]) -> Any:
            lr = freeze_lr(opt.get_lr())
            opt(tuple(lib.gradient(g) for g in grads))
            return lr

    return run(scen, opt, step, timings, on_step), str(ms.__version__)


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
    try:
        import_mindspore()
    except Exception as exc:  # not installed, or broken: the parent falls back or reports it
        print(f"MindSpore does not import ({type(exc).__name__}: {' '.join(str(exc).split())})", file=sys.stderr)
        return EXIT_NO_MINDSPORE
    if argv[0] == "--worker-check":
        print(json.dumps({"relative_error": check_centralization_order()}))
        return 0
    scen = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    timings: list[float] = []

    def progress(i: int) -> None:
        print(f"step {i}", flush=True)

    trajectory, version = run_mindspore(scen, timings, progress)
    payload: dict[str, Any] = {f"traj/{k}": v for k, v in trajectory.items()}
    np.savez(argv[2], mindspore_version=np.array(version), step_seconds=np.array(timings), **payload)
    return 0


# ----------------------------------------------------------------------------- in the parent process


def mindspore_installed() -> bool:
    """Whether a ``mindspore`` module is on the path (whether it imports, only the worker finds out)."""
    return importlib.util.find_spec("mindspore") is not None


def _worker_env(workdir: str) -> dict[str, str]:
    env = {**os.environ, "GLOG_v": "3", "MS_OM_PATH": workdir}
    env.pop("PYTHONWARNINGS", None)
    package_root = str(Path(__file__).resolve().parents[2])  # msadam importable even when not installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def _failure(returncode: int, stderr: str, what: str) -> OracleError:
    """The worker's failure as one line: its exception's first line (MindSpore's messages run long)."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    last = raised[-1] if raised else lines[-1] if lines else f"exit status {returncode}"
    if returncode == EXIT_NO_MINDSPORE:
        return OracleUnavailable(last)
    return OracleError(f"MindSpore could not run {what}: {last}")


@dataclass(frozen=True)
class OracleResult:
    """What the worker sent back."""

    trajectory: Trajectory
    version: str
    step_seconds: tuple[float, ...]


class OracleRun:
    """One scenario running in a MindSpore subprocess, started at construction; :meth:`result` waits.

    ``steps_done`` counts the steps the worker has reported, for a progress bar.
    """

    def __init__(self, scen: Scenario, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.scenario, self.timeout, self.steps_done = scen, timeout, 0
        self._tmp = tempfile.TemporaryDirectory(prefix="msadam-oracle-")
        src, self._out = Path(self._tmp.name) / "scenario.json", Path(self._tmp.name) / "trajectory.npz"
        src.write_text(to_json(scen), encoding="utf-8")
        self._stderr = open(Path(self._tmp.name) / "stderr.txt", "w+", encoding="utf-8")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "msadam.parity.oracle", "--worker-run", str(src), str(self._out)],
            cwd=self._tmp.name, env=_worker_env(self._tmp.name), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("step "):
                with contextlib.suppress(ValueError):
                    self.steps_done = int(line.split()[1])

    def done(self) -> bool:
        return self._proc.poll() is not None

    def result(self) -> OracleResult:
        """Wait for the worker; its trajectory, or :class:`OracleError` (:class:`OracleUnavailable`)."""
        try:
            try:
                returncode = self._proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
                raise OracleError(f"MindSpore did not finish {self.scenario['name']!r} "
                                  f"within {self.timeout:g} s") from None
            self._reader.join()
            self._stderr.seek(0)
            if returncode:
                raise _failure(returncode, self._stderr.read(), f"scenario {self.scenario['name']!r}")
            with np.load(self._out, allow_pickle=False) as data:
                trajectory = {k.removeprefix("traj/"): data[k] for k in data.files if k.startswith("traj/")}
                return OracleResult(trajectory, str(data["mindspore_version"]),
                                    tuple(float(t) for t in data["step_seconds"]))
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker if it still runs, and remove its folder."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()
        self._tmp.cleanup()


def record(scen: Scenario, timeout: float = DEFAULT_TIMEOUT) -> tuple[Trajectory, str]:
    """Run ``scen`` in real MindSpore in a fresh subprocess; its trajectory and MindSpore's version."""
    result = OracleRun(scen, timeout).result()
    return result.trajectory, result.version


def centralization_check(timeout: float = 600.0) -> float:
    """:func:`check_centralization_order` in a fresh MindSpore subprocess."""
    with tempfile.TemporaryDirectory(prefix="msadam-oracle-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "msadam.parity.oracle", "--worker-check"], cwd=tmp,
                              env=_worker_env(tmp), capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode:
            raise _failure(proc.returncode, proc.stderr, "the centralization check")
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["relative_error"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--worker"):
        sys.exit(_worker(sys.argv[1:]))
    sys.exit("usage: python -m msadam.parity.oracle --worker-run SCENARIO.json OUT.npz | --worker-check")
