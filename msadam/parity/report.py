"""Showing a parity run: the table, the JSON document, the error plot, and a progress bar.

Nothing here runs a backend: :class:`Report` holds what :mod:`msadam.parity.command` measured.
matplotlib is imported only by :func:`write_plot`, and only when ``--plot`` asks for it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from msadam.parity.compare import Mismatch
from msadam.parity.errors import InputError
from msadam.parity.scenarios import Scenario, describe

__all__ = ["BackendResult", "Progress", "Reference", "Report", "check_plot_available", "write_plot"]

COLUMNS = ("BACKEND", "VERSION", "WORST ABS ERR", "WORST REL ERR", "FIRST STEP > TOL", "TIME/STEP", "WORST AT")


def median_or_none(seconds: Sequence[float]) -> float | None:
    """The median step time (robust to a first step that compiles), or ``None`` without steps."""
    return statistics.median(seconds) if seconds else None


@dataclass(frozen=True)
class Reference:
    """What the backends were compared with: MindSpore live, the NumPy backend, or a record file."""

    name: str  # "mindspore" or "numpy"
    version: str
    source: str  # "live" or "record"
    time_per_step: float | None = None
    record: str | None = None
    note: str | None = None  # why MindSpore was not used, when it was not
    recorded_with: dict[str, str] = field(default_factory=dict)  # a record's environment versions
    backend: str | None = None  # the msadam backend whose run is the reference (live NumPy), if any

    @property
    def row(self) -> str:
        """The reference's name in the table's BACKEND column."""
        name = "mindspore.nn.Adam" if self.name == "mindspore" else self.name
        return f"{name} ({'recorded' if self.source == 'record' else 'reference'})"

    @property
    def label(self) -> str:
        pretty = {"mindspore": "MindSpore", "numpy": "the NumPy reference backend"}.get(self.name, self.name)
        how = {"mindspore": " (mindspore.nn.Adam, in a subprocess)"}.get(self.name, "") if self.source == "live" else ""
        if self.source == "record":
            how = f", recorded in {self.record}"
        return f"{pretty} {self.version}{how}"


@dataclass(frozen=True)
class BackendResult:
    """One backend's run against the reference (``error`` set when the backend could not run it)."""

    backend: str
    version: str
    mismatch: Mismatch | None
    time_per_step: float | None
    error: str | None = None

    def ok(self, tolerance: float) -> bool:
        return self.error is None and self.mismatch is not None and self.mismatch.error <= tolerance


