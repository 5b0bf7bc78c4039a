"""`msadam selfcheck`: the packaged MindSpore trajectories replay within tolerance, and a drift is caught."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from msadam import selfcheck


def test_every_backend_replays_mindspore_within_tolerance(backend_name: str) -> None:
    results = selfcheck.check_backend(backend_name, selfcheck.load_reference())
    assert {r.scenario for r in results} == {s.name for s in selfcheck.SCENARIOS}
    for r in results:
        assert r.ok, f"{r.scenario} on {r.backend}: {r.worst:.2e} at {r.where}"


def test_a_drifted_reference_is_reported() -> None:
    reference = selfcheck.load_reference()
    key = "sparse-default-composite/embedding"
    reference[key] = reference[key].copy()
    reference[key][7, 3, 1] += 1e-3 * np.abs(reference[key][7]).max()
    results = {r.scenario: r for r in selfcheck.check_backend("numpy", reference)}
    assert not results["sparse-default-composite"].ok
    assert results["sparse-default-composite"].where == "embedding at step 8"
    assert results["grouped-schedule-nesterov"].ok


def test_cli_json_and_exit_code() -> None:
    done = subprocess.run([sys.executable, "-m", "msadam", "selfcheck", "--json", "--backends", "numpy"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["mindspore"] == "2.10.0"
    assert all(r["ok"] and r["worst_relative_error"] <= 1e-6 for r in document["results"])


def test_cli_rejects_an_unknown_backend() -> None:
    done = subprocess.run([sys.executable, "-m", "msadam", "selfcheck", "--backends", "nope"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("msadam: error: unknown or unusable backend(s) ['nope']")
    assert "Traceback" not in done.stderr
