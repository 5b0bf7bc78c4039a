"""Assertions for users' own test suites: msadam's numbers against a reference, step by step.

* [`assert_trajectories_close`][msadam.testing.assert_trajectories_close] — two trajectories
  (``{name: array stacked over steps}``, as [`msadam.parity.run_msadam`][msadam.parity.run_msadam] returns, or your own)
  agree within ``rtol`` by the parity measure (per array and step, ``max|actual - expected| / max|expected|``); the
  failure message names the worst array, its step and the first step over the tolerance.
* [`assert_parity`][msadam.testing.assert_parity] — one scenario (a named one, a random mix by seed, a scenario dict or
  file) run on each backend against a reference: the NumPy reference by default, any installed backend
  by name, ``"mindspore"`` for the whole scenario in real MindSpore (``mindspore.nn.Adam`` in a
  subprocess, needs MindSpore), or a recorded trajectory file (``msadam parity --record``).

Combined with the ``msadam_backend`` fixture of msadam's pytest plugin:

    def test_adam_matches_mindspore(msadam_backend):
        msadam.testing.assert_parity("nesterov", backends=[msadam_backend])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from msadam import registry
from msadam.parity import (
    Mismatch,
    Scenario,
    compare,
    get_scenario,
    inputs_digest,
    load_record,
    load_scenario_file,
    random_scenario,
    run_msadam,
    validate_scenario,
)

__all__ = ["DEFAULT_RTOL", "assert_parity", "assert_trajectories_close", "reference_trajectory", "scenario_of"]

DEFAULT_RTOL = 1e-6  # msadam's parity target: float32 runs within 1e-6 relative of MindSpore
ORACLE = "mindspore"


def assert_trajectories_close(expected: Mapping[str, Any], actual: Mapping[str, Any], rtol: float = DEFAULT_RTOL,
                              *, label: str = "actual") -> Mismatch:
    """Fail unless every array of ``actual`` is within ``rtol`` of ``expected`` at every step.

    Both map names to arrays whose first axis is the step. Returns the [`Mismatch`][msadam.parity.Mismatch]
    (worst relative and absolute error, where) when they agree.
    """
    mismatch = compare({k: np.asarray(v) for k, v in expected.items()},
                       {k: np.asarray(v) for k, v in actual.items()})
    first = mismatch.first_step_over(rtol)
    if first is not None:
        raise AssertionError(f"{label}: worst relative error {mismatch} exceeds {rtol:g} "
                             f"(first step over it: {first}; worst absolute error {mismatch.abs_error:.3e})")
    return mismatch


def scenario_of(scenario: str | int | Mapping[str, Any] | Path) -> Scenario:
    """A scenario from a name (``"plain"``), a seed (a random mix), a dict or a JSON file, checked."""
    if isinstance(scenario, bool):
        raise TypeError("A scenario is a name, a seed, a dict or a file path, not a bool.")
    if isinstance(scenario, int):
        return random_scenario(scenario)
    if isinstance(scenario, Path):
        return load_scenario_file(scenario)
    if isinstance(scenario, str):
        return get_scenario(scenario)
    if isinstance(scenario, Mapping):
        return validate_scenario(dict(scenario))
    raise TypeError(f"A scenario is a name, a seed, a dict or a file path, not {type(scenario).__name__}.")


def reference_trajectory(scen: Scenario, reference: str | Path = "numpy") -> dict[str, np.ndarray]:
    """The trajectory to compare against: a backend's (``"numpy"``...), real MindSpore's
    (``"mindspore"``: the whole scenario in ``mindspore.nn.Adam``, in a subprocess) or a record file's."""
    if isinstance(reference, Path):
        record = load_record(reference)
        if record.inputs_digest != inputs_digest(scen):
            raise ValueError(f"{reference} records scenario {record.scenario.get('name')!r} with other inputs "
                             f"than {scen.get('name')!r}.")
        return dict(record.trajectory)
    if reference == ORACLE:
        from msadam.parity import oracle  # imported by name: it runs MindSpore in a subprocess

        return dict(oracle.record(scen)[0])
    return dict(run_msadam(scen, reference))


def assert_parity(scenario: str | int | Mapping[str, Any] | Path = "plain", backends: Sequence[str] | None = None,
                  *, reference: str | Path = "numpy", rtol: float = DEFAULT_RTOL) -> dict[str, Mismatch]:
    """Run ``scenario`` on each of ``backends`` (default: every installed one) and fail unless each is
    within ``rtol`` of ``reference`` at every step; returns each backend's [`Mismatch`][msadam.parity.Mismatch]."""
    scen = scenario_of(scenario)
    names = list(backends) if backends is not None else registry.available_backends()
    expected = reference_trajectory(scen, reference)
    return {name: assert_trajectories_close(expected, run_msadam(scen, name), rtol,
                                            label=f"{scen.get('name', 'scenario')} on {name} vs {reference}")
            for name in names}
