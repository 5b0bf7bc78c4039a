"""The figures of docs/benchmarks.md: one ``msadam bench`` run, saved, and its table in Markdown.

``--run`` runs the command line the page documents (``COMMAND``, from the repository root) and
writes its JSON to ``docs/assets/bench.json`` and its plot to ``docs/assets/bench.png``; without
it the saved JSON is only read. Either way the Markdown table of the measured ratios is printed,
so the page's table is the saved run's, number for number.

    python benchmarks/docs_figures.py [--run] [--json docs/assets/bench.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from msadam.benchmarking.command import format_ms, format_ratio

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "docs" / "assets"
COMMAND = [
    "msadam", "bench", "--sizes", "1e5,1e6,1e7", "--tensors", "1,80", "--repeats", "7",
    "--backends", "numpy,torch,jax,tensorflow", "--plot", "docs/assets/bench.png", "--json",
]
RELIABLE_MEMORY_SIZE = 1_000_000  # msadam.benchmarking.command.MEMORY_RELIABLE_BYTES / 4


def count(n: int) -> str:
    """``100000`` -> ``1e5``."""
    exponent = len(str(n)) - 1
    return f"{n // 10**exponent}e{exponent}" if n % 10**exponent == 0 else str(n)


def memory(value: float | None, size: int) -> str:
    """As ``msadam bench`` prints it: ``~`` below 1e6 parameters, where pages and caches swamp the figure."""
    return format_ratio(value) if size >= RELIABLE_MEMORY_SIZE or value is None else "~"


def table(document: dict[str, Any]) -> str:
    """One row per (size, tensors, backend): msadam's ratios, then its baseline's (if any)."""
    lines = [
        "| params | tensors | backend | msadam × native | msadam × bound | msadam mem | native Adam | native × bound "
        "| native mem | msadam ms | native ms | bandwidth GB/s |",
        "| ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in document["results"]:
        ours = r["msadam"]
        bandwidth = r["bandwidth_bytes_per_second"]
        head = [count(r["size"]), str(r["tensors"]), r["backend"]]
        tail = [f"{bandwidth / 1e9:.1f}" if bandwidth else "-"]
        sides = [(b, format_ratio(b["msadam_x_native"])) for b in r["baselines"]] or [(None, "-")]
        for base, x_native in sides:
            theirs = ["-", "-", "-"] if base is None else [
                base["label"], format_ratio(base["x_bound"]), memory(base["memory_ratio"], r["size"])]
            cells = [*head, x_native, format_ratio(ours["x_bound"]), memory(ours["memory_ratio"], r["size"]), *theirs,
                     format_ms(ours["seconds"]), format_ms(None if base is None else base["seconds"]), *tail]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run msadam bench first (minutes) and save its output")
    parser.add_argument("--json", type=Path, default=ASSETS / "bench.json", help="the saved JSON")
    args = parser.parse_args(argv)
    if args.run:
        ASSETS.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(COMMAND, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1):  # 1: some measurement failed, listed in the JSON
            sys.stderr.write(done.stderr)
            return done.returncode
        args.json.write_text(done.stdout, encoding="utf-8")
    document = json.loads(args.json.read_text(encoding="utf-8"))
    print(f"`{' '.join(COMMAND)}` (msadam {document['msadam']}, median of {document['repeats']} rounds)")
    print()
    print(table(document))
    for failure in document.get("failures", []):
        print(f"\nFAILED: {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
