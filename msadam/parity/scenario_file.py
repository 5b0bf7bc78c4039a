"""A user's scenario file (JSON), checked and completed into a scenario, with one-line errors.

Only ``params`` is required; every other key takes the default of
:func:`msadam.parity.scenarios.scenario`, and ``name`` defaults to the file's stem. A minimal file::

    {"params": [{"name": "dense.weight", "shape": [16, 8]}, {"name": "dense.bias", "shape": [16]}],
     "learning_rate": {"kind": "WarmUpLR", "args": {"learning_rate": 0.01, "warmup_steps": 10}},
     "weight_decay": 0.01, "use_nesterov": true, "steps": 200}

The structure (keys, types, names, shapes, learning-rate kinds, sparse set-up, target) is checked
here, each problem reported with its place (``params[1].shape``, ``groups[0].lr``); then the
optimizer is built once with msadam's NumPy backend, so that everything ``mindspore.nn.Adam``
itself would refuse (a float ``beta1`` of ``1.5``, a parameter in two groups, ...) is refused
with MindSpore's message before any backend runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from msadam.parity.errors import InputError
from msadam.parity.scenarios import (
    LR_KINDS,
    PARAM_KEYS,
    SCENARIO_KEYS,
    SCHEDULES,
    TARGETS,
    Scenario,
    param,
    scenario,
)

__all__ = ["MAX_STEPS", "load_scenario_file", "validate_scenario"]

MAX_STEPS = 1_000_000
GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization", "order_params")
SPARSE_KEYS = ("params", "rows", "repeat", "cover")


def load_scenario_file(path: str | Path) -> Scenario:
    """Read, check and complete the scenario in the JSON file ``path``.

    A bad file raises [`InputError`][msadam.parity.InputError].
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read scenario file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"scenario file {str(path)!r} is not valid JSON: {exc.msg} "
                         f"(line {exc.lineno}, column {exc.colno})") from None
    return validate_scenario(document, source=f"scenario file {str(path)!r}", default_name=path.stem)


