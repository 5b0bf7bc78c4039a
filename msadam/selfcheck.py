"""``msadam selfcheck``: replay trajectories recorded from real MindSpore on every installed backend.

The package ships ``data/selfcheck_mindspore.npz``, written by ``tests/golden/record_selfcheck.py``
from MindSpore 2.10 running the scenarios below; this module runs the same scenarios through
``msadam.Adam`` and reports the worst relative error (``max |a - b| / max |b|`` per array and step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["SCENARIOS", "Result", "check_backend", "gradients", "initial_values", "load_reference"]

STEPS = 20
TOLERANCE = 1e-6
SHAPES = {"dense.weight": (4, 16), "bn.gamma": (16,), "dense.bias": (16,), "embedding": (50, 8)}


def initial_values() -> dict[str, np.ndarray]:
    """The parameters' starting values (float32, seeded)."""
    rng = np.random.default_rng(2026)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def gradients(step: int, sparse: bool) -> dict[str, Any]:
    """Gradients of one step: dense arrays, and for ``embedding`` rows with repeated indices when ``sparse``."""
    rng = np.random.default_rng(1000 + step)
    grads: dict[str, Any] = {
        name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()
    }
    if sparse:
        indices = rng.integers(0, 10, size=12).astype(np.int32)  # few rows, so indices repeat
        grads["embedding"] = (indices, rng.standard_normal((12, 8)).astype(np.float32))
    return grads


@dataclass(frozen=True)
class Scenario:
    """One replayed run: constructor options in MindSpore's terms and the sparse set-up."""

    name: str
    grouped: bool
    options: dict[str, Any]
    sparse: bool = False
    target: str | None = None


SCENARIOS = (
    Scenario("grouped-schedule-nesterov", True,
             {"use_nesterov": True, "loss_scale": 8.0, "weight_decay": 0.01}),
    Scenario("plain-decay-amsgrad", False, {"weight_decay": 0.05, "use_amsgrad": True, "learning_rate": 0.01}),
    Scenario("sparse-default-composite", False, {"learning_rate": 0.05}, sparse=True),
    Scenario("sparse-lazy-fused-cpu", False, {"learning_rate": 0.05, "use_lazy": True}, sparse=True, target="CPU"),
)


def build_params(make: Callable[[np.ndarray, str], Any], scenario: Scenario, schedule: Any) -> Any:
    """The ``params`` argument of a scenario, built with ``make(value, name)`` (any library's Parameter)."""
    values = initial_values()
    params = {name: make(value, name) for name, value in values.items()}
    if not scenario.grouped:
        return list(params.values())
    return [
        {"params": [params["dense.weight"]], "lr": schedule, "grad_centralization": True},
        {"params": [params["bn.gamma"], params["dense.bias"]], "weight_decay": 0.0},
        {"params": [params["embedding"]], "lr": 0.02},
        {"order_params": list(params.values())},
    ]


@dataclass(frozen=True)
class Result:
    """The worst relative error of one scenario on one backend."""

    scenario: str
    backend: str
    worst: float
    where: str

    @property
    def ok(self) -> bool:
        return self.worst <= TOLERANCE


def load_reference() -> dict[str, np.ndarray]:
    """The packaged MindSpore trajectories: ``<scenario>/<param>`` arrays of shape ``(STEPS, *shape)``."""
    path = resources.files("msadam") / "data" / "selfcheck_mindspore.npz"
    with resources.as_file(path) as file, np.load(file, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def run_msadam(scenario: Scenario, backend: str) -> dict[str, np.ndarray]:
    """Run one scenario on ``backend``; returns ``<param name>`` -> values after each step."""
    import msadam

    schedule = msadam.ExponentialDecayLR(0.1, 0.9, 4, is_stair=True)
    params = build_params(lambda value, name: msadam.Parameter(value, name=name, backend=backend),
                          scenario, schedule)
    opt = msadam.Adam(params, **scenario.options)
    if scenario.target is not None:
        opt.target = scenario.target
    history: dict[str, list[np.ndarray]] = {p.name: [] for p in opt.parameters}
    for step in range(STEPS):
        grads = gradients(step, scenario.sparse)
        batch = []
        for p in opt.parameters:
            g = grads[p.name]
            batch.append(msadam.RowTensor(g[0], g[1], p.shape) if isinstance(g, tuple) else g)
        opt(tuple(batch))
        for p in opt.parameters:
            history[p.name].append(p.asnumpy())
    return {name: np.stack(values) for name, values in history.items()}


def check_backend(backend: str, reference: dict[str, np.ndarray]) -> list[Result]:
    """Every scenario on ``backend`` against ``reference``."""
    results = []
    for scenario in SCENARIOS:
        ours = run_msadam(scenario, backend)
        worst, where = 0.0, ""
        for name, values in ours.items():
            expected = reference[f"{scenario.name}/{name}"]
            for step in range(STEPS):
                scale = max(float(np.max(np.abs(expected[step]))), float(np.finfo(np.float32).tiny))
                error = float(np.max(np.abs(values[step] - expected[step]))) / scale
                if error > worst:
                    worst, where = error, f"{name} at step {step + 1}"
        results.append(Result(scenario.name, backend, worst, where))
    return results


def add_arguments(parser: Any) -> None:
    """``msadam selfcheck`` options."""
    parser.add_argument("--backends", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_cli(args: Any) -> int:
    """``msadam selfcheck``: exit 0 when every backend is within tolerance of MindSpore, else 1."""
    import json
    import sys

    import msadam
    from msadam.cli import CLIError

    installed = msadam.available_backends()
    names = installed if not args.backends else [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = [n for n in names if n not in installed]
    if unknown or not names:
        raise CLIError(f"unknown or unusable backend(s) {unknown}; installed: {', '.join(installed)}")
    reference = load_reference()
    results = [r for name in names for r in check_backend(name, reference)]
    if args.json:
        json.dump({"mindspore": str(reference["mindspore_version"]), "tolerance": TOLERANCE,
                   "results": [{"scenario": r.scenario, "backend": r.backend, "worst_relative_error": r.worst,
                                "where": r.where, "ok": r.ok} for r in results]}, sys.stdout, indent=2)
        print()
    else:
        print(f"replaying {len(SCENARIOS)} trajectories recorded from MindSpore "
              f"{reference['mindspore_version']} ({STEPS} steps each); tolerance {TOLERANCE:g} relative")
        print(f"{'backend':<12} {'scenario':<28} {'worst rel. error':>16}  where")
        for r in results:
            print(f"{r.backend:<12} {r.scenario:<28} {r.worst:>16.2e}  {r.where}{'' if r.ok else '  FAIL'}")
        print("all within tolerance" if all(r.ok for r in results) else "SOME BACKENDS EXCEED THE TOLERANCE")
    return 0 if all(r.ok for r in results) else 1
