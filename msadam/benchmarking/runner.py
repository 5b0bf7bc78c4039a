"""The measurements of ``msadam bench``: step time and peak memory per backend, against baselines and the bound.

For every grid point (``size`` float32 parameters split into ``tensors`` tensors) and every chosen
backend, in turn:

1. the parameters and gradients are made once, seeded, as NumPy arrays, and handed to each side:
   ``msadam.Adam`` on the backend's native arrays (``Parameter(..., backend=name)``), and each
   :class:`~msadam.benchmarking.BenchBaseline` that pairs with the backend (its factory);
2. memory, one side after the other (:class:`~msadam.benchmarking.PeakMemory`): a window opens once
   the inputs exist (for a baseline: once its factory returned); the optimizer is built and stepped
   once (state, compilation); the peak is then reset, so compilation's transient memory is not
   counted, and two more steps run; the reading is the peak growth since the window opened (of the
   process's resident memory, or of the backend's allocator statistics when it offers them and they
   grew more), over the parameters' bytes. It is a lower bound: memory that a framework's pool
   kept from earlier work and reuses is not seen (so sizes run in ascending order);
3. time: one step of each side and one in-place add (:class:`~msadam.benchmarking.InPlaceAdd`)
   in turns, ``repeats`` rounds (:func:`~msadam.benchmarking.interleaved`); the medians give the
   step times and, with 28 bytes per parameter, the memory-bandwidth bound of this grid point.

Backends are measured one after the other (never interleaved with each other), so one framework's
idle threads do not tax another's steps.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from msadam import registry
from msadam.benchmarking.baseline import LEARNING_RATE, BenchBaseline, BenchStep, as_bench_step
from msadam.benchmarking.memory import AllocatorMemory, PeakMemory
from msadam.benchmarking.timing import InPlaceAdd, interleaved

__all__ = ["BackendRun", "Measurement", "Report", "collect_baselines", "run", "split"]

HOOK = "msadam_bench_baselines"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Measurement:
    """One side at one grid point: median step time, peak extra memory, or why it failed."""

    label: str
    seconds: float | None = None
    memory_bytes: int | None = None
    error: str | None = None


@dataclass
class BackendRun:
    """One backend at one grid point: msadam, its baselines, and the bound measured with them."""

    backend: str
    size: int
    tensors: int
    msadam: Measurement
    baselines: list[Measurement]
    bandwidth: float | None = None  # bytes per second of the in-place add, timed with the steps
    bound_seconds: float | None = None

    @property
    def param_bytes(self) -> int:
        return 4 * self.size


@dataclass
class Report:
    """Everything ``msadam bench`` measured, in grid order (size, then tensors, then backend)."""

    backends: list[str]
    sizes: list[int]
    tensors: list[int]
    repeats: int
    runs: list[BackendRun] = field(default_factory=list)
    baseline_labels: dict[str, list[str]] = field(default_factory=dict)
    plugin_errors: dict[str, str] = field(default_factory=dict)  # plugin -> what its hook did wrong
    memory_note: str | None = None  # why memory is not measured, when it is not

    @property
    def failures(self) -> list[str]:
        """One line per failed measurement or broken plugin."""
        lines = [f"plugin {plugin}: {error}" for plugin, error in sorted(self.plugin_errors.items())]
        for r in self.runs:
            for m in (r.msadam, *r.baselines):
                if m.error is not None:
                    lines.append(f"{r.backend} {m.label} at {r.size} params / {r.tensors} tensors: {m.error}")
        return lines


def collect_baselines(manager: Any = None) -> tuple[list[BenchBaseline], dict[str, str]]:
    """Every plugin's baselines, in registration order, and the plugins whose hook failed (with why).

    Each implementation is called on its own, so that one raising hook cannot hide the others.
    """
    manager = manager if manager is not None else registry.plugin_manager()
    baselines: list[BenchBaseline] = []
    errors: dict[str, str] = {}
    for impl in getattr(manager.hook, HOOK).get_hookimpls():  # in registration order
        if impl.wrapper or impl.hookwrapper:
            continue
        try:
            result = impl.function()
        except registry.PLUGIN_ERRORS as exc:  # sys.exit() in a plugin's hook must not end msadam bench either
            errors[impl.plugin_name] = f"{HOOK} raised {_describe(exc)}"
            continue
        if not isinstance(result, list | tuple) or not all(isinstance(b, BenchBaseline) for b in result):
            errors[impl.plugin_name] = f"{HOOK} returned {result!r}, not a list of msadam.benchmarking.BenchBaseline"
            continue
        baselines.extend(result)
    return baselines, errors


def split(size: int, tensors: int) -> list[int]:
    """``size`` elements over ``tensors`` tensors, as evenly as possible (the first ones one larger)."""
    base, extra = divmod(size, tensors)
    return [base + (i < extra) for i in range(tensors)]


def _inputs(size: int, tensors: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(size * 7919 + tensors)
    lengths = split(size, tensors)
    params = [rng.standard_normal(n, dtype=np.float32) for n in lengths]
    grads = [rng.standard_normal(n, dtype=np.float32) for n in lengths]
    return params, grads


def _synchronizer(backend: Any) -> Callable[[Sequence[Any]], object]:
    """How to wait for a backend's arrays: its optional ``synchronize``, else reading the last one."""
    sync = getattr(backend, "synchronize", None)
    if callable(sync):
        return sync
    return lambda arrays: backend.to_numpy(arrays[-1]) if arrays else None


