"""Parity with MindSpore: scenarios, running them on any backend, comparing, recording, reporting.

The machinery behind ``msadam parity`` and the test suite's parity tests:

* ``msadam.parity.scenarios`` — the scenario model, the named scenarios, random mixes;
* ``msadam.parity.scenario_file`` — a user's scenario file, checked with one-line errors;
* ``msadam.parity.run`` — gradient streams and a scenario's trajectory on an msadam backend;
* ``msadam.parity.compare`` — worst absolute/relative error and the first step over tolerance;
* ``msadam.parity.trajectory_file`` — ``.npz`` records of a reference trajectory;
* ``msadam.parity.oracle`` — the whole scenario in real MindSpore, in a subprocess;
* ``msadam.parity.report`` — table, JSON, plot and progress bar;
* ``msadam.parity.command`` — the ``msadam parity`` subcommand.

No framework is imported by any of these at import time: MindSpore only inside the oracle's
subprocess, matplotlib only for ``--plot``, a backend's framework only when it runs. This package
imports only the data-model modules below; the oracle, report and command modules are imported by
name (``python -m msadam.parity.oracle`` must not find itself imported already).
"""

from msadam.parity.compare import Mismatch, compare
from msadam.parity.errors import InputError, OracleError, OracleUnavailable
from msadam.parity.run import Trajectory, gradient_stream, initial_values, inputs_digest, run_msadam
from msadam.parity.scenario_file import load_scenario_file, validate_scenario
from msadam.parity.scenarios import Scenario, describe, get_scenario, named_scenarios, random_scenario
from msadam.parity.trajectory_file import Record, load_record, save_record

__all__ = [
    "InputError",
    "Mismatch",
    "OracleError",
    "OracleUnavailable",
    "Record",
    "Scenario",
    "Trajectory",
    "compare",
    "describe",
    "get_scenario",
    "gradient_stream",
    "initial_values",
    "inputs_digest",
    "load_record",
    "load_scenario_file",
    "named_scenarios",
    "random_scenario",
    "run_msadam",
    "save_record",
    "validate_scenario",
]
