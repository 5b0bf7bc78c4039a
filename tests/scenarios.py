"""Compatibility shim: the scenario machinery now lives in :mod:`msadam.parity` (``msadam parity``).

Tests written against ``import scenarios as sc`` keep working: every name it had is re-exported
from the core package, and the golden fixtures (``tests/golden/trajectories``) load as
:class:`msadam.parity.trajectory_file.Record` objects (``Fixture``). New code should import
``msadam.parity`` directly.
"""

from __future__ import annotations

from pathlib import Path

from msadam.parity.compare import TINY, Mismatch, compare
from msadam.parity.run import (
    Gradient,
    Library,
    SparseGradient,
    Stepper,
    Trajectory,
    build_optimizer,
    freeze_lr,
    gradient_stream,
    hyper_value,
    initial_values,
    inputs_digest,
    lr_by_name,
    msadam_library,
    run,
    run_msadam,
    snapshot,
)
from msadam.parity.scenarios import (
    DEFAULT_STEPS,
    LR_KINDS,
    SCHEDULES,
    TARGETS,
    Scenario,
    lr_spec,
    named_scenarios,
    param,
    random_scenario,
    scenario,
    schedule,
    to_json,
)
from msadam.parity.trajectory_file import Record as Fixture
from msadam.parity.trajectory_file import load_record, save_record

FIXTURE_DIR = Path(__file__).parent / "golden" / "trajectories"

__all__ = [
    "DEFAULT_STEPS", "FIXTURE_DIR", "LR_KINDS", "SCHEDULES", "TARGETS", "TINY", "Fixture", "Gradient", "Library",
    "Mismatch", "Scenario", "SparseGradient", "Stepper", "Trajectory", "build_optimizer", "compare",
    "fixture_paths", "freeze_lr", "gradient_stream", "hyper_value", "initial_values", "inputs_digest",
    "load_fixture", "lr_by_name", "lr_spec", "msadam_library", "named_scenarios", "param", "random_scenario",
    "run", "run_msadam", "save_fixture", "scenario", "schedule", "snapshot", "to_json",
]


def load_fixture(path: Path) -> Fixture:
    """A golden trajectory (either record layout), without re-deriving its inputs."""
    return load_record(path, check_inputs=False)


def save_fixture(path: Path, fixture: Fixture) -> None:
    save_record(path, fixture)


def fixture_paths() -> list[Path]:
    return sorted(FIXTURE_DIR.glob("*.npz"))
