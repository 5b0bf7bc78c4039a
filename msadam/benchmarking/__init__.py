"""Benchmark building blocks shared by ``msadam bench`` and the scripts in ``benchmarks/``.

Light on purpose (NumPy and the standard library only): :mod:`msadam.hookspecs` imports
:class:`BenchBaseline` from here. The runner is :mod:`msadam.benchmarking.runner` and the
``msadam bench`` subcommand :mod:`msadam.benchmarking.command`.
"""

from msadam.benchmarking.baseline import LEARNING_RATE, BenchBaseline, BenchStep, as_bench_step
from msadam.benchmarking.memory import PeakMemory
from msadam.benchmarking.timing import BYTES_PER_PARAM, InPlaceAdd, interleaved, median_seconds

__all__ = [
    "BYTES_PER_PARAM",
    "LEARNING_RATE",
    "BenchBaseline",
    "BenchStep",
    "InPlaceAdd",
    "PeakMemory",
    "as_bench_step",
    "interleaved",
    "median_seconds",
]