def _fail(source: str, where: str, message: str) -> InputError:
    return InputError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_keys(obj: Any, allowed: tuple[str, ...], source: str, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(source, where, f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise _fail(source, where, f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
    return obj


def _check_params(raw: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _fail(source, "params", "must be a non-empty list of {\"name\": ..., \"shape\": [...]} objects")
    params, seen = [], set()
    for i, entry in enumerate(raw):
        where = f"params[{i}]"
        entry = _check_keys(entry, PARAM_KEYS, source, where)
        name, shape = entry.get("name"), entry.get("shape")
        if not isinstance(name, str) or not name:
            raise _fail(source, f"{where}.name", "must be a non-empty string")
        if name in seen:
            raise _fail(source, f"{where}.name", f"{name!r} is used twice")
        seen.add(name)
        if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 1 for d in shape):
            raise _fail(source, f"{where}.shape", f"must be a non-empty list of positive integers, got {shape!r}")
        init_seed = entry.get("init_seed", i)
        if not _is_int(init_seed) or init_seed < 0:
            raise _fail(source, f"{where}.init_seed", f"must be an integer >= 0, got {init_seed!r}")
        if entry.get("dtype", "float32") != "float32":
            raise _fail(source, f"{where}.dtype", f"only 'float32' is supported, got {entry['dtype']!r}")
        grad_scale = entry.get("grad_scale", 1.0)
        if not _is_number(grad_scale) or grad_scale <= 0:
            raise _fail(source, f"{where}.grad_scale", f"must be a finite number > 0, got {grad_scale!r}")
        params.append(param(name, shape, init_seed, float(grad_scale)))
    return params


def _check_rate(spec: Any, steps: int, source: str, where: str) -> None:
    """A learning rate or weight decay: a number, or ``{"kind": ..., ...}``."""
    if not isinstance(spec, dict):
        if not isinstance(spec, bool) and not _is_number(spec):
            raise _fail(source, where, f"must be a number or a {{\"kind\": ...}} object, got {spec!r}")
        return
    kind = spec.get("kind")
    if kind not in LR_KINDS:
        raise _fail(source, f"{where}.kind", f"unknown kind {kind!r}; known: {', '.join(LR_KINDS)}")
    if kind in SCHEDULES:
        _check_keys(spec, ("kind", "args"), source, where)
        if not isinstance(spec.get("args"), dict):
            raise _fail(source, f"{where}.args", f"{kind} needs its constructor's arguments as an object")
    elif kind in ("tensor1d", "list"):
        _check_keys(spec, ("kind", "values"), source, where)
        values = spec.get("values")
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise _fail(source, f"{where}.values", "must be a list of numbers, one per step")
        if len(values) < steps:
            raise _fail(source, f"{where}.values", f"has {len(values)} values for {steps} steps "
                        "(MindSpore fails when a step runs past the end)")
    else:
        _check_keys(spec, ("kind", "value"), source, where)
        if not _is_number(spec.get("value")):
            raise _fail(source, f"{where}.value", f"must be a number, got {spec.get('value')!r}")


def _check_groups(groups: Any, names: set[str], steps: int, source: str) -> None:
    if groups is None:
        return
    if not isinstance(groups, list) or not groups:
        raise _fail(source, "groups", "must be null or a non-empty list of group objects")
    for i, group in enumerate(groups):
        where = f"groups[{i}]"
        group = _check_keys(group, GROUP_KEYS, source, where)
        key = "order_params" if "order_params" in group else "params"
        members = group.get(key)
        if not isinstance(members, list) or not all(isinstance(n, str) for n in members):
            raise _fail(source, f"{where}.{key}", "must be a list of parameter names")
        unknown = [n for n in members if n not in names]
        if unknown:
            raise _fail(source, f"{where}.{key}", f"unknown parameter(s) {unknown}; the parameters are {sorted(names)}")
        for rate in ("lr", "weight_decay"):
            if rate in group:
                _check_rate(group[rate], steps, source, f"{where}.{rate}")
        if "grad_centralization" in group and not isinstance(group["grad_centralization"], bool):
            raise _fail(source, f"{where}.grad_centralization", "must be true or false")


def _check_sparse(sparse: Any, params: list[dict[str, Any]], source: str) -> None:
    if sparse is None:
        return
    sparse = _check_keys(sparse, SPARSE_KEYS, source, "sparse")
    shapes = {p["name"]: p["shape"] for p in params}
    names = sparse.get("params")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(source, "sparse.params", "must be a non-empty list of parameter names")
    unknown = [n for n in names if n not in shapes]
    if unknown:
        raise _fail(source, "sparse.params", f"unknown parameter(s) {unknown}; the parameters are {sorted(shapes)}")
    rows = sparse.get("rows")
    if not _is_int(rows) or rows < 1:
        raise _fail(source, "sparse.rows", f"must be an integer >= 1 (gradient rows per step), got {rows!r}")
    for flag in ("repeat", "cover"):
        if not isinstance(sparse.setdefault(flag, flag == "repeat"), bool):
            raise _fail(source, f"sparse.{flag}", "must be true or false")
    if not sparse["repeat"] and not sparse["cover"]:
        short = [n for n in names if shapes[n][0] < rows]
        if short:
            raise _fail(source, "sparse.rows", f"{rows} distinct rows do not fit in {short} (set \"repeat\": true)")


def validate_scenario(document: Any, source: str = "scenario", default_name: str = "custom") -> Scenario:
    """``document`` checked and completed with the defaults.

    [`InputError`][msadam.parity.InputError] names the first problem.
    """
    document = _check_keys(document, SCENARIO_KEYS, source, "")
    if "params" not in document:
        raise _fail(source, "", "'params' is required: a list of {\"name\": ..., \"shape\": [...]} objects")
    name = document.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise _fail(source, "name", "must be a non-empty string")
    params = _check_params(document["params"], source)
    scen = scenario(name, params, **{k: v for k, v in document.items() if k not in ("name", "params")})
    for key, low, high in (("steps", 1, MAX_STEPS), ("seed", 0, 2**63 - 1)):
        if not _is_int(scen[key]) or not low <= scen[key] <= high:
            raise _fail(source, key, f"must be an integer in [{low}, {high}], got {scen[key]!r}")
    for key in ("use_nesterov", "use_amsgrad", "use_lazy", "use_offload", "unique"):
        if not isinstance(scen[key], bool):
            raise _fail(source, key, f"must be true or false, got {scen[key]!r}")
    if scen["target"] not in TARGETS:
        raise _fail(source, "target", f"must be one of {', '.join(TARGETS)}, got {scen['target']!r}")
    _check_rate(scen["learning_rate"], scen["steps"], source, "learning_rate")
    _check_rate(scen["weight_decay"], scen["steps"], source, "weight_decay")
    _check_groups(scen["groups"], {p["name"] for p in params}, scen["steps"], source)
    _check_sparse(scen["sparse"], params, source)
    _dry_run(scen, source)
    return scen


def _dry_run(scen: Scenario, source: str) -> None:
    """Build the optimizer once with msadam (MindSpore's own checks, MindSpore's messages)."""
    from msadam.parity.run import build_optimizer, msadam_library

    try:
        build_optimizer(scen, msadam_library("numpy"))
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise _fail(source, "", f"mindspore.nn.Adam refuses it: {type(exc).__name__}: {message}") from None
