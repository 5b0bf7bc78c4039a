"""Parity with MindSpore, number for number, on every installed backend.

The scenarios, runs, comparison and records are :mod:`msadam.parity`'s (what ``msadam parity``
runs); this module pins them against MindSpore:

* Golden replay: every trajectory recorded from real MindSpore (``tests/golden/trajectories``,
  written by ``tests/golden/record_trajectories.py``) is replayed through msadam's public API; every
  array at every step must be within :data:`TOLERANCE` relative (``max|diff| / max(max|value|, tiny)``).
* Live: when MindSpore imports, a few scenarios (including random seeds that are not in the
  fixtures) run in MindSpore — one subprocess each, through :mod:`msadam.parity.oracle` — and
  msadam is compared to that.

The worst relative error per backend and scenario family is printed at the end of the module
(and kept in pytest's cache under ``msadam/parity_worst``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import msadam
from msadam.parity import (
    Mismatch,
    Record,
    Scenario,
    Trajectory,
    compare,
    inputs_digest,
    load_record,
    named_scenarios,
    oracle,
    random_scenario,
    run_msadam,
)
from msadam.parity.scenarios import to_json

TOLERANCE = 1e-6
KNOWN_BACKENDS = ("numpy", "torch", "jax", "tensorflow", "mindspore")
FIXTURE_DIR = Path(__file__).parent / "golden" / "trajectories"
FIXTURES = sorted(FIXTURE_DIR.glob("*.npz"))
LIVE_SCENARIOS = [
    *(s for s in named_scenarios() if s["name"] in (
        "groups-dynamic", "grad-centralization", "offload-nesterov-skips-centralization",
        "sparse-default-dense-nesterov", "sparse-CPU-lazy-nesterov", "sparse-Ascend-dense-nesterov")),
    *(random_scenario(seed, steps=20) for seed in range(1000, 1006)),
]
_FAMILIES = (("sparse-", None), ("lr-", "lr"), ("random-", "random"), ("groups-", "groups"),
             ("offload", "offload"), ("lazy-", "lazy-dense"), ("grad-centralization", "centralization"),
             ("default", "default"))
_WORST: dict[tuple[str, str], Mismatch] = {}


def family(name: str) -> str:
    """The scenario family a name belongs to (``sparse-<target>``, ``lr``, ``random``, ... or ``dense``)."""
    for prefix, fam in _FAMILIES:
        if name.startswith(prefix):
            return fam or "-".join(name.split("-")[:2])
    return "dense"


@pytest.fixture
def backend(msadam_backend: str) -> str:
    """Every installed backend (or those ``--msadam-backends`` names), from msadam's own pytest plugin."""
    return msadam_backend


def test_every_known_backend_is_installed() -> None:
    """Visible when a known backend is missing (its parity rows then do not run at all)."""
    missing = [name for name in KNOWN_BACKENDS if name not in msadam.available_backends()]
    if missing:
        pytest.skip(f"msadam backends not installed, so not checked for parity: {', '.join(missing)}")


