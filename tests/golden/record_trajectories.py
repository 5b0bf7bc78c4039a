"""Record golden Adam trajectories from real MindSpore (the oracle) for ``tests/test_parity.py``.

Usage::

    python tests/golden/record_trajectories.py                 # every named + 12 random scenarios
    python tests/golden/record_trajectories.py --only plain --random 0 --jobs 2

Every scenario runs in its own subprocess through :mod:`msadam.parity.oracle` (whose docstring says
how MindSpore is driven: modes, targets, the centralization stand-in) and, by default, twice: the
two runs must agree bit for bit, so a fixture never pins an undefined or non-deterministic
MindSpore result. Fixtures are :mod:`msadam.parity.trajectory_file` records, the format
``msadam parity --record`` writes and ``--replay`` reads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from msadam.parity import compare, inputs_digest, named_scenarios, random_scenario
from msadam.parity.oracle import centralization_check, record
from msadam.parity.run import Trajectory
from msadam.parity.scenarios import Scenario
from msadam.parity.trajectory_file import Record, environment_versions, save_record

FIXTURE_DIR = Path(__file__).resolve().parent / "trajectories"
RANDOM_SEEDS = range(12)


def record_checked(scen: Scenario, repeats: int = 2) -> tuple[Trajectory, str]:
    """:func:`record` ``repeats`` times; every run must give bit-identical arrays."""
    runs = [record(scen) for _ in range(repeats)]
    for traj, _ in runs[1:]:
        mismatch = compare(runs[0][0], traj)
        if mismatch.error != 0.0:
            raise RuntimeError(f"{scen['name']}: MindSpore is not deterministic here ({mismatch})")
    return runs[0]


def all_scenarios(n_random: int = len(RANDOM_SEEDS)) -> list[Scenario]:
    return named_scenarios() + [random_scenario(seed) for seed in range(n_random)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURE_DIR)
    parser.add_argument("--only", nargs="*", help="scenario names to record (default: all)")
    parser.add_argument("--random", type=int, default=len(RANDOM_SEEDS), help="number of random scenarios")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=2, help="runs per scenario that must agree bitwise")
    args = parser.parse_args(argv)
    chosen = [s for s in all_scenarios(args.random) if not args.only or s["name"] in args.only]
    print(f"centralization emulation order check: relative error {centralization_check():.2e}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    def one(scen: Scenario) -> str:
        traj, version = record_checked(scen, args.repeats)
        path = args.out / f"{scen['name']}.npz"
        save_record(path, Record(scen, traj, "mindspore", version, inputs_digest(scen),
                                 versions={**environment_versions(), "mindspore": version}))
        return f"{scen['name']:<45} {path.stat().st_size / 1024:7.1f} KiB"

    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(one, chosen):
            print(line, flush=True)
    if not args.only:
        keep = {f"{s['name']}.npz" for s in chosen}
        for stale in args.out.glob("*.npz"):
            if stale.name not in keep:
                stale.unlink()
    total = sum(p.stat().st_size for p in args.out.glob("*.npz"))
    print(f"{len(chosen)} fixtures in {time.monotonic() - start:.0f}s; {total / 2**20:.2f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
