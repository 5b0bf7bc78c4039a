"""Record what real MindSpore does for every case of ``tests/validation_cases.py``.

Run with the system Python that has MindSpore 2.10 (CPU), from anywhere::

    python3 tests/golden/record_exceptions.py            # writes tests/golden/exceptions.json
    python3 tests/golden/record_exceptions.py --out F    # writes F instead (the live test does this)

Each case runs in PyNative mode on fresh Parameters with per-case names, so one failure cannot
poison the next. For each case the file stores MindSpore's outcome: ``"ok"`` or the exception
class, where it was raised (``"construct"`` or ``"op<i>"``), the first line of the message, the
results of the operations that succeeded, and for a failed step whether the optimizer state
(parameters, moments, global step, beta powers) was left unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import validation_cases  # noqa: E402 - needs the path above

DEFAULT_OUT = HERE / "exceptions.json"
NO_MINDSPORE = 3  # exit code when MindSpore does not import


def _import_mindspore() -> Any:
    """Import MindSpore quietly and work around its NumPy-1 build under NumPy 2."""
    os.environ.setdefault("GLOG_v", "3")
    os.environ["MS_OM_PATH"] = tempfile.mkdtemp(prefix="msadam-golden-")
    with open(os.devnull, "w") as devnull, warnings.catch_warnings(), contextlib.redirect_stderr(devnull):
        warnings.simplefilter("ignore")
        import mindspore

        # The first conversion after import fails once under NumPy 2 (MindSpore is built against
        # NumPy 1); later ones work.
        with contextlib.suppress(SystemError):
            mindspore.Tensor(np.ones(1, np.float32)).reshape(())
    mindspore.set_context(mode=mindspore.PYNATIVE_MODE, device_target="CPU")
    return mindspore


def record(out: Path) -> dict[str, Any]:
    side = validation_cases.MindSporeSide(_import_mindspore())
    cases: dict[str, Any] = {}
    for index, case in enumerate(validation_cases.CASES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases[case.name] = validation_cases.run_case(case, side, index)
    document = {
        "mindspore": side.ms.__version__,
        "numpy": np.__version__,
        "device_target": "CPU",
        "mode": "PYNATIVE_MODE",
        "cases": cases,
    }
    out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    try:
        document = record(args.out)
    except ImportError as error:  # the live test skips on this exit code
        print(f"mindspore does not import: {error}")
        return NO_MINDSPORE
    outcomes = [case["outcome"] for case in document["cases"].values()]
    print(f"{len(outcomes)} cases, {outcomes.count('ok')} ok, written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
