"""The ``msadam`` command line, driven as a user drives it: ``python -m msadam ...`` in a subprocess."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import msadam
from msadam import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_msadam(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m msadam *args`` in ``cwd``, without any msadam setting from the caller's environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MSADAM_")}
    base["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "msadam", *args],
        capture_output=True, text=True, cwd=cwd, env={**base, **env}, check=False, timeout=300,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_backends_table_lists_numpy_first_with_its_version(workdir: Path) -> None:
    done = run_msadam("backends", cwd=workdir)
    assert (done.returncode, done.stderr) == (0, "")
    header, first, *_ = done.stdout.splitlines()
    assert header.split()[:4] == ["BACKEND", "STATUS", "VERSION", "DEVICES"]
    assert first.split()[:4] == ["numpy", "OK", np.__version__, "cpu"]
    assert "msadam" in first
    assert done.stdout.splitlines()[-1] == "selected: numpy (from default)"


def test_backends_json_parses(workdir: Path) -> None:
    done = run_msadam("backends", "--json", cwd=workdir)
    assert (done.returncode, done.stderr) == (0, "")
    document = json.loads(done.stdout)
    assert document["msadam"] == msadam.__version__
    assert document["selected"] == {"name": "numpy", "source": "default", "ok": True, "error": None}
    numpy_row = document["backends"][0]
    assert numpy_row == {
        "name": "numpy",
        "ok": True,
        "version": np.__version__,
        "devices": ["cpu"],
        "plugin": "msadam.backends.numpy_backend",
        "distribution": "msadam",
        "error": None,
    }
    assert all(set(row) == set(numpy_row) for row in document["backends"])


@pytest.mark.parametrize(
    ("env", "config", "selected"),
    [
        ({"MSADAM_BACKEND": "numpy"}, None, "selected: numpy (from $MSADAM_BACKEND)"),
        ({}, 'backend = "numpy"', "selected: numpy (from {cwd}/msadam.toml)"),
    ],
    ids=["env", "config"],
)
def test_backends_reports_where_the_choice_comes_from(
    workdir: Path, env: dict[str, str], config: str | None, selected: str
) -> None:
    if config is not None:
        (workdir / "msadam.toml").write_text(f"[tool.msadam]\n{config}\n", encoding="utf-8")
    done = run_msadam("backends", cwd=workdir, **env)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == selected.format(cwd=workdir)


@pytest.mark.parametrize(("strict", "code"), [([], 0), (["--strict"], 1)])
def test_an_unusable_selection_is_reported_and_fails_only_strict(workdir: Path, strict: list[str], code: int) -> None:
    done = run_msadam("backends", *strict, cwd=workdir, MSADAM_BACKEND="nope")
    assert (done.returncode, done.stderr) == (code, "")
    assert "selected: nope (from $MSADAM_BACKEND) -- NOT USABLE: Unknown msadam backend 'nope'" in done.stdout


def test_version(workdir: Path) -> None:
    done = run_msadam("--version", cwd=workdir)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"msadam {msadam.__version__}\n", "")


@pytest.mark.parametrize(("args", "mentions"), [([], "backends"), (["backends"], "--strict")], ids=["top", "backends"])
def test_help_exits_zero(workdir: Path, args: list[str], mentions: str) -> None:
    done = run_msadam(*args, "--help", cwd=workdir)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: msadam")
    assert mentions in done.stdout


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        ([], {}, "the following arguments are required: COMMAND"),
        (["frobnicate"], {}, "invalid choice: 'frobnicate'"),
        (["--frobnicate", "backends"], {}, "unrecognized arguments: --frobnicate"),
        (["backends", "--frobnicate"], {}, "unrecognized arguments: --frobnicate"),
        (["backends", "extra"], {}, "unrecognized arguments: extra"),
        (["backends"], {"msadam.toml": "[tool.msadam\n"}, "Cannot read msadam configuration"),
        (["backends"], {"msadam.toml": "[tool.msadam]\nbackend = 1\n"}, "backend must be a non-empty string"),
    ],
    ids=["no-command", "bad-command", "bad-flag", "bad-subcommand-flag", "extra-argument", "bad-toml", "bad-backend"],
)
def test_bad_usage_or_input_is_one_line_and_exit_2(
    workdir: Path, args: list[str], files: dict[str, str], message: str
) -> None:
    for name, content in files.items():
        (workdir / name).write_text(content, encoding="utf-8")
    done = run_msadam(*args, cwd=workdir)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("msadam: error: ")
    assert message in done.stderr


def test_missing_config_file_is_bad_input(workdir: Path) -> None:
    done = run_msadam("backends", cwd=workdir, MSADAM_CONFIG=str(workdir / "missing.toml"))
    assert done.returncode == 2
    assert done.stderr == f"msadam: error: $MSADAM_CONFIG names '{workdir / 'missing.toml'}', which is not a file.\n"


def test_console_script_points_at_main() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, function = pyproject["project"]["scripts"]["msadam"].partition(":")
    assert (module, function) == ("msadam.cli", "main")
    assert getattr(sys.modules[module], function) is cli.main


# --- registering more subcommands (in process) ------------------------------------------------------


@pytest.fixture
def echo_command(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[argparse.Namespace]]:
    """A temporary ``msadam echo --times N`` subcommand that records its arguments."""
    seen: list[argparse.Namespace] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, required=True)

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        if args.times < 0:
            raise cli.CLIError("--times must be >= 0")
        return 0

    monkeypatch.setattr(cli, "SUBCOMMANDS", dict(cli.SUBCOMMANDS))
    cli.register_subcommand("echo", "repeat nothing", add_arguments, run)
    yield seen


def test_a_registered_subcommand_is_dispatched(echo_command: list[argparse.Namespace]) -> None:
    assert cli.main(["echo", "--times", "3"]) == 0
    assert [args.times for args in echo_command] == [3]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["echo", "--times", "-1"], "msadam: error: --times must be >= 0\n"),
        (["echo", "--times", "x"], "msadam: error: argument --times: invalid int value: 'x' (see 'msadam --help')\n"),
    ],
)
def test_a_subcommand_reports_bad_input_as_usage_errors(
    echo_command: list[argparse.Namespace], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr() == ("", message)


def test_a_subcommand_name_is_registered_once(echo_command: list[argparse.Namespace]) -> None:
    with pytest.raises(ValueError, match="'echo' is already registered"):
        cli.register_subcommand("echo", "again", lambda parser: None, lambda args: 0)
