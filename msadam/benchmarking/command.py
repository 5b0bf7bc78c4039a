"""``msadam bench``: step time and peak memory per backend, as ratios to the native Adam and to the bound.

The headline is ratios, not times: ``x native`` is msadam's step time over the paired framework
Adam's (a :class:`~msadam.benchmarking.BenchBaseline` from some plugin), ``x bound`` a step time
over the memory-bandwidth bound measured in the same run (28 bytes per parameter at the bandwidth
of an in-place add), ``mem`` the peak memory the optimizer added (state and step) over the
parameters' bytes. See :mod:`msadam.benchmarking.runner` for the procedure and
:mod:`msadam.benchmarking.memory` for what the memory figure counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from msadam.benchmarking.runner import BackendRun, Measurement, Report, run
from msadam.benchmarking.timing import BANDWIDTH_ELEMENTS, BYTES_PER_PARAM, usable_cpus

__all__ = ["DEFAULT_REPEATS", "DEFAULT_SIZES", "DEFAULT_TENSORS", "add_arguments", "format_ms", "format_ratio",
           "report_json", "run_cli"]

DEFAULT_SIZES = (100_000, 1_000_000)
DEFAULT_TENSORS = (1, 80)
DEFAULT_REPEATS = 7
MAX_COUNT = 10**10
MEMORY_RELIABLE_BYTES = 4_000_000  # below ~1e6 parameters, pages and framework caches dominate the memory figure


def _counts(text: str) -> list[int]:
    """``"1e5,1e6"`` -> ``[100000, 1000000]`` (positive whole numbers; argparse reports a bad one)."""
    values = []
    for item in text.split(","):
        try:
            value = float(item.strip().replace("_", ""))
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value == int(value) and 1 <= value <= MAX_COUNT):
            raise argparse.ArgumentTypeError(f"{item.strip()!r} is not a positive whole number (e.g. 1e6 or 80)")
        values.append(int(value))
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _shown(values: tuple[int, ...]) -> str:
    return ",".join(_count_text(v) for v in values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``msadam bench`` options."""
    parser.add_argument("--sizes", type=_counts, default=list(DEFAULT_SIZES), metavar="N,N,...",
                        help=f"total float32 parameters per grid point (default {_shown(DEFAULT_SIZES)})")
    parser.add_argument("--tensors", type=_counts, default=list(DEFAULT_TENSORS), metavar="N,N,...",
                        help=f"tensors the parameters are split into (default {_shown(DEFAULT_TENSORS)})")
    parser.add_argument("--repeats", type=_positive, default=DEFAULT_REPEATS, metavar="N",
                        help=f"timed rounds per grid point; the median is reported (default {DEFAULT_REPEATS})")
    parser.add_argument("--backends", metavar="A,B,...", help="backends to measure (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="also draw the time ratios against size with matplotlib")


def _count_text(n: int) -> str:
    """``100000`` -> ``"1e5"``, ``2000000`` -> ``"2e6"``, other numbers as they are."""
    exponent = len(str(n)) - 1
    if n >= 1000 and n % 10**exponent == 0:
        return f"{n // 10**exponent}e{exponent}"
    return str(n)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _memory_ratio(m: Measurement, r: BackendRun) -> float | None:
    return m.memory_bytes / r.param_bytes if m.memory_bytes is not None else None


def _side_json(m: Measurement, r: BackendRun) -> dict[str, Any]:
    return {
        "label": m.label,
        "seconds": m.seconds,
        "x_bound": _ratio(m.seconds, r.bound_seconds),
        "memory_bytes": m.memory_bytes,
        "memory_ratio": _memory_ratio(m, r),
        "error": m.error,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (ratios next to the raw seconds and bytes)."""
    from msadam import __version__

    results = []
    for r in report.runs:
        baselines = []
        for b in r.baselines:
            baselines.append({**_side_json(b, r), "msadam_x_native": _ratio(r.msadam.seconds, b.seconds)})
        results.append({
            "backend": r.backend,
            "size": r.size,
            "tensors": r.tensors,
            "param_bytes": r.param_bytes,
            "bandwidth_bytes_per_second": r.bandwidth,
            "bound_seconds": r.bound_seconds,
            "msadam": _side_json(r.msadam, r),
            "baselines": baselines,
        })
    return {
        "msadam": __version__,
        "backends": report.backends,
        "baselines": report.baseline_labels,
        "sizes": report.sizes,
        "tensors": report.tensors,
        "repeats": report.repeats,
        "bytes_per_param": BYTES_PER_PARAM,
        "bound": f"{BYTES_PER_PARAM} bytes per parameter at the bandwidth of an in-place float32 add over "
                 f"2 x {BANDWIDTH_ELEMENTS * 4 // 2**20} MiB on {usable_cpus()} thread(s), timed with the steps",
        "memory": "peak resident-memory growth of the process from just before the optimizer is built to the "
                  "end of its third step (peak reset after the first), over the parameters' bytes"
                  if report.memory_note is None else None,
        "memory_unavailable": report.memory_note,
        "results": results,
        "failures": report.failures,
    }


def format_ratio(value: float | None) -> str:
    """Two decimals, or two significant digits below 0.1 (a ratio never shows as 0.00)."""
    if value is None:
        return "-"
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.2g}"


def format_ms(seconds: float | None) -> str:
    """Milliseconds, three decimals (``-`` for none)."""
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def print_table(report: Report, out: TextIO) -> None:
    """The table: one row per backend and baseline (or one row with "-" for a backend without one)."""
    columns = ("params", "tensors", "backend", "x native", "x bound", "mem", "native Adam", "x bound", "mem",
               "msadam ms", "native ms")
    rows: list[tuple[str, ...]] = []

    def mem(m: Measurement, r: BackendRun) -> str:
        reliable = r.param_bytes >= MEMORY_RELIABLE_BYTES or m.memory_bytes is None
        return format_ratio(_memory_ratio(m, r)) if reliable else "~"

    for r in report.runs:
        ours = (format_ratio(_ratio(r.msadam.seconds, r.bound_seconds)), mem(r.msadam, r))
        head = (_count_text(r.size), str(r.tensors), r.backend)
        if not r.baselines:
            rows.append((*head, "-", *ours, "-", "-", "-", format_ms(r.msadam.seconds), "-"))
        for b in r.baselines:
            theirs = (format_ratio(_ratio(b.seconds, r.bound_seconds)), mem(b, r))
            rows.append((*head, format_ratio(_ratio(r.msadam.seconds, b.seconds)), *ours, b.label, *theirs,
                         format_ms(r.msadam.seconds), format_ms(b.seconds)))
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    left = {2, 6}  # names are left-aligned, numbers right-aligned

    def line(cells: tuple[str, ...]) -> str:
        parts = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts[:6]) + "  |  " + "  ".join(parts[6:9]) + "  |  " + "  ".join(parts[9:])

    bandwidths = [r.bandwidth for r in report.runs if r.bandwidth]
    if bandwidths:
        low, high = min(bandwidths) / 1e9, max(bandwidths) / 1e9
        measured = f"{low:.1f} GB/s" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f} GB/s"
    else:
        measured = "-"
    print(f"msadam bench: median of {report.repeats} interleaved steps; x native = msadam time / native Adam "
          f"time; x bound = time / ({BYTES_PER_PARAM} B per parameter at the in-place add bandwidth measured "
          f"with each row: {measured} on {usable_cpus()} thread(s)); mem = peak extra memory of optimizer "
          "state and step / parameter bytes", file=out)
    print(line(columns).rstrip(), file=out)
    for row in rows:
        print(line(row).rstrip(), file=out)
    notes = []
    if report.memory_note is not None:
        notes.append(f"mem not measured: {report.memory_note}")
    elif any(r.param_bytes < MEMORY_RELIABLE_BYTES for r in report.runs):
        notes.append("mem ~: below 1e6 parameters, pages and framework caches swamp the figure (--json has it)")
    if any(r.size < 1_000_000 for r in report.runs):
        notes.append("below ~1e6 parameters the data fits in caches, so x bound (a DRAM bound) can go under 1")
    for note in notes:
        print(f"note: {note}", file=out)
    for failure in report.failures:
        print(f"FAILED: {failure}", file=out)


def _check_plot_target(path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        from msadam.cli import CLIError

        raise CLIError("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    if not path.parent.is_dir():
        from msadam.cli import CLIError

        raise CLIError(f"--plot: directory {str(path.parent)!r} does not exist")


def plot(report: Report, path: Path) -> None:
    """Time ratios against size: a column per tensor count, ``x native`` on top and ``x bound`` below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = report.tensors
    colors = {name: f"C{i % 10}" for i, name in enumerate(report.backends)}
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(2, len(counts), figsize=(4.5 * len(counts), 7), squeeze=False, sharex=True)
    for col, count in enumerate(counts):
        top, bottom = axes[0][col], axes[1][col]
        for name in report.backends:
            runs = [r for r in report.runs if r.backend == name and r.tensors == count]
            sizes = [r.size for r in runs]
            bound = [_ratio(r.msadam.seconds, r.bound_seconds) for r in runs]
            bottom.plot(sizes, [math.nan if v is None else v for v in bound], marker="o", color=colors[name],
                        label=f"{name} (msadam)")
            for i, label in enumerate(report.baseline_labels.get(name, [])):
                native = [_ratio(r.msadam.seconds, r.baselines[i].seconds) for r in runs]
                top.plot(sizes, [math.nan if v is None else v for v in native], marker="o", color=colors[name],
                         linestyle=styles[i % len(styles)], label=f"{name}: msadam / {label}")
        top.axhline(1.0, color="grey", linewidth=0.8)
        bottom.axhline(1.0, color="grey", linewidth=0.8)
        top.set_title(f"{count} tensor{'s' if count != 1 else ''}")
        top.set_ylabel("step time x native Adam")
        bottom.set_ylabel("step time x bandwidth bound")
        bottom.set_xlabel("parameters")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log")
            if ax.lines[1:]:  # the reference line and at least one curve
                ax.legend(fontsize="small")
    fig.suptitle("msadam bench: Adam step time ratios")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _progress(message: str) -> None:
    print(f"msadam bench: {message}", file=sys.stderr, flush=True)


def run_cli(args: argparse.Namespace) -> int:
    """``msadam bench``: 0 when every measurement succeeded, 1 when one failed (listed in the output)."""
    from msadam import registry
    from msadam.cli import CLIError

    if args.backends is None:
        names = registry.available_backends()
    else:
        names = list(dict.fromkeys(n.strip() for n in args.backends.split(",") if n.strip()))
        if not names:
            raise CLIError("--backends names no backend (see 'msadam backends')")
        for name in names:  # only the named ones are loaded (their frameworks imported)
            try:
                registry.load_backend(name)
            except ValueError as exc:
                raise CLIError(str(exc)) from None
    too_small = [s for s in args.sizes if s < max(args.tensors)]
    if too_small:
        raise CLIError(f"--sizes {_count_text(too_small[0])} is smaller than --tensors {max(args.tensors)}: "
                       "every tensor needs at least one parameter")
    if args.plot is not None:
        _check_plot_target(args.plot)
    # Ascending sizes: memory a framework pools from a smaller grid point can hide less of a larger one.
    report = run(names, sorted(set(args.sizes)), sorted(set(args.tensors)), args.repeats,
                 progress=_progress if sys.stderr.isatty() else None)
    if args.plot is not None:
        try:
            plot(report, args.plot)
        except OSError as exc:
            raise CLIError(f"--plot: cannot write {str(args.plot)!r}: {exc}") from None
    if args.json:
        document = report_json(report)
        document["plot"] = None if args.plot is None else str(args.plot)
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print_table(report, sys.stdout)
        if args.plot is not None:
            print(f"plot: {args.plot}")
    return 1 if report.failures else 0
