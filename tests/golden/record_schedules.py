"""Record MindSpore's learning-rate schedules into ``tests/golden/schedules.json``.

Run with real MindSpore (2.10) installed::

    python tests/golden/record_schedules.py

The fixture holds, for a table of schedule configurations, MindSpore's float32 learning rate at each
step (every step evaluated on its own, as a one-element int32 ``global_step`` of shape ``(1,)``, as
``nn.Adam`` passes it), and, for a table of constructor calls, the exception class MindSpore raises
(or ``"ok"``). ``tests/test_schedules.py`` replays both against msadam without MindSpore.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).with_name("schedules.json")

STEPS = [*range(33), 50, 100, 1000, 12345, 10**6, 2**31 - 1]

# --- the numbers table: (class name, positional constructor arguments) ------------------------------

_DECAY_ARGS = [
    (0.1, 0.9, 4),
    (1.0, 0.5, 1),
    (0.05, 0.96, 10),
    (0.001, 1.5, 7),  # a growing "decay"
    (0.1, 1e-8, 3),
    (3.0, 10.0, 2),  # overflow / underflow
    (0.1, 2.0, 5),  # integer exponents
    (0.1, 0.9, 3**30),  # decay_steps not exact in float32
    (0.1, 0.9, 2**31 - 1),
    (0.123456789, 0.987654321, 13),
]
_POLY_ARGS = [(0.1, 0.01, 10, power) for power in (0.5, 1.0, 2.0, 3.0, 2.7)] + [
    (0.01, 0.1, 5, 2.0),
    (1.0, 0.0, 1, 1.5),
    (0.5, 0.0, 7, 0.1),
    (0.1, 0.01, 2**31 - 1, 1.0),
]

CONFIGS: list[tuple[str, list[Any]]] = [
    *(
        (name, [*args, stair])
        for name in ("ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR")
        for args in _DECAY_ARGS
        for stair in (False, True)
    ),
    *(
        ("CosineDecayLR", list(args))
        for args in [
            (0.0, 0.1, 10),
            (0.01, 0.1, 4),
            (0.001, 1.0, 1),
            (1e-6, 1e-5, 30),
            (0.5, 0.5000001, 7),
            (0.0, 3.0, 2**31 - 1),
            (0.2, 1.7, 13),
        ]
    ),
    *(("PolynomialDecayLR", [*args, update]) for args in _POLY_ARGS for update in (False, True)),
    *(("WarmUpLR", list(args)) for args in [(0.1, 10), (1.0, 1), (0.0, 5), (0.3, 7), (2.5, 2**31 - 1)]),
]

# --- the validation table: constructor calls, as Python expressions --------------------------------

# (class name, parameter names, valid arguments, the kind of each parameter)
SIGNATURES: list[tuple[str, list[str], list[str], list[str]]] = [
    (
        "ExponentialDecayLR",
        ["learning_rate", "decay_rate", "decay_steps", "is_stair"],
        ["0.1", "0.9", "4", "False"],
        ["posfloat", "posfloat", "int", "bool"],
    ),
    (
        "NaturalExpDecayLR",
        ["learning_rate", "decay_rate", "decay_steps", "is_stair"],
        ["0.1", "0.9", "4", "True"],
        ["posfloat", "posfloat", "int", "bool"],
    ),
    (
        "InverseDecayLR",
        ["learning_rate", "decay_rate", "decay_steps", "is_stair"],
        ["0.1", "0.9", "4", "False"],
        ["posfloat", "posfloat", "int", "bool"],
    ),
    ("CosineDecayLR", ["min_lr", "max_lr", "decay_steps"], ["0.01", "0.1", "4"], ["nonnegfloat", "posfloat", "int"]),
    (
        "PolynomialDecayLR",
        ["learning_rate", "end_learning_rate", "decay_steps", "power", "update_decay_steps"],
        ["0.1", "0.01", "4", "0.5", "False"],
        ["posfloat", "nonnegfloat", "int", "posfloat", "bool"],
    ),
    ("WarmUpLR", ["learning_rate", "warmup_steps"], ["0.1", "4"], ["nonnegfloat", "int"]),
]

# Replacement values per kind: everything a careless caller passes, and the awkward valid ones.
_FLOAT_BAD = [
    "'0.1'",
    "None",
    "True",
    "False",
    "1",
    "0",
    "-1",
    "float('nan')",
    "float('inf')",
    "float('-inf')",
    "-0.1",
    "np.float32(0.1)",
    "np.float64(0.1)",
    "np.int64(1)",
    "[0.1]",
    "1e39",
    "5e-324",
    "0.0",
    "-0.0",
]
BAD_VALUES = {
    "posfloat": _FLOAT_BAD,
    "nonnegfloat": _FLOAT_BAD,
    "int": [
        "'4'",
        "None",
        "True",
        "False",
        "4.0",
        "0",
        "-1",
        "np.int64(4)",
        "np.int32(4)",
        "2**63",
        "2**64",
        "10**400",
        "[4]",
        "float('nan')",
    ],
    "bool": ["1", "0", "None", "'True'", "np.bool_(True)", "1.0"],
}
# One value per failure class, to pin the order of the checks: a TypeError in one argument and a
# ValueError in another tell which argument MindSpore checks first.
ORDER_PROBES = {
    "posfloat": ("'x'", "-1.0"),
    "nonnegfloat": ("'x'", "-1.0"),
    "int": ("'x'", "0"),
    "bool": ("'x'", None),
}
EXTRA_CALLS = [
    "CosineDecayLR(0.2, 0.1, 3)",
    "CosineDecayLR(0.1, 0.1, 3)",
    "CosineDecayLR(0.2, 0.1, '3')",
    "CosineDecayLR(0.0, 0.0, 3)",
    "CosineDecayLR(0.0, 1e-300, 3)",
    "PolynomialDecayLR(0.01, 0.1, 3, 1.0)",
    "PolynomialDecayLR(0.1, 0.1, 3, 1.0, update_decay_steps=True)",
    "WarmUpLR(0.0, 3)",
    "WarmUpLR(learning_rate=0.1, warmup_steps=3)",
    "WarmUpLR(0.1)",
    "WarmUpLR(0.1, 3, 5)",
    "ExponentialDecayLR(0.1, 0.9)",
    "ExponentialDecayLR(0.1, 0.9, 4, is_stair=True, bogus=1)",
    "ExponentialDecayLR(learning_rate=0.1, decay_rate=0.9, decay_steps=4)",
    "NaturalExpDecayLR(0.1, 0.9, 4, False, True)",
    "InverseDecayLR(decay_steps=4, decay_rate=0.9, learning_rate=0.1)",
    "PolynomialDecayLR(0.1, 0.01, 4)",
]


def validation_calls() -> list[str]:
    """Every constructor call of the validation table, as an expression (deduplicated, ordered)."""
    calls: list[str] = []
    for cls, _names, valid, kinds in SIGNATURES:
        for i, kind in enumerate(kinds):
            for bad in BAD_VALUES[kind]:
                args = [*valid[:i], bad, *valid[i + 1 :]]
                calls.append(f"{cls}({', '.join(args)})")
        for i, j in itertools.permutations(range(len(kinds)), 2):
            type_bad, value_bad = ORDER_PROBES[kinds[i]][0], ORDER_PROBES[kinds[j]][1]
            if value_bad is None:
                continue
            args = list(valid)
            args[i], args[j] = type_bad, value_bad
            calls.append(f"{cls}({', '.join(args)})")
        calls.append(f"{cls}({', '.join(ORDER_PROBES[k][0] for k in kinds)})")
    calls.extend(EXTRA_CALLS)
    return list(dict.fromkeys(calls))


def outcome(expression: str, namespace: dict[str, Any]) -> tuple[str, str]:
    """The exception class name and message a call raises, or ``("ok", "")``."""
    try:
        eval(expression, {"np": np, "__builtins__": __builtins__}, namespace)
    except Exception as error:  # every class is the point here
        return type(error).__name__, str(error)
    return "ok", ""


def _import_mindspore() -> Any:
    os.environ.setdefault("GLOG_v", "3")
    os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp(prefix="msadam-ms-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mindspore

    with contextlib.suppress(SystemError):  # built against NumPy 1: a process's first reshape raises SystemError
        mindspore.Tensor(np.ones(1, np.float32)).reshape(())
    return mindspore


def _f32_text(value: Any) -> str:
    return str(np.float32(value))  # shortest text that round-trips through np.float32


def _dumps(fixture: dict[str, Any]) -> str:
    """JSON with one line per schedule and per call (small diffs when re-recorded)."""
    parts = []
    for key, value in fixture.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(row)}" for row in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    assert json.loads(text) == fixture
    return text


def main() -> None:
    ms = _import_mindspore()
    nn_namespace = {name: getattr(ms.nn, name) for name, *_ in SIGNATURES}
    schedules = []
    for name, args in CONFIGS:
        schedule = getattr(ms.nn, name)(*args)
        values = []
        for step in STEPS:
            out = schedule(ms.Tensor(np.array([step], np.int32))).asnumpy()
            assert out.dtype == np.float32 and out.shape == (1,), (name, args, out)
            if step < 8:  # a shape-() step gives the same number
                scalar = schedule(ms.Tensor(np.array(step, np.int32))).asnumpy()
                assert scalar.shape == () and (scalar == out[0] or math.isnan(out[0])), (name, args, step)
            values.append(_f32_text(out[0]))
        schedules.append({"class": name, "args": args, "values": values})
    validation = []
    for call in validation_calls():
        raises, message = outcome(call, nn_namespace)
        validation.append({"call": call, "raises": raises, "message": message})
    fixture = {
        "mindspore_version": ms.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "note": "values: MindSpore's float32 learning rate at each step (one-element int32 global_step), "
        "written as float32 text; raises/message: the exception class and message of the constructor call, "
        "or 'ok'.",
        "steps": STEPS,
        "schedules": schedules,
        "validation": validation,
    }
    FIXTURE.write_text(_dumps(fixture))
    counts: dict[str, int] = {}
    for row in validation:
        counts[row["raises"]] = counts.get(row["raises"], 0) + 1
    print(f"wrote {FIXTURE}: {len(schedules)} schedules x {len(STEPS)} steps, {len(validation)} calls {counts}")


if __name__ == "__main__":
    main()
