"""``msadam bench``: driven as a user drives it (a subprocess) on a tiny grid, plus the baseline hook in-process.

The two full runs (table, JSON) measure every installed backend once each on 1e4 parameters in 1
and 4 tensors; the rest fail fast or run the NumPy backend alone, so the file stays well under a
minute.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import msadam
from msadam import cli, registry
from msadam.benchmarking import BenchBaseline, BenchStep
from msadam.benchmarking.command import _counts
from msadam.benchmarking.runner import split
from msadam.hookspecs import hookimpl

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID = ("--sizes", "1e4", "--tensors", "1,4", "--repeats", "3")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def own_errors(stderr: str) -> list[str]:
    """msadam's own lines on stderr (frameworks may log there whatever msadam does)."""
    return [line for line in stderr.splitlines() if line.startswith("msadam") or "Traceback" in line]


def _environment() -> dict[str, str]:
    """The caller's environment without msadam settings, with this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSADAM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return env


def run_msadam(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m msadam *args`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "msadam", *args], capture_output=True, text=True, cwd=cwd,
                          env=_environment(), check=False, timeout=300)


@pytest.fixture(scope="module")
def installed() -> list[str]:
    return msadam.available_backends()


@pytest.fixture(scope="module")
def announced(installed: list[str]) -> dict[str, list[str]]:
    """The installed plugins' baseline labels per backend, as the hook announces them."""
    from msadam.benchmarking.runner import collect_baselines

    baselines, errors = collect_baselines()
    assert errors == {}
    return {name: [b.label for b in baselines if b.backend == name] for name in installed}


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two runs over every installed backend, side by side: the table, and ``--json`` (with ``--plot``)."""
    workdir = tmp_path_factory.mktemp("bench")
    png = workdir / "scaling.png" if HAS_MATPLOTLIB else None
    commands = {
        "table": ["bench", *GRID],
        "json": ["bench", *GRID, "--json", *(("--plot", str(png)) if png is not None else ())],
    }
    running = {
        key: subprocess.Popen([sys.executable, "-m", "msadam", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=workdir, env=_environment())
        for key, args in commands.items()
    }
    done: dict[str, Any] = {"png": png}
    for key, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        done[key] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done


@pytest.fixture(scope="module")
def table(full_runs: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return full_runs["table"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def json_run(full_runs: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], Path | None]:
    return full_runs["json"], full_runs["png"]


def test_table_has_a_row_per_installed_backend_and_grid_point(
    table: subprocess.CompletedProcess[str], installed: list[str], announced: dict[str, list[str]]
) -> None:
    assert (table.returncode, own_errors(table.stderr)) == (0, []), table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("msadam bench: median of 3 interleaved steps")
    header = lines[1].split()
    assert header[:6] == ["params", "tensors", "backend", "x", "native", "x"]
    rows = [line.split() for line in lines[2:] if (line and line[0] == " ") or line[:1].isdigit()]
    for count in ("1", "4"):
        for name in installed:
            mine = [row for row in rows if row[:3] == ["1e4", count, name]]
            assert len(mine) == max(1, len(announced[name])), (name, count, table.stdout)
            for row, label in zip(mine, announced[name] or ["-"], strict=True):
                line = " ".join(row)
                assert f"| {label} " in line or (label == "-" and "| -" in line)
                x_native, x_bound = row[3], row[4]
                assert float(x_bound) > 0
                if label == "-":
                    assert x_native == "-"
                else:
                    assert float(x_native) > 0, line
    assert not any(line.startswith("FAILED") for line in lines)


def test_json_has_ratios_for_every_backend_and_baseline(
    json_run: tuple[subprocess.CompletedProcess[str], Path | None], installed: list[str],
    announced: dict[str, list[str]],
) -> None:
    done, _ = json_run
    assert (done.returncode, own_errors(done.stderr)) == (0, []), done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["backends"] == installed
    assert document["baselines"] == announced
    assert (document["sizes"], document["tensors"], document["repeats"]) == ([10_000], [1, 4], 3)
    assert document["bytes_per_param"] == 28 and document["failures"] == []
    results = document["results"]
    assert [(r["size"], r["tensors"], r["backend"]) for r in results] == [
        (10_000, t, name) for t in (1, 4) for name in installed
    ]
    for r in results:
        assert r["param_bytes"] == 40_000
        assert r["bandwidth_bytes_per_second"] > 1e8  # an in-place add moves more than 100 MB/s anywhere
        assert r["bound_seconds"] == pytest.approx(28 * 10_000 / r["bandwidth_bytes_per_second"])
        ours = r["msadam"]
        assert ours["error"] is None and ours["seconds"] > 0
        assert ours["x_bound"] == pytest.approx(ours["seconds"] / r["bound_seconds"])
        if document["memory_unavailable"] is None:
            assert ours["memory_ratio"] == pytest.approx(ours["memory_bytes"] / 40_000)
        assert [b["label"] for b in r["baselines"]] == announced[r["backend"]]
        for b in r["baselines"]:
            assert b["error"] is None and b["seconds"] > 0
            assert b["msadam_x_native"] == pytest.approx(ours["seconds"] / b["seconds"])
            assert b["x_bound"] == pytest.approx(b["seconds"] / r["bound_seconds"])


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_writes_a_png(json_run: tuple[subprocess.CompletedProcess[str], Path | None]) -> None:
    done, png = json_run
    assert done.returncode == 0 and png is not None
    assert json.loads(done.stdout)["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(HAS_MATPLOTLIB, reason="matplotlib is installed")
def test_plot_without_matplotlib_is_a_clear_usage_error(tmp_path: Path) -> None:
    done = run_msadam("bench", "--backends", "numpy", "--plot", "scaling.png", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "msadam: error: --plot needs matplotlib, which is not installed (pip install matplotlib)"
    ]
    assert not (tmp_path / "scaling.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sizes", "abc"), "argument --sizes: 'abc' is not a positive whole number"),
        (("--tensors", "1,0"), "argument --tensors: '0' is not a positive whole number"),
        (("--repeats", "-1"), "argument --repeats: '-1' is not a positive integer"),
        (("--backends", "numpy", "--sizes", "10", "--tensors", "80"), "--sizes 10 is smaller than --tensors 80"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = run_msadam("bench", *args, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.splitlines()
    assert line.startswith(f"msadam: error: {message}"), line


def test_an_unknown_backend_exits_2_with_one_line(installed: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--backends", "numpy,nope"]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [
        f"msadam: error: Unknown msadam backend 'nope'. Installed backends: {', '.join(installed)}."
    ])


def test_counts_parse_scientific_and_underscored_numbers() -> None:
    assert _counts("1e5,1_000, 80") == [100_000, 1000, 80]
    assert split(10, 4) == [3, 3, 2, 2]
    assert sum(split(10_000_000, 80)) == 10_000_000


# --- a third-party baseline, registered through the hook in-process ---------------------------------------


class FakeNumpyAdamPlugin:
    """What an outside plugin provides: a baseline for the built-in numpy backend (and one that breaks)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[tuple[int, ...]], str, str]] = []

    def factory(self, params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
        self.calls.append(([p.shape for p in params], str(params[0].dtype), str(grads[0].dtype)))
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]

        def step() -> None:  # plain Adam in float32, in place
            for w, g, m_, v_ in zip(params, grads, m, v, strict=True):
                m_ += np.float32(0.1) * (g - m_)
                v_ += np.float32(0.001) * (g * g - v_)
                w -= np.float32(1e-3) * m_ / (np.sqrt(v_) + np.float32(1e-8))

        return BenchStep(step, sync=lambda: None)

    @hookimpl
    def msadam_bench_baselines(self) -> list[BenchBaseline]:
        def broken(params: list[np.ndarray], grads: list[np.ndarray]) -> BenchStep:
            raise RuntimeError("no such framework here")

        return [BenchBaseline("numpy", "fake numpy Adam", self.factory),
                BenchBaseline("numpy", "broken Adam", broken),
                BenchBaseline("not-a-backend", "ignored Adam", broken)]


