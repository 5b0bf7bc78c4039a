"""The ``msadam`` command line: ``msadam backends`` (and, later, ``parity`` and ``bench``).

Subcommands live in :data:`SUBCOMMANDS`; a new one is added with :func:`register_subcommand`
(an ``add_arguments(parser)`` function and a ``run(args) -> exit code`` function), so this module
only dispatches. Exit codes: 0 success, 1 a check failed (``msadam backends --strict`` with a broken
backend), 2 bad usage or bad input, reported on stderr as one line ``msadam: error: ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from msadam import registry, selfcheck

__all__ = ["SUBCOMMANDS", "CLIError", "Subcommand", "build_parser", "main", "register_subcommand"]

PROG = "msadam"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """Bad usage or bad input: ``main`` prints ``msadam: error: <message>`` and exits 2."""


@dataclass(frozen=True)
class Subcommand:
    """One ``msadam <name>`` subcommand."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register_subcommand(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Add ``msadam <name>``. ``run`` returns the exit code and raises :class:`CLIError` for bad input."""
    if name in SUBCOMMANDS:
        raise ValueError(f"msadam subcommand {name!r} is already registered.")
    SUBCOMMANDS[name] = Subcommand(help, add_arguments, run)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`CLIError` (one line, exit 2), not usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{PROG} --help')")


def _version() -> str:
    from msadam import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``msadam`` argument parser with every registered subcommand."""
    parser = _Parser(
        prog=PROG,
        description="mindspore.nn.Adam reproduced faithfully on a plugin registry of array backends.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``msadam`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help / --version
            return done.code if isinstance(done.code, int) else EXIT_OK
        run: Callable[[argparse.Namespace], int] = args._run
        return run(args)
    except CLIError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `msadam backends | head -1`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


# --- msadam backends ------------------------------------------------------------------------------------

_COLUMNS = ("BACKEND", "STATUS", "VERSION", "DEVICES", "PROVIDED BY")


def _add_backends_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any backend or plugin failed")


def _provided_by(status: registry.BackendStatus) -> str:
    return f"{status.distribution} [{status.plugin}]" if status.distribution else status.plugin


def _selection() -> dict[str, Any]:
    """The backend new parameters take, where that choice comes from, and whether it works."""
    try:
        name, source = registry.backend_choice()
    except ValueError as exc:  # an unreadable configuration file is bad input
        raise CLIError(str(exc)) from None
    try:
        registry.load_backend(name)
    except ValueError as exc:
        return {"name": name, "source": source, "ok": False, "error": str(exc)}
    return {"name": name, "source": source, "ok": True, "error": None}


def _print_table(statuses: Sequence[registry.BackendStatus], selected: dict[str, Any], out: TextIO) -> None:
    rows = [
        (
            s.name,
            "OK" if s.ok else "FAILED",
            s.version or "-",
            ",".join(s.devices) or "-",
            _provided_by(s),
        )
        for s in statuses
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    print(line(_COLUMNS), file=out)
    for status, row in zip(statuses, rows, strict=True):
        print(line(row), file=out)
        if not status.ok:
            print(f"    reason: {' '.join((status.error or 'unknown error').split())}", file=out)
    verdict = "" if selected["ok"] else f" -- NOT USABLE: {selected['error']}"
    print(f"\nselected: {selected['name']} (from {selected['source']}){verdict}", file=out)


def _run_backends(args: argparse.Namespace) -> int:
    selected = _selection()
    statuses = registry.backend_status()
    if args.json:
        document = {
            "msadam": _version(),
            "selected": selected,
            "backends": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "version": s.version,
                    "devices": list(s.devices),
                    "plugin": s.plugin,
                    "distribution": s.distribution,
                    "error": s.error,
                }
                for s in statuses
            ],
        }
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        _print_table(statuses, selected, sys.stdout)
    failed = not selected["ok"] or any(not s.ok for s in statuses)
    return EXIT_FAILED if args.strict and failed else EXIT_OK


register_subcommand(
    "backends",
    "list the discovered backends: status, framework version, devices, providing plugin",
    _add_backends_arguments,
    _run_backends,
)

register_subcommand(
    "selfcheck",
    "replay trajectories recorded from real MindSpore on every installed backend",
    selfcheck.add_arguments,
    selfcheck.run_cli,
)

# --- msadam parity (issue 7) -- the two lines to keep: ----------------------------------------------
from msadam.parity import command as parity_command  # noqa: E402  (imports no framework)

register_subcommand("parity", parity_command.HELP, parity_command.add_arguments, parity_command.run)
# --- end msadam parity ----------------------------------------------------------------------------------

# --- msadam bench (msadam/benchmarking/command.py) ---
from msadam.benchmarking import command as _bench  # noqa: E402  (light: NumPy only; frameworks load when run)

register_subcommand(
    "bench",
    "step time and peak memory per backend, as ratios to the frameworks' own Adam and the memory-bandwidth bound",
    _bench.add_arguments,
    _bench.run_cli,
)
# --- end msadam bench ---


if __name__ == "__main__":  # pragma: no cover - `python -m msadam` goes through msadam/__main__.py
    sys.exit(main())
