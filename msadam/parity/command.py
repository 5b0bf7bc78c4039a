"""``msadam parity``: one scenario on every installed backend, side by side, against MindSpore.

The scenario is a built-in one (``msadam parity plain``; ``--list``; ``default`` without
arguments), a random mix of every feature (``--seed N``), or a JSON file (``--scenario FILE``).
The reference is real MindSpore when it imports (the whole scenario in a subprocess, see
:mod:`msadam.parity.oracle`), else msadam's NumPy reference backend (``--reference`` chooses), or a
trajectory recorded earlier (``--replay run.npz``, no MindSpore needed; ``--record run.npz`` writes
one). Exit status: 0 when every backend is within ``--tol`` of the reference at every step, 1 when
one is not (or fails to run the scenario), 2 for bad input, reported as one line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from msadam.parity.compare import compare
from msadam.parity.errors import InputError, OracleError, OracleUnavailable
from msadam.parity.oracle import OracleResult, OracleRun, mindspore_installed
from msadam.parity.report import BackendResult, Progress, Reference, Report, check_plot_available, median_or_none
from msadam.parity.run import Trajectory, inputs_digest, run_msadam
from msadam.parity.scenario_file import MAX_STEPS, load_scenario_file, validate_scenario
from msadam.parity.scenarios import (
    DEFAULT_SCENARIO,
    Scenario,
    describe,
    get_scenario,
    named_scenarios,
    random_scenario,
)
from msadam.parity.trajectory_file import Record, environment_versions, load_record, save_record

__all__ = ["DEFAULT_TOLERANCE", "HELP", "add_arguments", "run"]

HELP = "run one scenario on every installed backend, side by side, against MindSpore (or a record)"
DEFAULT_TOLERANCE = 1e-6
REFERENCES = ("auto", "mindspore", "numpy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``msadam parity`` options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' lines
    parser.epilog = """examples:
  msadam parity                              the default scenario, every installed backend
  msadam parity --list                       the built-in scenarios
  msadam parity sparse-CPU-lazy --json       one of them, machine-readable
  msadam parity --seed 7 --plot errors.png   a random mix; relative error against step
  msadam parity --scenario mine.json --backends torch,jax
  msadam parity --record run.npz             then, on a machine without MindSpore:
  msadam parity --replay run.npz