class RaisingPlugin:
    @hookimpl
    def msadam_bench_baselines(self) -> list[BenchBaseline]:
        raise ValueError("boom")


@pytest.fixture
def fake_plugins() -> Iterator[FakeNumpyAdamPlugin]:
    registry.reset()
    plugin = FakeNumpyAdamPlugin()
    manager = registry.plugin_manager()
    manager.register(plugin, name="fake-bench-plugin")
    manager.register(RaisingPlugin(), name="raising-bench-plugin")
    yield plugin
    registry.reset()


def test_a_third_party_baseline_appears_next_to_its_backend(
    fake_plugins: FakeNumpyAdamPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["bench", "--backends", "numpy", "--sizes", "1e4", "--tensors", "3", "--repeats", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""  # a broken baseline and a raising hook are failures, reported
    document: dict[str, Any] = json.loads(out)
    assert document["baselines"] == {"numpy": ["fake numpy Adam", "broken Adam"]}
    [result] = document["results"]
    fake, broken = result["baselines"]
    assert fake["label"] == "fake numpy Adam" and fake["error"] is None
    assert fake["msadam_x_native"] == pytest.approx(result["msadam"]["seconds"] / fake["seconds"])
    assert broken["seconds"] is None and broken["error"] == "RuntimeError: no such framework here"
    assert fake_plugins.calls == [([(3334,), (3333,), (3333,)], "float32", "float32")]
    assert any("raising-bench-plugin" in line and "ValueError: boom" in line for line in document["failures"])
    assert any("broken Adam" in line for line in document["failures"])

    code = cli.main(["bench", "--backends", "numpy", "--sizes", "1e4", "--tensors", "1", "--repeats", "2"])
    out, _ = capsys.readouterr()
    assert code == 1
    [row] = [line for line in out.splitlines() if "fake numpy Adam" in line]
    assert row.split()[:3] == ["1e4", "1", "numpy"] and float(row.split()[3]) > 0
    assert "FAILED: plugin raising-bench-plugin: msadam_bench_baselines raised ValueError: boom" in out