@pytest.fixture(scope="module", autouse=True)
def worst_error_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: the worst relative error per (backend, family), on the terminal and in the cache."""
    yield
    if not _WORST:
        return
    lines = [f"{b:<10} {fam:<24} {m}" for (b, fam), m in sorted(_WORST.items())]
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_sep("-", f"msadam vs MindSpore: worst relative error (tolerance {TOLERANCE:g})")
            for line in lines:
                reporter.write_line(line)
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        cache.set("msadam/parity_worst", {f"{b} {fam}": m.error for (b, fam), m in _WORST.items()})


def load_fixture(path: Path) -> Record:
    """A golden record (the first fixtures' layout or ``msadam parity --record``'s); inputs checked by the test."""
    return load_record(path, check_inputs=False)


def parity(expected: Trajectory, actual: Trajectory, label: str, backend: str, name: str) -> Mismatch:
    """The worst relative error of ``actual``, also kept for the end-of-module report."""
    mismatch = compare(expected, actual)
    key = (backend, label + family(name))
    if key not in _WORST or mismatch.error > _WORST[key].error:
        _WORST[key] = dataclasses.replace(mismatch, key=f"{name}: {mismatch.key}")
    return mismatch


# ----------------------------------------------------------------------------- golden fixtures


def test_fixtures_cover_every_named_scenario() -> None:
    recorded = {p.stem: load_fixture(p) for p in FIXTURES}
    for scen in named_scenarios():
        assert scen["name"] in recorded, f"no golden trajectory for {scen['name']!r}: run the recorder"
        assert recorded[scen["name"]].scenario == scen, f"{scen['name']!r} changed since it was recorded"
    assert sum(f.scenario["name"].startswith("random-") for f in recorded.values()) >= 10
    assert sum(p.stat().st_size for p in FIXTURES) < 3 * 2**20
    for fixture in recorded.values():
        assert fixture.reference == "mindspore" and fixture.reference_version.startswith("2."), fixture
        assert all(v.dtype in (np.float32, np.int32) for v in fixture.trajectory.values())
        assert len(fixture.trajectory["global_step"]) == fixture.scenario["steps"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_golden_trajectory(backend: str, path: Path) -> None:
    fixture = load_fixture(path)
    assert inputs_digest(fixture.scenario) == fixture.inputs_digest, (
        "the initial values or gradients differ from those recorded (NumPy's generator changed?): re-record"
    )
    name = fixture.scenario["name"]
    mismatch = parity(fixture.trajectory, run_msadam(fixture.scenario, backend), "", backend, name)
    assert mismatch.error <= TOLERANCE, f"{name} on {backend}: worst relative error {mismatch}"


def test_the_comparison_catches_a_wrong_eps() -> None:
    """The harness is not vacuous: one changed hyper-parameter is far outside the tolerance."""
    fixture = load_fixture(FIXTURE_DIR / "eps-large.npz")
    mismatch = compare(fixture.trajectory, run_msadam({**fixture.scenario, "eps": 1e-8}))
    assert mismatch.error > 1e-3 and mismatch.key.startswith("param/"), mismatch
    assert mismatch.abs_error > 0 and mismatch.first_step_over(TOLERANCE) == 1, mismatch
    assert max(mismatch.per_step) == mismatch.error and len(mismatch.per_step) == fixture.scenario["steps"]
    truncated = {k: v for k, v in fixture.trajectory.items() if not k.startswith("vhat/")}
    extra = compare(truncated, {**truncated, "vhat/w": truncated["param/w"]})
    assert extra.error == float("inf") and not extra.comparable


@pytest.mark.parametrize("seed", range(40))
def test_random_scenarios_are_valid_and_stable(seed: int) -> None:
    scen = random_scenario(seed, steps=3)
    assert scen == random_scenario(seed, steps=3)
    assert to_json(scen) == to_json(random_scenario(seed, steps=3))
    trajectory = run_msadam(scen)
    assert all(np.isfinite(v).all() for v in trajectory.values())
    assert trajectory["global_step"][:, 0].tolist() == [1, 2, 3]


# ----------------------------------------------------------------------------- live MindSpore


@pytest.fixture(scope="session")
def mindspore_oracle() -> str:
    """MindSpore's version, or a skip. Probed in a subprocess: it is only ever run in subprocesses."""
    probe = subprocess.run([sys.executable, "-c", "import mindspore; print(mindspore.__version__)"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode:
        pytest.skip(f"mindspore does not import: {probe.stderr.strip().splitlines()[-1:]}")
    return probe.stdout.strip().splitlines()[-1]


_LIVE: dict[str, Trajectory] = {}


@pytest.mark.parametrize("scen", LIVE_SCENARIOS, ids=lambda s: s["name"])
def test_live_mindspore(mindspore_oracle: str, backend: str, scen: Scenario) -> None:
    if scen["name"] not in _LIVE:
        _LIVE[scen["name"]], version = oracle.record(scen)
        assert version == mindspore_oracle
    mismatch = parity(_LIVE[scen["name"]], run_msadam(scen, backend), "live:", backend, scen["name"])
    assert mismatch.error <= TOLERANCE, f"{scen['name']} (live) on {backend}: worst relative error {mismatch}"


def test_live_centralization_emulation_is_in_mindspores_order(mindspore_oracle: str) -> None:
    """The oracle's stand-in for the Ascend-only op applies after decay and before the loss scale."""
    assert oracle.centralization_check() <= TOLERANCE