@dataclass(frozen=True)
class Report:
    """A whole parity run."""

    scenario: Scenario
    tolerance: float
    reference: Reference
    results: list[BackendResult]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok(self.tolerance) for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable document ``--json`` prints (every float a JSON number or ``null``)."""

        def num(x: float | None) -> float | str | None:
            return None if x is None else x if math.isfinite(x) else str(x)  # "inf" / "nan": JSON has neither

        results = []
        for r in self.results:
            m = r.mismatch
            results.append({
                "backend": r.backend, "version": r.version, "ok": r.ok(self.tolerance), "error": r.error,
                "worst_abs_error": num(m.abs_error) if m else None,
                "worst_rel_error": num(m.error) if m else None,
                "worst_at": {"array": m.key, "step": m.step} if m and m.error > 0 else None,
                "first_step_over_tolerance": m.first_step_over(self.tolerance) if m else None,
                "time_per_step_s": r.time_per_step,
                "rel_error_per_step": [num(e) for e in m.per_step] if m else [],
            })
        ref = self.reference
        return {
            "scenario": self.scenario, "description": describe(self.scenario), "tolerance": self.tolerance,
            "reference": {"name": ref.name, "version": ref.version, "source": ref.source, "record": ref.record,
                          "backend": ref.backend,
                          "time_per_step_s": ref.time_per_step, "note": ref.note,
                          "recorded_with": ref.recorded_with or None},
            "versions": self.versions, "results": results, "ok": self.ok,
        }

    def print_json(self, out: TextIO) -> None:
        json.dump(self.to_json(), out, indent=2)
        print(file=out)

    def print_table(self, out: TextIO) -> None:
        """The header lines, one row for the reference and one per backend, and a verdict."""
        ref = self.reference
        print(f"scenario {self.scenario['name']!r}: {describe(self.scenario)}", file=out)
        print(f"reference: {ref.label}; tolerance {self.tolerance:g} (relative)", file=out)
        if ref.note:
            print(f"note: {ref.note}", file=out)
        rows = [(ref.row, ref.version, "-", "-", "-", _seconds(ref.time_per_step), "")]
        for r in self.results:
            m = r.mismatch
            if r.error is not None or m is None:
                rows.append((r.backend, r.version, "-", "-", "-", "-", f"FAILED: {r.error}"))
                continue
            first = m.first_step_over(self.tolerance)
            where = f"{m.key} step {m.step}" if m.comparable and m.error > 0 else "" if m.comparable else m.key
            rows.append((r.backend, r.version, _error(m.abs_error), _error(m.error),
                         "-" if first is None else str(first), _seconds(r.time_per_step), where))
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        print(file=out)
        for row in [COLUMNS, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
        print(file=out)
        failed = [r.backend for r in self.results if not r.ok(self.tolerance)]
        against = ref.row.split(" (")[0] + (" (recorded)" if ref.source == "record" else "")
        if not self.results:
            print("nothing to compare with the reference: install a backend (msadam-torch, msadam-jax, "
                  "msadam-tensorflow) or MindSpore (mindspore==2.10.0)", file=out)
        elif failed:
            print(f"FAILED: {', '.join(failed)} {'is' if len(failed) == 1 else 'are'} not within "
                  f"{self.tolerance:g} of {against}", file=out)
        else:
            print(f"OK: {len(self.results)} backend{'s' * (len(self.results) != 1)} within {self.tolerance:g} "
                  f"of {against} at every step", file=out)


def _error(x: float) -> str:
    return "0" if x == 0 else f"{x:.2e}" if math.isfinite(x) else str(x)


def _seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e6:.0f} us" if x < 1e-3 else f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


# ----------------------------------------------------------------------------- plot


def check_plot_available() -> None:
    """Fail early, before anything runs, when ``--plot`` cannot work (matplotlib missing or broken)."""
    try:
        import matplotlib
    except ImportError as exc:
        missing = importlib.util.find_spec("matplotlib") is None
        why = "is not installed" if missing else f"does not import ({' '.join(str(exc).split())})"
        raise InputError(f"--plot needs matplotlib, which {why}: python -m pip install matplotlib") from None
    del matplotlib


def write_plot(report: Report, path: str | Path, floor: float = 1e-12) -> None:
    """Relative error against step, one line per backend, log scale; exact zeros drawn at ``floor``."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    try:
        drawn: dict[tuple[float, ...], str] = {}
        styles = ("-", "--", "-.", ":")
        for i, r in enumerate(r for r in report.results if r.mismatch is not None and r.mismatch.per_step):
            assert r.mismatch is not None
            errors = [min(max(e, floor), 1e300) for e in r.mismatch.per_step]
            notes = [" bit-exact"] if r.mismatch.error == 0 else []
            if r.mismatch.per_step in drawn:  # identical curves would hide each other: say so
                notes.append(f" same as {drawn[r.mismatch.per_step]}")
            drawn.setdefault(r.mismatch.per_step, r.backend)
            label = f"{r.backend} {r.version}" + (f" ({','.join(notes).strip()})" if notes else "")
            ax.plot(range(1, len(errors) + 1), errors, label=label, linestyle=styles[i % len(styles)],
                    linewidth=max(2.6 - 0.4 * i, 1.0))
        ax.axhline(report.tolerance, color="black", linestyle="--", linewidth=1,
                   label=f"tolerance {report.tolerance:g}")
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor / 2)
        ax.set_xlabel("step")
        ax.set_ylabel(f"worst relative error (0 drawn at {floor:g})")
        ax.set_title(f"msadam parity {report.scenario['name']!r} against {report.reference.label}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        try:
            fig.savefig(path, dpi=110)
        except OSError as exc:
            raise InputError(f"cannot write the plot to {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar on ``stream`` (stderr), redrawn at most every ``interval`` seconds."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.total, self.enabled, self.interval = max(total, 1), enabled, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done, self._last, self._width = 0, 0.0, 0

    def update(self, done: int, label: str, force: bool = False) -> None:
        """Show ``done`` of ``total`` units with ``label`` (e.g. the backend running now)."""
        self.done = min(done, self.total)
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.interval):
            return
        self._last = now
        filled = int(30 * self.done / self.total)
        line = f"msadam parity [{'#' * filled}{'.' * (30 - filled)}] {100 * self.done // self.total:3d}%  {label}"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Erase the bar (the table follows on stdout)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
