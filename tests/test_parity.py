"""Parity with MindSpore, number for number, on every installed backend.

* Golden replay: every trajectory recorded from real MindSpore (``tests/golden/trajectories``,
  written by ``tests/golden/record_trajectories.py``) is replayed through msadam's public API; every
  array at every step must be within :data:`TOLERANCE` relative (``max|diff| / max(max|value|, tiny)``).
* Live: when MindSpore imports, a few scenarios (including random seeds that are not in the
  fixtures) run in MindSpore — one subprocess each, through the recorder's own functions — and
  msadam is compared to that.

The worst relative error per backend and scenario family is printed at the end of the module
(and kept in pytest's cache under ``msadam/parity_worst``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "golden"))
import record_trajectories as rt  # tests/ is not a package; imports no MindSpore
import scenarios as sc

import msadam

TOLERANCE = 1e-6
KNOWN_BACKENDS = ("numpy", "torch", "jax", "tensorflow", "mindspore")
BACKENDS = list(dict.fromkeys([*KNOWN_BACKENDS, *msadam.available_backends()]))
FIXTURES = sc.fixture_paths()
LIVE_SCENARIOS = [
    *(s for s in sc.named_scenarios() if s["name"] in (
        "groups-dynamic", "grad-centralization", "offload-nesterov-skips-centralization",
        "sparse-default-dense-nesterov", "sparse-CPU-lazy-nesterov", "sparse-Ascend-dense-nesterov")),
    *(sc.random_scenario(seed, steps=20) for seed in range(1000, 1006)),
]
_FAMILIES = (("sparse-", None), ("lr-", "lr"), ("random-", "random"), ("groups-", "groups"),
             ("offload", "offload"), ("lazy-", "lazy-dense"), ("grad-centralization", "centralization"))
_WORST: dict[tuple[str, str], sc.Mismatch] = {}


def family(name: str) -> str:
    """The scenario family a name belongs to (``sparse-<target>``, ``lr``, ``random``, ... or ``dense``)."""
    for prefix, fam in _FAMILIES:
        if name.startswith(prefix):
            return fam or "-".join(name.split("-")[:2])
    return "dense"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param not in msadam.available_backends():
        pytest.skip(f"msadam backend {request.param!r} is not installed")
    return str(request.param)


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


def parity(expected: sc.Trajectory, actual: sc.Trajectory, label: str, backend: str, name: str,
           ) -> sc.Mismatch:
    """The worst relative error of ``actual``, also kept for the end-of-module report."""
    mismatch = sc.compare(expected, actual)
    key = (backend, label + family(name))
    if key not in _WORST or mismatch.error > _WORST[key].error:
        _WORST[key] = sc.Mismatch(mismatch.error, f"{name}: {mismatch.key}", mismatch.step)
    return mismatch


# ----------------------------------------------------------------------------- golden fixtures


def test_fixtures_cover_every_named_scenario() -> None:
    recorded = {p.stem: sc.load_fixture(p) for p in FIXTURES}
    for scen in sc.named_scenarios():
        assert scen["name"] in recorded, f"no golden trajectory for {scen['name']!r}: run the recorder"
        assert recorded[scen["name"]].scenario == scen, f"{scen['name']!r} changed since it was recorded"
    assert sum(f.scenario["name"].startswith("random-") for f in recorded.values()) >= 10
    assert sum(p.stat().st_size for p in FIXTURES) < 3 * 2**20
    for fixture in recorded.values():
        assert fixture.mindspore_version.startswith("2."), fixture.mindspore_version
        assert all(v.dtype in (np.float32, np.int32) for v in fixture.trajectory.values())
        assert len(fixture.trajectory["global_step"]) == fixture.scenario["steps"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_golden_trajectory(backend: str, path: Path) -> None:
    fixture = sc.load_fixture(path)
    assert sc.inputs_digest(fixture.scenario) == fixture.inputs_digest, (
        "the initial values or gradients differ from those recorded (NumPy's generator changed?): re-record"
    )
    name = fixture.scenario["name"]
    mismatch = parity(fixture.trajectory, sc.run_msadam(fixture.scenario, backend), "", backend, name)
    assert mismatch.error <= TOLERANCE, f"{name} on {backend}: worst relative error {mismatch}"


def test_the_comparison_catches_a_wrong_eps() -> None:
    """The harness is not vacuous: one changed hyper-parameter is far outside the tolerance."""
    fixture = sc.load_fixture(sc.FIXTURE_DIR / "eps-large.npz")
    mismatch = sc.compare(fixture.trajectory, sc.run_msadam({**fixture.scenario, "eps": 1e-8}))
    assert mismatch.error > 1e-3 and mismatch.key.startswith("param/"), mismatch
    truncated = {k: v for k, v in fixture.trajectory.items() if not k.startswith("vhat/")}
    assert sc.compare(truncated, {**truncated, "vhat/w": truncated["param/w"]}).error == float("inf")


@pytest.mark.parametrize("seed", range(40))
def test_random_scenarios_are_valid_and_stable(seed: int) -> None:
    scen = sc.random_scenario(seed, steps=3)
    assert scen == sc.random_scenario(seed, steps=3)
    assert sc.to_json(scen) == sc.to_json(sc.random_scenario(seed, steps=3))
    trajectory = sc.run_msadam(scen)
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


_LIVE: dict[str, sc.Trajectory] = {}


@pytest.mark.parametrize("scen", LIVE_SCENARIOS, ids=lambda s: s["name"])
def test_live_mindspore(mindspore_oracle: str, backend: str, scen: sc.Scenario) -> None:
    if scen["name"] not in _LIVE:
        _LIVE[scen["name"]], version = rt.record(scen)
        assert version == mindspore_oracle
    mismatch = parity(_LIVE[scen["name"]], sc.run_msadam(scen, backend), "live:", backend, scen["name"])
    assert mismatch.error <= TOLERANCE, f"{scen['name']} (live) on {backend}: worst relative error {mismatch}"


def test_live_centralization_emulation_is_in_mindspores_order(mindspore_oracle: str) -> None:
    """The recorder's stand-in for the Ascend-only op applies after decay and before the loss scale."""
    assert rt.centralization_check() <= TOLERANCE
