"""``msadam parity``, driven as a user drives it: ``python -m msadam parity ...`` with real files.

MindSpore is the reference whenever it imports here; to see what a machine without it sees, a
``mindspore`` package that raises ``ImportError`` is put first on ``PYTHONPATH`` (the oracle
subprocess inherits it, exactly as it would inherit a broken install). A backend that drifts from
MindSpore's numbers is a real plugin distribution (``.dist-info`` + entry point) in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import msadam
from msadam.parity import get_scenario, inputs_digest, run_msadam
from msadam.parity.trajectory_file import Record, environment_versions, save_record

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALLED = msadam.available_backends()
OTHER = next((name for name in INSTALLED if name != "numpy"), None)  # a framework backend, if any

DRIFTY_PLUGIN = '''
import numpy as np
from msadam.backend import BackendSpec
from msadam.backends.numpy_backend import NumpyBackend
from msadam.hookspecs import hookimpl


class DriftyBackend(NumpyBackend):
    """The NumPy reference, except that each dense step leaves every parameter a few ulp too large."""

    name = "drifty"

    def version(self):
        return "0.0-drifty"

    def dense_step(self, bucket, grads, hyper):
        super().dense_step(bucket, grads, hyper)
        for w in bucket.params:
            w *= np.float32(1 + 2.5e-7)


@hookimpl
def msadam_backends():
    return [BackendSpec("drifty", DriftyBackend)]
'''


def msadam_cli(*args: str, cwd: Path, path: tuple[Path, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m msadam *args`` in ``cwd`` with ``path`` first on ``PYTHONPATH``, no ``MSADAM_*`` settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MSADAM_")}
    base["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "msadam", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, **env}, check=False, timeout=600)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by first cell (``BACKEND``), split on runs of two or more spaces."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("BACKEND"))
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def mindspore_imports() -> bool:
    """Whether MindSpore imports here (then it is the reference); probed as the CLI's oracle does."""
    probe = subprocess.run([sys.executable, "-c", "import mindspore"], capture_output=True, timeout=300, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def no_mindspore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``mindspore`` package raises ImportError: MindSpore hidden when put on the path."""
    root = tmp_path_factory.mktemp("no-mindspore")
    (root / "mindspore").mkdir()
    (root / "mindspore" / "__init__.py").write_text('raise ImportError("hidden by the test")\n', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def drifty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed third-party backend plugin, ``drifty``, a few ulp off per step."""
    root = tmp_path_factory.mktemp("site")
    (root / "drifty_plugin.py").write_text(DRIFTY_PLUGIN, encoding="utf-8")
    info = root / "msadam_drifty-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: msadam-drifty\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[msadam.backends]\ndrifty = drifty_plugin\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid record of ``plain`` (12 steps) with the NumPy backend as reference."""
    scen = {**get_scenario("plain"), "steps": 12}
    path = tmp_path_factory.mktemp("records") / "plain.npz"
    save_record(path, Record(scen, run_msadam(scen), "numpy", np.__version__, inputs_digest(scen),
                             versions=environment_versions()))
    return path


# --- running ----------------------------------------------------------------------------------------


def test_default_run_shows_every_installed_backend_against_mindspore(tmp_path: Path, mindspore_imports: bool) -> None:
    start = time.monotonic()
    done = msadam_cli("parity", cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "msadam parity [" not in done.stderr  # no bar: not a terminal
    first, second = done.stdout.splitlines()[:2]
    assert first.startswith("scenario 'default': 5 parameters in 2 groups, 100 steps")
    rows = table_rows(done.stdout)
    reference = "mindspore.nn.Adam (reference)" if mindspore_imports else "numpy (reference)"
    assert list(rows)[:2] == ["BACKEND", reference]
    assert second.startswith("reference: MindSpore 2.10" if mindspore_imports else "reference: the NumPy")
    shown = set(rows) - {"BACKEND", reference}
    assert shown == set(INSTALLED) - ({"numpy"} if not mindspore_imports else set())
    for name in shown:
        _, version, abs_err, rel_err, first_over, per_step, *_ = rows[name]
        assert version == msadam.registry.load_backend(name).version()
        assert float(rel_err) <= 1e-6 and float(abs_err) >= 0 and first_over == "-"
        assert per_step.endswith(("us", "ms", " s"))
    assert done.stdout.rstrip().splitlines()[-1].startswith("OK: ")
    assert elapsed < 120, f"the default run took {elapsed:.0f} s"


def test_named_scenario_json_is_complete(tmp_path: Path, mindspore_imports: bool) -> None:
    backends = ",".join(filter(None, ["numpy", OTHER]))
    done = msadam_cli("parity", "sparse-GPU-lazy-nounique", "--backends", backends, "--json", cwd=tmp_path)
    assert (done.returncode, done.stderr.count("Traceback")) == (0, 0), done.stderr
    document = json.loads(done.stdout)
    assert document["scenario"] == get_scenario("sparse-GPU-lazy-nounique")
    assert "unique=False" in document["description"]
    assert document["tolerance"] == 1e-6 and document["ok"] is True
    assert document["versions"]["msadam"] == msadam.__version__
    assert document["versions"]["numpy"] == np.__version__
    reference = document["reference"]
    assert reference["source"] == "live" and reference["time_per_step_s"] > 0
    assert reference["name"] == ("mindspore" if mindspore_imports else "numpy")
    results = {r["backend"]: r for r in document["results"]}
    assert set(results) == set(backends.split(",")) - ({"numpy"} if not mindspore_imports else set())
    for result in results.values():
        assert set(result) >= {"version", "worst_abs_error", "worst_rel_error", "first_step_over_tolerance",
                               "time_per_step_s", "rel_error_per_step", "ok"}
        assert result["ok"] and result["worst_rel_error"] <= 1e-6 and result["first_step_over_tolerance"] is None
        assert len(result["rel_error_per_step"]) == 50


def test_a_seed_is_a_stable_random_mix(tmp_path: Path) -> None:
    shown = [msadam_cli("parity", "--seed", "11", "--steps", "8", "--print-scenario", cwd=tmp_path) for _ in range(2)]
    assert shown[0].returncode == 0 and shown[0].stdout == shown[1].stdout
    assert json.loads(shown[0].stdout)["name"] == "random-0011"
    done = msadam_cli("parity", "--seed", "11", "--steps", "8", "--backends", "numpy", "--reference", "numpy",
                      "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["scenario"]["name"] == "random-0011" and document["scenario"]["steps"] == 8
    assert document["reference"] == {**document["reference"], "name": "numpy", "backend": "numpy"}


def test_a_users_scenario_file_runs_on_the_chosen_backends(tmp_path: Path, mindspore_imports: bool) -> None:
    (tmp_path / "mine.json").write_text(json.dumps({
        "params": [{"name": "dense.weight", "shape": [4, 16]}, {"name": "dense.bias", "shape": [4]},
                   {"name": "emb", "shape": [10, 3]}],
        "learning_rate": {"kind": "WarmUpLR", "args": {"learning_rate": 0.05, "warmup_steps": 5}},
        "weight_decay": 0.01, "use_nesterov": True, "steps": 15,
        "groups": [{"params": ["dense.weight"], "grad_centralization": True}, {"params": ["dense.bias", "emb"]}],
        "sparse": {"params": ["emb"], "rows": 4},
    }), encoding="utf-8")
    backends = ",".join(filter(None, ["numpy", OTHER]))
    done = msadam_cli("parity", "--scenario", "mine.json", "--backends", backends, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    scen = document["scenario"]
    assert scen["name"] == "mine" and scen["steps"] == 15 and scen["beta1"] == 0.9  # defaults filled in
    assert scen["params"][1] == {"name": "dense.bias", "shape": [4], "init_seed": 1, "dtype": "float32",
                                 "grad_scale": 1.0}
    assert scen["sparse"] == {"params": ["emb"], "rows": 4, "repeat": True, "cover": False}
    assert document["reference"]["name"] == ("mindspore" if mindspore_imports else "numpy")
    assert all(r["ok"] for r in document["results"])


def test_list_and_print_scenario_round_trip(tmp_path: Path) -> None:
    listed = msadam_cli("parity", "--list", cwd=tmp_path)
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines() if line and not line.startswith("or:")]
    assert names[:2] == ["default", "plain"] and "sparse-Ascend-dense-nesterov" in names
    as_json = json.loads(msadam_cli("parity", "--list", "--json", cwd=tmp_path).stdout)
    assert [entry["name"] for entry in as_json] == names
    printed = msadam_cli("parity", "groups-dynamic", "--print-scenario", cwd=tmp_path)
    (tmp_path / "copy.json").write_text(printed.stdout, encoding="utf-8")
    done = msadam_cli("parity", "--scenario", "copy.json", "--backends", "numpy", "--reference", "numpy",
                      "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scenario"] == get_scenario("groups-dynamic")


def test_record_then_replay_where_mindspore_is_missing(tmp_path: Path, no_mindspore: Path,
                                                      mindspore_imports: bool) -> None:
    recorded = msadam_cli("parity", "lazy-dense-nesterov", "--steps", "20", "--backends", "numpy",
                          "--record", "run.npz", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.rstrip().endswith("reference trajectory written to run.npz")
    with np.load(tmp_path / "run.npz", allow_pickle=False) as data:  # plain arrays and JSON text, no pickle
        metadata = json.loads(str(data["metadata"]))
        assert data["traj/param/w"].shape == (20, 3, 4) and data["traj/param/w"].dtype == np.float32
    assert metadata["scenario"] == {**get_scenario("lazy-dense-nesterov"), "steps": 20}
    assert metadata["reference"]["name"] == ("mindspore" if mindspore_imports else "numpy")
    assert metadata["versions"]["msadam"] == msadam.__version__

    backends = ",".join(filter(None, ["numpy", OTHER]))
    replayed = msadam_cli("parity", "--replay", "run.npz", "--backends", backends, "--json", cwd=tmp_path,
                          path=(no_mindspore,))
    assert replayed.returncode == 0, replayed.stderr
    document = json.loads(replayed.stdout)
    assert document["reference"]["source"] == "record" and document["reference"]["record"] == "run.npz"
    assert document["reference"]["name"] == metadata["reference"]["name"]
    assert document["reference"]["recorded_with"] == metadata["versions"]
    assert {r["backend"] for r in document["results"]} == set(backends.split(","))
    assert all(r["ok"] for r in document["results"])

    same = msadam_cli("parity", "lazy-dense-nesterov", "--steps", "20", "--replay", "run.npz", "--backends",
                      "numpy", cwd=tmp_path, path=(no_mindspore,))
    assert same.returncode == 0, same.stderr
    assert "recorded in run.npz" in same.stdout and "(recorded)" in same.stdout


def test_without_mindspore_the_numpy_reference_is_used_and_said(tmp_path: Path, no_mindspore: Path) -> None:
    done = msadam_cli("parity", "plain", "--backends", "numpy", cwd=tmp_path, path=(no_mindspore,))
    assert done.returncode == 0, done.stderr
    assert "note: MindSpore does not import (ImportError: hidden by the test); compared with the NumPy" in done.stdout
    forced = msadam_cli("parity", "plain", "--backends", "numpy", "--reference", "mindspore", cwd=tmp_path,
                        path=(no_mindspore,))
    assert (forced.returncode, forced.stdout) == (2, "")
    assert forced.stderr == ("msadam: error: --reference mindspore: MindSpore does not import "
                             "(ImportError: hidden by the test)\n")


def test_a_scenario_mindspore_cannot_run_is_reported_in_one_line(tmp_path: Path, mindspore_imports: bool) -> None:
    if not mindspore_imports:
        pytest.skip("MindSpore does not import here")
    (tmp_path / "gc-sparse.json").write_text(json.dumps({  # MindSpore's centralization takes no RowTensor
        "params": [{"name": "emb", "shape": [10, 16]}], "steps": 3, "sparse": {"params": ["emb"], "rows": 4},
        "groups": [{"params": ["emb"], "grad_centralization": True}]}), encoding="utf-8")
    done = msadam_cli("parity", "--scenario", "gc-sparse.json", "--backends", "numpy", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1), done.stderr
    assert done.stderr.startswith("msadam: error: MindSpore could not run scenario 'gc-sparse': TypeError: ")
    assert done.stderr.endswith("(--reference numpy compares with msadam's NumPy backend instead)\n")


def test_the_command_line_imports_no_framework(tmp_path: Path) -> None:
    code = ("import sys, msadam.cli, msadam.parity.oracle, msadam.parity.report; "
            "print(sorted({'torch', 'jax', 'tensorflow', 'mindspore', 'matplotlib'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout == "[]\n"


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    done = msadam_cli("parity", "plain", "--steps", "10", "--backends", ",".join(filter(None, ["numpy", OTHER])),
                      "--reference", "numpy", "--plot", "errors.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    png = (tmp_path / "errors.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert done.stdout.rstrip().endswith("plot written to errors.png")


def test_plot_without_matplotlib_is_bad_input_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "hide" / "matplotlib").mkdir(parents=True)
    (tmp_path / "hide" / "matplotlib" / "__init__.py").write_text('raise ImportError("no plots")\n', encoding="utf-8")
    done = msadam_cli("parity", "--plot", "errors.png", cwd=tmp_path, path=(tmp_path / "hide",))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("msadam: error: --plot needs matplotlib, which does not import (no plots)")
    assert not (tmp_path / "errors.png").exists()


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    args = ("parity", "plain", "--steps", "30", "--backends", "numpy", "--reference", "numpy")
    shown = msadam_cli(*args, "--progress", cwd=tmp_path)  # (text mode reads each "\r" as a line end)
    assert shown.returncode == 0 and "msadam parity [#" in shown.stderr and "numpy step 1/30" in shown.stderr
    assert shown.stderr.splitlines()[-1].strip() == ""  # the bar erases itself; the table is on stdout
    assert shown.stdout.startswith("scenario 'plain'")
    assert "msadam parity [" not in msadam_cli(*args, cwd=tmp_path).stderr


# --- failing checks: exit 1 --------------------------------------------------------------------------


def test_a_drifting_backend_exits_1_with_the_first_step_over_tolerance(tmp_path: Path, drifty: Path) -> None:
    done = msadam_cli("parity", "plain", "--steps", "20", "--backends", "numpy,drifty", "--reference", "numpy",
                      "--json", cwd=tmp_path, path=(drifty,))
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["backend"], result["version"], result["ok"]) == ("drifty", "0.0-drifty", False)
    assert 1 < result["first_step_over_tolerance"] <= 20
    assert result["worst_rel_error"] > 1e-6 and result["worst_at"]["array"].startswith("param/")
    table = msadam_cli("parity", "plain", "--steps", "20", "--backends", "drifty", "--reference", "numpy",
                       cwd=tmp_path, path=(drifty,))
    assert table.returncode == 1
    assert table_rows(table.stdout)["drifty"][4] == str(result["first_step_over_tolerance"])
    assert table.stdout.rstrip().splitlines()[-1] == "FAILED: drifty is not within 1e-06 of numpy"
    loose = msadam_cli("parity", "plain", "--steps", "20", "--backends", "drifty", "--reference", "numpy",
                       "--tol", "1e-3", cwd=tmp_path, path=(drifty,))
    assert loose.returncode == 0


def test_a_tampered_record_exits_1_at_the_tampered_step(tmp_path: Path, record_file: Path) -> None:
    with np.load(record_file, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["traj/param/w"] = arrays["traj/param/w"].copy()
    arrays["traj/param/w"][6, 1, 2] += 1e-4 * np.abs(arrays["traj/param/w"][6]).max()  # step 7
    np.savez(tmp_path / "tampered.npz", **arrays)
    done = msadam_cli("parity", "--replay", "tampered.npz", "--backends", "numpy", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["first_step_over_tolerance"] == 7
    assert result["worst_at"] == {"array": "param/w", "step": 7}
    assert result["worst_rel_error"] == pytest.approx(1e-4, rel=0.05)


# --- bad input: exit 2, one line -----------------------------------------------------------------------


def _bad_files(root: Path, record_file: Path) -> None:
    """Every malformed input the parametrized test below refers to."""
    good = record_file.read_bytes()
    (root / "good.npz").write_bytes(good)
    (root / "truncated.npz").write_bytes(good[: len(good) // 2])
    corrupted = bytearray(good)
    corrupted[len(good) // 2 : len(good) // 2 + 64] = bytes(64)
    (root / "corrupted.npz").write_bytes(bytes(corrupted))
    (root / "empty.npz").write_bytes(b"")
    (root / "text.npz").write_text("not an archive\n", encoding="utf-8")
    np.savez(root / "pickled.npz", metadata=np.array([{"format": "msadam-trajectory"}], dtype=object))
    np.savez(root / "nometa.npz", w=np.zeros(3, np.float32))
    np.savez(root / "badmeta.npz", metadata=np.array("{not json"))
    with np.load(record_file, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files if key != "traj/moment2/b"}
    np.savez(root / "missing-array.npz", **arrays)
    files = {
        "bad.json": '{"params": [{"name": "w", "shape": [3, 4]}],',
        "unknown-key.json": '{"params": [{"name": "w", "shape": [3]}], "learning_rat": 0.1}',
        "bad-shape.json": '{"params": [{"name": "w", "shape": [3, 0]}]}',
        "short-lr.json": '{"params": [{"name": "w", "shape": [3]}], "steps": 9, '
                         '"learning_rate": {"kind": "list", "values": [0.1, 0.2]}}',
        "rejected.json": '{"params": [{"name": "w", "shape": [3]}], "beta2": 1.0}',
        "array.json": "[1, 2]",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")


BAD_INPUT = [
    (["nope"], "unknown scenario 'nope'; 'msadam parity --list' shows the"),
    (["--seed", "1", "plain"], "choose one scenario: SCENARIO and --seed were both given"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--tol", "-1"], "--tol must be a finite number >= 0"),
    (["--steps", "0"], "--steps must be between 1 and"),
    (["--seed", "-3"], "--seed must be >= 0"),
    (["--reference", "oracle"], "argument --reference: invalid choice: 'oracle'"),
    (["--backends", "nope"], "--backends: Unknown msadam backend 'nope'. Installed backends: numpy"),
    (["--backends", ","], "--backends names no backend"),
    (["--scenario", "missing.json"], "cannot read scenario file 'missing.json': No such file or directory"),
    (["--scenario", "bad.json"], "scenario file 'bad.json' is not valid JSON: Expecting property name"),
    (["--scenario", "array.json"], "scenario file 'array.json': expected a JSON object, got list"),
    (["--scenario", "unknown-key.json"], "unknown key(s) 'learning_rat'; allowed: name, params"),
    (["--scenario", "bad-shape.json"], "params[0].shape: must be a non-empty list of positive integers"),
    (["--scenario", "short-lr.json"], "learning_rate.values: has 2 values for 9 steps"),
    (["--scenario", "rejected.json"], "mindspore.nn.Adam refuses it: ValueError: For 'Adam', the 'beta2'"),
    (["lr-list", "--steps", "60"], "learning_rate.values: has 50 values for 60 steps"),
    (["--replay", "missing.npz"], "record file 'missing.npz' does not exist"),
    (["--replay", "truncated.npz"], "record file 'truncated.npz' is not a readable .npz archive (truncated or"),
    (["--replay", "corrupted.npz"], "record file 'corrupted.npz' is not a readable .npz archive (truncated or"),
    (["--replay", "empty.npz"], "record file 'empty.npz' is not an .npz archive (empty)"),
    (["--replay", "text.npz"], "record file 'text.npz' is not an .npz archive (it does not start as a zip"),
    (["--replay", "pickled.npz"], "record file 'pickled.npz' is not a readable .npz archive"),
    (["--replay", "nometa.npz"], "record file 'nometa.npz' is not an msadam trajectory record (no metadata)"),
    (["--replay", "badmeta.npz"], "record file 'badmeta.npz': its metadata is not valid JSON"),
    (["--replay", "missing-array.npz"], "its arrays do not fit its scenario (missing ['moment2/b']"),
    (["--replay", "good.npz", "--seed", "2"], "good.npz was recorded with scenario 'plain', which differs from"),
    (["--replay", "good.npz", "--steps", "5"], "differs from 'plain' in: steps (12 recorded, 5 given)"),
    (["--replay", "good.npz", "--record", "x.npz"], "--record and --replay cannot be used together"),
    (["--replay", "good.npz", "--reference", "numpy"], "--reference cannot be used with --replay"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, record_file: Path, args: list[str], message: str) -> None:
    _bad_files(tmp_path, record_file)
    done = msadam_cli("parity", *args, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, ""), done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("msadam: error: "), done.stderr
    assert message in done.stderr
    assert not (tmp_path / "x.npz").exists()


def test_the_good_record_used_above_does_replay(tmp_path: Path, record_file: Path) -> None:
    """The bad-input cases differ from a record that works only in what they break."""
    done = msadam_cli("parity", "--replay", str(record_file), "--backends", "numpy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "OK: 1 backend within 1e-06 of numpy (recorded) at every step" in done.stdout
