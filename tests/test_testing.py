"""``msadam.testing``: the assertions users put in their own suites, on every installed backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import msadam.testing
from msadam.parity import Record, get_scenario, inputs_digest, random_scenario, run_msadam, save_record


def test_a_named_scenario_has_parity_on_each_backend(msadam_backend: str) -> None:
    mismatches = msadam.testing.assert_parity("nesterov", backends=[msadam_backend])
    assert mismatches[msadam_backend].error <= msadam.testing.DEFAULT_RTOL


def test_a_random_mix_has_parity_on_each_backend(msadam_backend: str) -> None:
    msadam.testing.assert_parity(3, backends=[msadam_backend])


def test_a_drifting_trajectory_fails_with_the_step_it_started() -> None:
    expected = run_msadam(get_scenario("plain"))
    drifting = {k: v.copy() for k, v in expected.items()}
    key = next(k for k in drifting if k.startswith("param/"))
    drifting[key][4:] *= np.float32(1 + 1e-5)  # steps 5.. off by 1e-5
    with pytest.raises(AssertionError, match=r"first step over it: 5"):
        msadam.testing.assert_trajectories_close(expected, drifting, label="drifting")
    assert msadam.testing.assert_trajectories_close(expected, drifting, rtol=1e-4).error > 0


def test_different_arrays_are_not_close() -> None:
    expected = run_msadam(get_scenario("plain"))
    with pytest.raises(AssertionError, match="not comparable"):
        msadam.testing.assert_trajectories_close(expected, {k: v for k, v in list(expected.items())[1:]})


def test_scenarios_come_from_names_seeds_dicts_and_files(tmp_path: Path) -> None:
    assert msadam.testing.scenario_of("plain") == get_scenario("plain")
    assert msadam.testing.scenario_of(7) == random_scenario(7)
    assert msadam.testing.scenario_of(dict(get_scenario("plain")))["name"] == "plain"
    path = tmp_path / "scenario.json"
    path.write_text('{"name": "mine", "params": [{"name": "w", "shape": [4]}], "steps": 3}')
    assert msadam.testing.scenario_of(path)["steps"] == 3
    with pytest.raises(TypeError):
        msadam.testing.scenario_of(True)


def test_a_recorded_trajectory_is_a_reference(tmp_path: Path) -> None:
    scen = get_scenario("amsgrad")
    path = tmp_path / "run.npz"
    save_record(path, Record(scen, run_msadam(scen), "numpy", np.__version__, inputs_digest(scen)))
    msadam.testing.assert_parity("amsgrad", backends=["numpy"], reference=path)
    with pytest.raises(ValueError, match="other inputs"):
        msadam.testing.assert_parity("plain", backends=["numpy"], reference=path)


def test_real_mindspore_is_a_reference() -> None:
    probe = subprocess.run([sys.executable, "-c", "import mindspore"], capture_output=True, timeout=300)
    if probe.returncode != 0:
        pytest.skip("MindSpore is not importable here")
    msadam.testing.assert_parity("plain", backends=["numpy"], reference="mindspore")
