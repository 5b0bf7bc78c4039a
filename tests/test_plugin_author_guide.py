"""docs/backend-authors.md cannot rot: its complete plugin is extracted, installed and run.

Every fenced block whose info string carries ``title="<path>"`` is written to ``<path>`` under
``tmp_path``; the ``pyproject.toml`` among them becomes an installed ``.dist-info`` (METADATA and
``entry_points.txt``), so the plugin is discovered through its entry point exactly as after
``pip install``. The plugin's own parity tests then run in a subprocess, as its author runs them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import msadam
from msadam import backend as backend_module
from msadam import cli, registry

REPO_ROOT = Path(__file__).resolve().parents[1]
GUIDE = REPO_ROOT / "docs" / "backend-authors.md"
PLUGIN = "msadam-toy"
FILE_BLOCK = re.compile(r'^```(?P<lang>\w+) title="(?P<path>[^"]+)"\n(?P<code>.*?)^```$', re.MULTILINE | re.DOTALL)


def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def guide_files() -> dict[str, str]:
    """``{path: content}`` of the guide's titled code blocks."""
    files: dict[str, str] = {}
    for block in FILE_BLOCK.finditer(guide_text()):
        assert block["path"] not in files, f"{block['path']} appears twice in the guide"
        files[block["path"]] = block["code"]
    return files


def console_block(command: str) -> list[str]:
    """The lines the guide shows after ``$ <command>``, up to the next prompt."""
    block = re.search(r"^```console\n(.*?)^```$", guide_text(), re.MULTILINE | re.DOTALL)
    assert block is not None
    lines = block[1].splitlines()
    start = lines.index(f"$ {command}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("$ ")), len(lines))
    return lines[start:end]


def install_dist_info(project_dir: Path) -> None:
    """What ``pip install`` leaves for discovery: ``<name>-<version>.dist-info`` from ``pyproject.toml``."""
    project = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = project_dir / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    sections = "".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
        for group, points in project["entry-points"].items()
    )
    (info / "entry_points.txt").write_text(sections, encoding="utf-8")


@pytest.fixture
def toy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The guide's plugin, written out and "installed" on ``sys.path``; the registry rediscovers."""
    for path, content in guide_files().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    project_dir = tmp_path / PLUGIN
    install_dist_info(project_dir)
    monkeypatch.delenv(registry.ENV_BACKEND, raising=False)
    monkeypatch.delenv(registry.ENV_CONFIG, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(project_dir)
    registry.reset()
    yield project_dir
    registry.reset()
    for name in [name for name in sys.modules if name.partition(".")[0] == "msadam_toy"]:
        del sys.modules[name]


def test_the_guide_holds_a_whole_plugin() -> None:
    assert sorted(guide_files()) == [
        f"{PLUGIN}/msadam_toy/__init__.py",
        f"{PLUGIN}/msadam_toy/arrays.py",
        f"{PLUGIN}/msadam_toy/backend.py",
        f"{PLUGIN}/pyproject.toml",
        f"{PLUGIN}/tests/test_toy_parity.py",
    ]


def protocol_members() -> list[str]:
    methods = [name for name, value in vars(backend_module.Backend).items() if callable(value)]
    return sorted({*backend_module.Backend.__annotations__, *(m for m in methods if not m.startswith("_"))})


@pytest.mark.parametrize("member", protocol_members())
def test_every_protocol_member_has_a_section(member: str) -> None:
    assert re.search(rf"^### `{member}(\(.*\))?`$", guide_text(), re.MULTILINE), f"no '### `{member}`' section"


def table_keys() -> set[str]:
    """Every name written in backticks in the first cell of a markdown table row."""
    rows = re.findall(r"^\| ([^|]*) \|", guide_text(), re.MULTILINE)
    return {name for cell in rows for name in re.findall(r"`(\w+)`", cell)}


@pytest.mark.parametrize(
    ("dataclass", "field"),
    [
        (cls.__name__, field.name)
        for cls in (backend_module.StepHyper, backend_module.SparseGrad, backend_module.BackendSpec)
        for field in dataclasses.fields(cls)
    ],
)
def test_every_field_is_in_a_table(dataclass: str, field: str) -> None:
    assert field in table_keys(), f"{dataclass}.{field} is not described in the guide"


def test_the_plugin_is_discovered_and_imports_its_framework_only_when_used(toy_dir: Path) -> None:
    registry.plugin_manager()
    assert "msadam_toy" in sys.modules
    assert "msadam_toy.backend" not in sys.modules
    assert "toy" in registry.available_backends()
    assert "msadam_toy.backend" in sys.modules
    status = {s.name: s for s in registry.backend_status()}["toy"]
    assert (status.ok, status.version, status.devices) == (True, "0.1.0", ("cpu",))
    assert (status.plugin, status.distribution) == ("toy (msadam_toy)", PLUGIN)


def test_a_native_array_takes_the_plugins_backend(toy_dir: Path) -> None:
    from msadam_toy.arrays import ToyArray

    param = msadam.Parameter(ToyArray(np.arange(3, dtype=np.float32)), name="w")
    assert param.backend == "toy"
    np.testing.assert_array_equal(param.asnumpy(), [0.0, 1.0, 2.0])


def test_a_missing_framework_is_reported_with_the_reason(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msadam_toy.arrays", None)  # the "framework" is not installed
    assert registry.available_backends()[0] == "numpy"
    assert "toy" not in registry.available_backends()
    status = {s.name: s for s in registry.backend_status()}["toy"]
    assert not status.ok
    assert "ModuleNotFoundError: import of msadam_toy.arrays halted" in (status.error or "")
    with pytest.raises(ValueError, match="'toy' is installed but cannot be used: ModuleNotFoundError"):
        msadam.set_backend("toy")


def test_the_console_example_matches_msadam_backends(toy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def normalized(lines: list[str]) -> list[list[str]]:
        kept: tuple[list[str], ...] = ([], ["BACKEND"], ["numpy"], ["toy"], ["selected:"])
        rows = [line.split() for line in lines if line.split()[:1] in kept]
        for row in rows:
            if row[:1] == ["numpy"]:
                row[2] = "<numpy version>"
        return rows

    assert cli.main(["backends"]) == 0
    assert normalized(capsys.readouterr().out.splitlines()) == normalized(console_block("msadam backends"))


def test_the_plugins_own_parity_tests_pass(toy_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSADAM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(toy_dir), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider", "--rootdir", str(toy_dir),
         str(toy_dir / "tests")],
        capture_output=True, text=True, cwd=toy_dir, env=env, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^18 passed", done.stdout, re.MULTILINE), done.stdout


LINTERS = {
    "ruff": ["check", "--isolated", "--line-length", "110", "--target-version", "py311",
             "--select", "E,F,W,I,B,UP,SIM,RUF", "."],
    "mypy": ["--strict", "--ignore-missing-imports", "--no-incremental", "msadam_toy", "tests"],
}


@pytest.mark.parametrize("linter", sorted(LINTERS))
def test_the_plugin_is_lint_clean(toy_dir: Path, linter: str) -> None:
    if importlib.util.find_spec(linter) is None:
        pytest.skip(f"{linter} is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_dir), str(REPO_ROOT)])}
    done = subprocess.run([sys.executable, "-m", linter, *LINTERS[linter]], capture_output=True, text=True,
                          cwd=toy_dir, env=env, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