exit status: 0 every backend within --tol at every step, 1 one is not, 2 bad input"""
    chosen = parser.add_argument_group("scenario (one of)")
    chosen.add_argument("name", nargs="?", metavar="SCENARIO",
                        help=f"a built-in scenario (see --list; default: {DEFAULT_SCENARIO!r})")
    chosen.add_argument("--seed", type=int, metavar="N", help="a random scenario mixing every feature, from seed N")
    chosen.add_argument("--scenario", dest="scenario_file", metavar="FILE",
                        help="a scenario in a JSON file (--print-scenario shows the format)")
    parser.add_argument("--steps", type=int, metavar="N", help="run N steps instead of the scenario's own count")
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    parser.add_argument("--print-scenario", action="store_true",
                        help="print the chosen scenario as JSON (a starting point for --scenario) and exit")
    parser.add_argument("--backends", metavar="A,B", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--reference", choices=REFERENCES, default="auto",
                        help="what to compare with: MindSpore when it imports, else NumPy (auto, the default); "
                             "MindSpore or fail; msadam's NumPy backend")
    parser.add_argument("--tol", type=float, default=DEFAULT_TOLERANCE, metavar="REL",
                        help=f"largest relative error allowed at any step (default: {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--plot", metavar="PNG", help="write relative error against step, one line per backend "
                                                      "(needs matplotlib)")
    parser.add_argument("--record", metavar="NPZ", help="write the reference trajectory, scenario and versions")
    parser.add_argument("--replay", metavar="NPZ",
                        help="compare with a trajectory written by --record (no MindSpore needed)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: only when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    """``msadam parity``; bad input becomes :class:`msadam.cli.CLIError` (exit 2)."""
    from msadam.cli import CLIError  # not at import time: msadam.cli imports this module

    try:
        return _run(args)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    except OracleError as exc:  # MindSpore imported but refused or failed the scenario
        raise CLIError(f"{exc} (--reference numpy compares with msadam's NumPy backend instead)") from None


# ----------------------------------------------------------------------------- arguments


def _list(as_json: bool) -> int:
    scenarios = named_scenarios()
    if as_json:
        json.dump([{"name": s["name"], "description": describe(s)} for s in scenarios], sys.stdout, indent=2)
        print()
        return 0
    width = max(len(s["name"]) for s in scenarios)
    for s in scenarios:
        print(f"{s['name']:<{width}}  {describe(s)}")
    print("\nor: --seed N (a random mix), --scenario FILE (JSON; see --print-scenario)")
    return 0


def _backends(requested: str | None) -> list[str]:
    """The backends to run: every installed one, or those ``--backends`` names (only those are loaded)."""
    import msadam
    from msadam import registry

    if requested is None:
        return msadam.available_backends()
    names = list(dict.fromkeys(n.strip() for n in requested.split(",") if n.strip()))
    if not names:
        raise InputError("--backends names no backend: give comma-separated names ('msadam backends' lists them)")
    for name in names:
        try:
            registry.load_backend(name)
        except ValueError as exc:  # the registry's message names the installed ones, or why it fails
            raise InputError(f"--backends: {' '.join(str(exc).split())}") from None
    return names


def _scenario(args: argparse.Namespace, record: Record | None) -> Scenario:
    given = [flag for flag, value in (("SCENARIO", args.name), ("--seed", args.seed),
                                      ("--scenario", args.scenario_file)) if value is not None]
    if len(given) > 1:
        raise InputError(f"choose one scenario: {' and '.join(given)} were both given")
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise InputError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}")
    if args.seed is not None:
        if args.seed < 0:
            raise InputError(f"--seed must be >= 0, got {args.seed}")
        from msadam.parity.scenarios import DEFAULT_STEPS

        return random_scenario(args.seed, steps=args.steps or DEFAULT_STEPS)
    if args.scenario_file is not None:
        scen = load_scenario_file(args.scenario_file)
    elif args.name is not None or record is None:
        scen = get_scenario(args.name or DEFAULT_SCENARIO)
    else:
        scen = record.scenario
    if args.steps is not None and args.steps != scen["steps"]:
        scen = validate_scenario({**scen, "steps": args.steps}, source=f"scenario {scen['name']!r} with --steps")
    return scen


def _check_against_record(scen: Scenario, record: Record, path: str) -> None:
    """A scenario given beside ``--replay`` must be the recorded one (its name aside)."""
    recorded = record.scenario
    differ = []
    for key in sorted(set(scen) | set(recorded)):
        mine, theirs = scen.get(key), recorded.get(key)
        if key == "name" or mine == theirs:
            continue
        simple = all(isinstance(v, int | float | str | bool) for v in (mine, theirs))
        differ.append(f"{key} ({theirs!r} recorded, {mine!r} given)" if simple else key)
    if differ:
        raise InputError(f"{path} was recorded with scenario {recorded['name']!r}, which differs from "
                         f"{scen['name']!r} in: {', '.join(differ)}")


# ----------------------------------------------------------------------------- running


def _run_backend(scen: Scenario, name: str, progress: Progress, base: int,
                 oracle: OracleRun | None) -> tuple[Trajectory | None, BackendResult]:
    from msadam import registry

    version = registry.load_backend(name).version()
    timings: list[float] = []

    def on_step(i: int) -> None:
        progress.update(base + i + (oracle.steps_done if oracle else 0), f"{name} step {i}/{scen['steps']}")

    try:
        trajectory = run_msadam(scen, name, timings, on_step)
    except Exception as exc:  # a backend that cannot run the scenario is a failed check, not a crash
        return None, BackendResult(name, version, None, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    return trajectory, BackendResult(name, version, None, median_or_none(timings))


def _wait(oracle: OracleRun, progress: Progress, base: int, steps: int) -> None:
    while not oracle.done():
        done = oracle.steps_done
        progress.update(base + done, f"mindspore step {done}/{steps}" if done else "mindspore starting")
        time.sleep(0.05)


def _numpy_reference(scen: Scenario, runs: dict[str, tuple[Trajectory | None, BackendResult]],
                     note: str | None) -> tuple[Trajectory, Reference]:
    import numpy as np

    if "numpy" in runs and runs["numpy"][0] is not None:
        trajectory, result = runs["numpy"]
        assert trajectory is not None
        return trajectory, Reference("numpy", result.version, "live", result.time_per_step, note=note, backend="numpy")
    timings: list[float] = []
    trajectory = run_msadam(scen, "numpy", timings)
    return trajectory, Reference("numpy", np.__version__, "live", median_or_none(timings), note=note, backend="numpy")


def _run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args.json)
    if not (args.tol >= 0 and math.isfinite(args.tol)):
        raise InputError(f"--tol must be a finite number >= 0, got {args.tol:g}")
    if args.record is not None and args.replay is not None:
        raise InputError("--record and --replay cannot be used together (replay a record, or make one)")
    if args.replay is not None and args.reference != "auto":
        raise InputError("--reference cannot be used with --replay: the record is the reference")
    if args.plot is not None:
        check_plot_available()
    record = load_record(args.replay) if args.replay is not None else None
    scen = _scenario(args, record)
    if record is not None:
        _check_against_record(scen, record, args.replay)
    if args.print_scenario:
        print(json.dumps(scen, indent=2))
        return 0
    names = _backends(args.backends)

    use_oracle = record is None and args.reference != "numpy"
    note = None
    if use_oracle and not mindspore_installed():
        if args.reference == "mindspore":
            raise InputError("--reference mindspore: MindSpore is not installed (pip install mindspore==2.10.0)")
        use_oracle, note = False, "MindSpore is not installed; compared with the NumPy reference backend instead"
    steps = scen["steps"]
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = Progress(steps * (len(names) + use_oracle), bool(show))
    oracle = OracleRun(scen) if use_oracle else None
    result: OracleResult | None = None
    try:
        runs: dict[str, tuple[Trajectory | None, BackendResult]] = {}
        for i, name in enumerate(names):
            runs[name] = _run_backend(scen, name, progress, i * steps, oracle)
        if oracle is not None:
            _wait(oracle, progress, len(names) * steps, steps)
            try:
                result = oracle.result()
            except OracleUnavailable as exc:
                if args.reference == "mindspore":
                    raise InputError(f"--reference mindspore: {exc}") from None
                note = f"{exc}; compared with the NumPy reference backend instead"
    finally:
        progress.close()
        if oracle is not None:
            oracle.close()

    if record is not None:
        expected = record.trajectory
        reference = Reference(record.reference, record.reference_version, "record", record.time_per_step,
                              record=args.replay, recorded_with=record.versions)
    elif result is not None:
        expected = result.trajectory
        reference = Reference("mindspore", result.version, "live", median_or_none(result.step_seconds))
    else:
        expected, reference = _numpy_reference(scen, runs, note)

    results = []
    for name, (trajectory, backend_result) in runs.items():
        if reference.backend == name:
            continue  # the reference itself: its row is the reference row
        mismatch = compare(expected, trajectory) if trajectory is not None else None
        results.append(BackendResult(name, backend_result.version, mismatch, backend_result.time_per_step,
                                     backend_result.error))
    versions = environment_versions()
    if reference.source == "live":  # a record's versions are the recording machine's: in its own entry
        versions[reference.name] = reference.version
    report = Report(scen, args.tol, reference, results, versions)

    if args.record is not None:
        _save(args.record, Record(scen, expected, reference.name, reference.version, inputs_digest(scen),
                                  reference.time_per_step, versions))
    if args.plot is not None:
        from msadam.parity.report import write_plot

        write_plot(report, args.plot)
    if args.json:
        report.print_json(sys.stdout)
    else:
        report.print_table(sys.stdout)
        for path, what in ((args.record, "reference trajectory"), (args.plot, "plot")):
            if path is not None:
                print(f"{what} written to {path}")
    return 0 if report.ok else 1


def _save(path: str, record: Record) -> None:
    try:
        save_record(path, record)
    except OSError as exc:
        raise InputError(f"cannot write the record {path!r}: {exc.strerror or exc}") from None