def _msadam_side(name: str, params: list[np.ndarray], grads: list[np.ndarray]) -> Callable[[], BenchStep]:
    """Make the native inputs now; the returned ``build`` constructs ``msadam.Adam`` (in the memory window)."""
    import msadam

    backend = registry.load_backend(name)
    parameters = [msadam.Parameter(p, name=f"p{i}", backend=name) for i, p in enumerate(params)]
    native_grads = tuple(backend.from_numpy(g) for g in grads)
    synchronize = _synchronizer(backend)

    def build() -> BenchStep:
        opt = msadam.Adam(parameters, learning_rate=LEARNING_RATE)
        return BenchStep(lambda: opt(native_grads), lambda: synchronize([p.data for p in parameters]))

    return build


class _Guarded:
    """A step that records its first exception and does nothing afterwards (so one failure spoils one side)."""

    def __init__(self, step: BenchStep, measurement: Measurement) -> None:
        self.step, self.measurement = step, measurement

    def __call__(self) -> None:
        if self.measurement.error is not None:
            return
        try:
            self.step()
        except Exception as exc:
            self.measurement.error = f"step raised {_describe(exc)}"


def _prepare(
    measurement: Measurement, make: Callable[[], Callable[[], BenchStep]], memory: PeakMemory,
    allocator: AllocatorMemory | None,
) -> _Guarded | None:
    """Inputs, then the memory window around building and three steps; None (and ``error`` set) on failure."""
    try:
        build = make()
        memory.start(allocator)
        step = _Guarded(as_bench_step(build()), measurement)
        step()
        memory.settle()
        step()
        step()
        measurement.memory_bytes = memory.extra()
    except Exception as exc:
        measurement.error = _describe(exc)
        return None
    return step if measurement.error is None else None


def _measure_backend(
    name: str, size: int, tensors: int, baselines: Sequence[BenchBaseline], repeats: int,
    bandwidth: InPlaceAdd, memory: PeakMemory,
) -> BackendRun:
    params, grads = _inputs(size, tensors)
    ours = Measurement("msadam")
    theirs = [Measurement(b.label) for b in baselines]
    steps: dict[str, Callable[[], object]] = {}
    allocator = getattr(registry.load_backend(name), "allocator_memory", None)
    step = _prepare(ours, lambda: _msadam_side(name, params, grads), memory, allocator)
    if step is not None:
        steps["msadam"] = step
    for i, (baseline, measurement) in enumerate(zip(baselines, theirs, strict=True)):

        def make(baseline: BenchBaseline = baseline) -> Callable[[], BenchStep]:
            made = as_bench_step(baseline.factory([p.copy() for p in params], [g.copy() for g in grads]))
            return lambda: made

        step = _prepare(measurement, make, memory, allocator)
        if step is not None:
            steps[f"baseline{i}"] = step
    result = BackendRun(name, size, tensors, ours, theirs)
    times = interleaved({**steps, "bound": bandwidth}, repeats)
    result.bandwidth = bandwidth.bandwidth(times["bound"])
    result.bound_seconds = bandwidth.bound(size, times["bound"])
    if "msadam" in steps and ours.error is None:
        ours.seconds = times["msadam"]
    for i, measurement in enumerate(theirs):
        if f"baseline{i}" in steps and measurement.error is None:
            measurement.seconds = times[f"baseline{i}"]
    del steps, step
    gc.collect()
    return result


def run(
    backends: Sequence[str],
    sizes: Sequence[int],
    tensors: Sequence[int],
    repeats: int,
    baselines: Iterable[BenchBaseline] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Measure every (size, tensors) grid point on every backend in ``backends`` (installed names).

    ``baselines`` defaults to those the plugins announce (:func:`collect_baselines`); the ones for
    backends not in ``backends`` are ignored.
    """
    plugin_errors: dict[str, str] = {}
    if baselines is None:
        found, plugin_errors = collect_baselines()
    else:
        found = list(baselines)
    paired = {name: [b for b in found if b.backend == name] for name in backends}
    memory = PeakMemory()
    report = Report(list(backends), list(sizes), list(tensors), repeats, plugin_errors=plugin_errors,
                    baseline_labels={name: [b.label for b in paired[name]] for name in backends},
                    memory_note=memory.why_not)
    bandwidth = InPlaceAdd()
    try:
        for size, count in itertools.product(sizes, tensors):
            for name in backends:
                if progress is not None:
                    progress(f"{name}: {size} parameters in {count} tensors")
                report.runs.append(_measure_backend(name, size, count, paired[name], repeats, bandwidth, memory))
    finally:
        bandwidth.close()
    return report
