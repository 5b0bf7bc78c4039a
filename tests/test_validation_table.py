"""msadam.Adam raises what mindspore.nn.Adam raises, case for case (``validation_cases.CASES``).

* ``test_matches_mindspore`` plays each case on msadam and compares with MindSpore's recorded outcome
  (``golden/exceptions.json``): the same exception class, raised at the same place (construction or
  the same operation), and for the operations that succeeded the same results. A case with a
  :class:`~validation_cases.Deviation` expects msadam's documented outcome instead.
* ``test_failed_step_changes_no_state`` checks that after every step-time error the parameters,
  moments, global step and beta powers are exactly as before — as the fixture shows for MindSpore.
* ``test_fixture_is_current`` re-records the fixture with the installed MindSpore (in a subprocess,
  so MindSpore never loads into this process) and requires it to match the committed file.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from validation_cases import CASES, Case, Step, run_case, snapshot

import msadam

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "golden" / "exceptions.json"
RECORDER = HERE / "golden" / "record_exceptions.py"
INDEX = {case.name: index for index, case in enumerate(CASES)}
NO_MINDSPORE = 3  # the recorder's exit code when MindSpore does not import
STEP_CASES = [case for case in CASES if any(isinstance(op, Step) for op in case.ops)]


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def outcomes_match(expected: Mapping[str, Any], actual: Mapping[str, Any], results: bool = True) -> bool:
    """Same outcome class and place; with ``results``, the same results of the ops that ran (to 1e-5)."""
    return (
        expected["outcome"] == actual["outcome"]
        and expected["at"] == actual["at"]
        and (not results or _close(expected.get("results", []), actual.get("results", [])))
    )


class MsadamSide:
    """Builds the cases' markers with msadam objects: Parameters of one backend, NumPy gradients."""

    name = "msadam"

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def parameter(self, array: np.ndarray, name: str | None) -> Any:
        return msadam.Parameter(array, name=name, backend=self.backend)

    def tensor(self, array: np.ndarray) -> Any:
        return msadam.Tensor(array)

    def schedule(self, kind: str, args: tuple[Any, ...]) -> Any:
        return getattr(msadam, kind)(*args)

    def gradient(self, array: np.ndarray) -> Any:
        return array

    def adam(self, params: Any, **kwargs: Any) -> Any:
        return msadam.Adam(params, **kwargs)

    def is_parameter(self, value: Any) -> bool:
        return isinstance(value, msadam.Parameter)

    def is_schedule(self, value: Any) -> bool:
        return isinstance(value, msadam.LearningRateSchedule)


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    return document["cases"]


def _describe(outcome: dict[str, Any]) -> str:
    return f"{outcome['outcome']} at {outcome['at']}: {outcome.get('message', '')!r}"


def _expected(case: Case, recorded: dict[str, Any]) -> dict[str, Any]:
    if case.deviation is None:
        return recorded
    return {"outcome": case.deviation.outcome, "at": case.deviation.at}


def test_table_is_recorded(golden: dict[str, Any]) -> None:
    assert sorted(golden) == sorted(INDEX), "re-run tests/golden/record_exceptions.py"
    assert len(CASES) >= 80


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_matches_mindspore(case: Case, golden: dict[str, Any], backend_name: str) -> None:
    recorded = golden[case.name]
    if case.deviation is not None:
        assert recorded["outcome"] != case.deviation.outcome, "the deviation is gone: drop it from the table"
    expected = _expected(case, recorded)
    actual = run_case(case, MsadamSide(backend_name), INDEX[case.name])
    assert outcomes_match(expected, actual, results=case.deviation is None), (
        f"MindSpore: {_describe(recorded)}; msadam: {_describe(actual)}; "
        f"results {expected.get('results')} vs {actual.get('results')}"
        + (f"; deviation: {case.deviation.reason}" if case.deviation else "")
    )


@pytest.mark.parametrize("case", STEP_CASES, ids=lambda case: case.name)
def test_failed_step_changes_no_state(case: Case, golden: dict[str, Any], backend_name: str) -> None:
    """Replays the case, snapshotting before each step; a step that raises must leave no trace."""
    recorded = golden[case.name]
    if recorded["outcome"] != "ok":
        assert recorded.get("state_unchanged", True), "MindSpore itself changed state on a failed step"
    outcome = run_case(case, MsadamSide(backend_name), INDEX[case.name])
    if outcome["outcome"] != "ok" and outcome["at"] != "construct":
        assert outcome.get("state_unchanged", True), f"a failed step changed state: {_describe(outcome)}"


def test_snapshot_sees_every_state_array(backend_name: str) -> None:
    """The snapshot the state checks rely on covers each array, so a change can't hide."""
    w = msadam.Parameter(np.ones((2, 3), np.float32), name="w", backend=backend_name)
    opt = msadam.Adam([w], use_amsgrad=True)
    parts = snapshot(opt)
    assert len(parts) == 4 + 3  # parameter, moment1, moment2, vhat; global_step, beta1/2 powers
    opt((np.full((2, 3), 0.5, np.float32),))
    assert all(not np.array_equal(a, b) for a, b in zip(parts, snapshot(opt), strict=True))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """MindSpore's outcomes now, recorded in a subprocess; skipped where MindSpore doesn't import."""
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("mindspore is not installed")
    out = tmp_path_factory.mktemp("golden") / "exceptions.json"
    run = subprocess.run(
        [sys.executable, str(RECORDER), "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path_factory.getbasetemp(), check=False,
    )
    if run.returncode == NO_MINDSPORE:
        pytest.skip(f"mindspore does not import: {run.stdout.strip()}")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    document: dict[str, Any] = json.loads(out.read_text())
    return document["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_fixture_is_current(case: Case, golden: dict[str, Any], live: dict[str, Any]) -> None:
    recorded, now = golden[case.name], live[case.name]
    assert outcomes_match(recorded, now), f"fixture: {_describe(recorded)}; MindSpore now: {_describe(now)}"
    assert recorded.get("state_unchanged") == now.get("state_unchanged")
