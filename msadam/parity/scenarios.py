"""Parity scenarios: a JSON-able description of one Adam run, the named ones, and random mixes.

A *scenario* is a plain dict (stored verbatim in trajectory records and the golden fixtures)::

    {"name": "plain", "seed": 0, "steps": 50,
     "params": [{"name": "w", "shape": [3, 4], "init_seed": 1, "dtype": "float32", "grad_scale": 1.0}],
     "groups": None,               # or [{"params": ["w"], "lr": LR, "weight_decay": WD,
                                   #      "grad_centralization": True}, {"order_params": ["w", ...]}]
     "learning_rate": LR, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
     "weight_decay": WD, "loss_scale": 1.0,
     "use_nesterov": False, "use_amsgrad": False, "use_lazy": False, "use_offload": False,
     "sparse": None,               # or {"params": ["emb"], "rows": 6, "repeat": True, "cover": False}
     "target": "default",          # 'default' (never assigned) | 'CPU' | 'GPU' | 'Ascend'
     "unique": True}
SCENARIO_KEYS = ("name", "params", *_DEFAULTS)
PARAM_KEYS = ("name", "shape", "init_seed", "dtype", "grad_scale")

``LR`` is a number or ``{"kind": K, ...}`` with ``K`` one of :data:`LR_KINDS`: ``float``/``int``
(``value``), ``tensor0d`` (``value``), ``tensor1d``/``list`` (``values``, one per step) or a
schedule name with ``args`` (MindSpore's constructor keywords). ``WD`` is a number or a schedule
spec (dynamic decay). Gradients are drawn from ``seed`` (:mod:`msadam.parity.run`); initial values
from each parameter's ``init_seed``; ``sparse`` parameters get row-sparse gradients of ``rows``
rows (``repeat``: at least one row index repeated each step; ``cover``: every row touched).

:func:`named_scenarios` pins one MindSpore behaviour each (``default`` is what ``msadam parity``
runs without arguments); :func:`random_scenario` mixes every feature from a seed. Scenarios from a
user's file are checked by :mod:`msadam.parity.scenario_file`. Importing this module imports NumPy only.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from msadam.parity.errors import InputError

__all__ = [
    "DEFAULT_SCENARIO",
    "DEFAULT_STEPS",
    "LR_KINDS",
    "PARAM_KEYS",
    "SCENARIO_KEYS",
    "SCHEDULES",
    "TARGETS",
    "Scenario",
    "describe",
    "get_scenario",
    "lr_spec",
    "named_scenarios",
    "param",
    "random_scenario",
    "scenario",
    "schedule",
    "to_json",
]

Scenario = dict[str, Any]

SCHEDULES = ("ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR", "CosineDecayLR",
             "PolynomialDecayLR", "WarmUpLR")
LR_KINDS = ("float", "int", "tensor0d", "tensor1d", "list", *SCHEDULES)
TARGETS = ("default", "CPU", "GPU", "Ascend")
DEFAULT_STEPS = 50
DEFAULT_SCENARIO = "default"

# Every key of a complete scenario besides ``name`` and ``params``, with its default.
_DEFAULTS: Scenario = {
    "seed": 0, "steps": DEFAULT_STEPS, "groups": None, "learning_rate": {"kind": "float", "value": 1e-3},
    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "loss_scale": 1.0, "use_nesterov": False,
    "use_amsgrad": False, "use_lazy": False, "use_offload": False, "sparse": None, "target": "default",
    "unique": True}
SCENARIO_KEYS = ("name", "params", *_DEFAULTS)
PARAM_KEYS = ("name", "shape", "init_seed", "dtype", "grad_scale")


def param(name: str, shape: Sequence[int], init_seed: int, grad_scale: float = 1.0) -> dict[str, Any]:
    """One parameter of a scenario (float32, standard-normal initial value from ``init_seed``)."""
    return {"name": name, "shape": list(shape), "init_seed": init_seed, "dtype": "float32",
            "grad_scale": grad_scale}


def scenario(name: str, params: list[dict[str, Any]], **options: Any) -> Scenario:
    """A complete scenario: :data:`_DEFAULTS` overridden by ``options`` (unknown keys are an error)."""
    if set(options) - set(_DEFAULTS):
        raise KeyError(f"unknown scenario keys {sorted(set(options) - set(_DEFAULTS))}")
    return {"name": name, "params": params, **copy.deepcopy(_DEFAULTS), **options}


def schedule(kind: str, **args: Any) -> dict[str, Any]:
    """A learning-rate schedule spec (also usable as a dynamic weight decay)."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; known: {', '.join(SCHEDULES)}")
    return {"kind": kind, "args": args}


def lr_spec(kind: str, steps: int = DEFAULT_STEPS, seed: int = 0) -> dict[str, Any]:
    """A representative learning rate of each kind in :data:`LR_KINDS`."""
    values = [round(0.05 * 0.93**i * (1 + 0.5 * np.sin(i + seed)), 6) for i in range(steps)]
    fixed: dict[str, dict[str, Any]] = {
        "float": {"kind": "float", "value": 0.01}, "int": {"kind": "int", "value": 1},
        "tensor0d": {"kind": "tensor0d", "value": 0.02},
        "tensor1d": {"kind": "tensor1d", "values": values}, "list": {"kind": "list", "values": values},
        "ExponentialDecayLR": schedule("ExponentialDecayLR", learning_rate=0.1, decay_rate=0.9, decay_steps=4,
                                       is_stair=True),
        "NaturalExpDecayLR": schedule("NaturalExpDecayLR", learning_rate=0.1, decay_rate=0.1, decay_steps=3,
                                      is_stair=True),
        "InverseDecayLR": schedule("InverseDecayLR", learning_rate=0.1, decay_rate=0.5, decay_steps=4),
        "CosineDecayLR": schedule("CosineDecayLR", min_lr=0.001, max_lr=0.1, decay_steps=steps // 2),
        "PolynomialDecayLR": schedule("PolynomialDecayLR", learning_rate=0.1, end_learning_rate=0.001,
                                      decay_steps=steps // 3, power=2.0, update_decay_steps=True),
        "WarmUpLR": schedule("WarmUpLR", learning_rate=0.1, warmup_steps=10),
    }
    return fixed[kind]


# ----------------------------------------------------------------------------- named scenarios

_BASE = [param("w", (3, 4), 1), param("b", (4,), 2, grad_scale=0.01), param("conv.k", (2, 3, 2), 3)]
_NORM = [param("layer.weight", (3, 4), 4), param("bn.beta", (4,), 5), param("bn.gamma", (4,), 6),
         param("fc.bias", (2,), 7)]
_CONV = [param("conv1.weight", (2, 16), 8), param("conv2.weight", (1, 16, 2), 9),
         param("fc.weight", (3, 8), 10), param("fc.bias", (5,), 11)]
_SPARSE = [param("emb.table", (10, 4), 12), param("dense.w", (3, 2), 13)]
# ``default``: what ``msadam parity`` runs with no arguments, a ported training script in miniature:
# no decay on biases and norms (a group), a cosine schedule, a static loss scale, and an embedding
# whose gradient arrives as rows (MindSpore's default sparse path, repeated indices).
_NET = [param("encoder.embedding", (24, 4), 40), param("dense.weight", (8, 4), 41),
        param("dense.bias", (8,), 42, grad_scale=0.1), param("norm.gamma", (8,), 43), param("norm.beta", (8,), 44)]
_WD_SCHEDULE = schedule("ExponentialDecayLR", learning_rate=0.05, decay_rate=0.8, decay_steps=5)
# Long runs whose float32 beta powers underflow. ``power *= beta`` in float32 goes subnormal, then
# either reaches 0 (beta <= 1/2: half the smallest subnormal rounds to even, 0) or stops at the
# smallest subnormal 2**-149 (beta > 1/2: ``2**-149 * beta`` rounds back to it). With beta1 = 0.5,
# beta2 = 0.6: beta1_power is subnormal from step 127 and 0 from step 150; beta2_power subnormal from
# step 171 and 2**-149 from step 202 on. With 0.3 and 0.45 both reach 0 (steps 87 and 130). MindSpore
# keeps the subnormal powers (its CPU Adam kernel flushes subnormal moments on an optimizer's first
# step, so these gradients keep the moments normal).
_UNDERFLOW = [param("w", (3, 4), 50), param("b", (4,), 51, grad_scale=0.01), param("head.w", (2, 5), 52)]


def _sparse(target: str, lazy: bool, nesterov: bool, unique: bool = True) -> Scenario:
    # CPU + Nesterov + not lazy: FusedSparseAdam moves untouched rows with a stale workspace (undefined),
    # so that case touches every row each step ("cover"), where MindSpore is well defined.
    cover = target == "CPU" and nesterov and not lazy
    name = f"sparse-{target}-{'lazy' if lazy else 'dense'}{'-nesterov' if nesterov else ''}"
    return scenario(
        name + ("" if unique else "-nounique"), _SPARSE, seed=20, learning_rate=lr_spec("float"),
        weight_decay=0.01, loss_scale=4.0, use_nesterov=nesterov, use_lazy=lazy,
        sparse={"params": ["emb.table"], "rows": 6, "repeat": True, "cover": cover},
        target=target, unique=unique,
    )


def named_scenarios() -> list[Scenario]:
    """Every MindSpore behaviour the parity suite pins, one small scenario each (``default`` first)."""
    lr = lr_spec("float")
    gc_groups = [{"params": ["conv1.weight", "conv2.weight", "fc.weight"], "grad_centralization": True,
                  "weight_decay": 0.02},
                 {"params": ["fc.bias"], "lr": 0.005}]
    found = [
        scenario(DEFAULT_SCENARIO, _NET, seed=40, steps=100, loss_scale=1024.0,
                 learning_rate=schedule("CosineDecayLR", min_lr=1e-4, max_lr=0.01, decay_steps=100),
                 groups=[{"params": ["encoder.embedding", "dense.weight"], "weight_decay": 0.01},
                         {"params": ["dense.bias", "norm.gamma", "norm.beta"], "weight_decay": 0.0}],
                 sparse={"params": ["encoder.embedding"], "rows": 8, "repeat": True, "cover": False}),
        scenario("plain", _BASE, seed=1, learning_rate=lr),
        scenario("nesterov", _BASE, seed=2, learning_rate=lr, use_nesterov=True),
        scenario("amsgrad", _BASE, seed=3, learning_rate=lr, use_amsgrad=True, beta2=0.9),
        scenario("amsgrad-nesterov", _BASE, seed=3, learning_rate=lr, use_amsgrad=True, use_nesterov=True,
                 beta2=0.9),
        scenario("eps-large", _BASE, seed=4, learning_rate=lr, eps=0.1, beta1=0.5, beta2=0.75),
        scenario("loss-scale-decay-beta-gamma", _NORM, seed=5, learning_rate=lr, weight_decay=0.01,
                 loss_scale=128.0),
        scenario("loss-scale-int-decay-int", _NORM, seed=6, learning_rate=lr, weight_decay=1, loss_scale=8),
        scenario("groups-fixed", _NORM, seed=7, learning_rate=lr, weight_decay=0.001, groups=[
            {"params": ["layer.weight", "bn.beta"], "lr": 0.02, "weight_decay": 0.05},
            {"params": ["fc.bias"], "weight_decay": 0.0},
            {"params": ["bn.gamma"], "lr": 0.001},
            {"order_params": ["fc.bias", "bn.gamma", "layer.weight", "bn.beta"]}]),
        scenario("groups-dynamic", _NORM, seed=8, learning_rate=lr_spec("PolynomialDecayLR"), loss_scale=2.0,
                 groups=[
            {"order_params": ["bn.gamma", "fc.bias", "layer.weight", "bn.beta"]},
            {"params": ["layer.weight"], "lr": lr_spec("tensor1d"), "weight_decay": _WD_SCHEDULE},
            {"params": ["bn.beta", "bn.gamma"], "lr": 0.03, "weight_decay": 0.1},
            {"params": ["fc.bias"]}]),
        # A fixed lr beside a dynamic one becomes MindSpore's _ConvertToCell: ``lr + 1.0 - 1.0`` in float32.
        scenario("groups-fixed-beside-dynamic-lr", _NORM, seed=15, learning_rate=0.001, groups=[
            {"params": ["layer.weight"], "lr": lr_spec("ExponentialDecayLR")},
            {"params": ["bn.beta", "bn.gamma"], "lr": 0.0003},
            {"params": ["fc.bias"]}]),
        scenario("dynamic-weight-decay", _NORM, seed=9, learning_rate=lr, weight_decay=_WD_SCHEDULE,
                 loss_scale=4.0),
        scenario("grad-centralization", _CONV, seed=10, learning_rate=lr, loss_scale=16.0, groups=gc_groups),
        scenario("offload", _BASE, seed=11, learning_rate=lr, use_offload=True, weight_decay=0.01),
        scenario("offload-nesterov-skips-centralization", _CONV, seed=12, learning_rate=lr, use_offload=True,
                 use_nesterov=True, loss_scale=16.0, groups=gc_groups),
        scenario("lazy-dense", _BASE, seed=13, learning_rate=lr, use_lazy=True, weight_decay=0.01),
        scenario("lazy-dense-nesterov", _BASE, seed=14, learning_rate=lr_spec("WarmUpLR"), use_lazy=True,
                 use_nesterov=True),
    ]
    found += [scenario(f"lr-{k}", _BASE, seed=30 + i, learning_rate=lr_spec(k))
              for i, k in enumerate(LR_KINDS)]
    flags = (False, True)
    found += [_sparse(t, lazy, nest) for t in ("default", "CPU", "GPU") for lazy in flags for nest in flags]
    found += [_sparse("GPU", lazy, False, unique=False) for lazy in (False, True)]
    found += [_sparse("Ascend", False, True)]
    found += [
        scenario("beta-power-underflow", _UNDERFLOW, seed=50, steps=250, learning_rate=lr, beta1=0.5, beta2=0.6),
        scenario("beta-power-underflow-to-zero", _UNDERFLOW, seed=51, steps=160, learning_rate=lr, beta1=0.3,
                 beta2=0.45, use_nesterov=True, weight_decay=0.01, loss_scale=8.0),
    ]
    return found


# ----------------------------------------------------------------------------- random scenarios

_NAME_POOL = ("conv.weight", "fc.w", "bn.gamma", "ln.beta", "emb.table", "head.bias", "gamma_proj",
              "out.kernel")


def _random_lr(rng: random.Random, steps: int) -> dict[str, Any]:
    kind = rng.choice(LR_KINDS)
    if kind not in SCHEDULES:
        return lr_spec(kind, steps, seed=rng.randrange(100))
    lr0 = rng.choice([0.1, 0.03, 0.01])
    args: dict[str, dict[str, Any]] = {
        "ExponentialDecayLR": {"learning_rate": lr0, "decay_rate": rng.choice([0.9, 0.5]),
                               "decay_steps": rng.randint(1, 8), "is_stair": rng.random() < 0.5},
        "CosineDecayLR": {"min_lr": lr0 / 100, "max_lr": lr0, "decay_steps": rng.randint(1, steps)},
        "PolynomialDecayLR": {"learning_rate": lr0, "end_learning_rate": lr0 / 50,
                              "decay_steps": rng.randint(1, steps), "power": rng.choice([0.5, 1.0, 3.0]),
                              "update_decay_steps": rng.random() < 0.5},
        "WarmUpLR": {"learning_rate": lr0, "warmup_steps": rng.randint(1, steps)},
    }
    args["NaturalExpDecayLR"] = args["InverseDecayLR"] = {**args["ExponentialDecayLR"], "decay_rate": 0.2}
    return schedule(kind, **args[kind])


def _random_wd(rng: random.Random) -> Any:
    dynamic = schedule("InverseDecayLR", learning_rate=0.05, decay_rate=0.3, decay_steps=rng.randint(1, 6),
                       is_stair=rng.random() < 0.5)
    return rng.choice([0.0, 0.0, 0.01, 0.1, 1, dynamic])


def random_scenario(seed: int, steps: int = DEFAULT_STEPS) -> Scenario:
    """A valid scenario mixing every feature, drawn from ``seed`` (``random.Random``, stable everywhere)."""
    rng = random.Random(seed)
    names = rng.sample(_NAME_POOL, rng.randint(2, 4))
    params = []
    for i, name in enumerate(names):
        shape = rng.choice([(rng.randint(1, 3), 16), (2, 16, rng.randint(1, 2)), (rng.randint(3, 8), 3), (5,),
                            (4, rng.randint(1, 5))])
        params.append(param(name, shape, 100 * seed + i, grad_scale=rng.choice([1e-3, 1.0, 1.0, 30.0])))
    options: Scenario = {
        "seed": seed, "steps": steps, "learning_rate": _random_lr(rng, steps),
        "beta1": rng.choice([0.9, 0.8, 0.5]), "beta2": rng.choice([0.999, 0.99, 0.9]),
        "eps": rng.choice([1e-8, 1e-6, 1e-3, 0.1]), "weight_decay": _random_wd(rng),
        "loss_scale": rng.choice([1.0, 1.0, 1024.0, 4]), "use_nesterov": rng.random() < 0.4,
        "target": rng.choice(TARGETS), "unique": rng.random() < 0.7,
    }
    mode = rng.choice(["amsgrad", "lazy", "lazy", "offload", "plain", "plain"])
    for flag in ("amsgrad", "lazy", "offload"):
        options[f"use_{flag}"] = mode == flag
    if rng.random() < 0.6:
        pool = names[:]
        rng.shuffle(pool)
        cuts = sorted(rng.sample(range(1, len(pool)), rng.randint(0, len(pool) - 1)))
        groups: list[dict[str, Any]] = []
        for lo, hi in zip([0, *cuts], [*cuts, len(pool)], strict=True):
            group: dict[str, Any] = {"params": pool[lo:hi]}
            if rng.random() < 0.5:
                group["lr"] = _random_lr(rng, steps)
            if rng.random() < 0.5:
                group["weight_decay"] = _random_wd(rng)
            if rng.random() < 0.5:
                group["grad_centralization"] = rng.random() < 0.7
            groups.append(group)
        if rng.random() < 0.6:
            order = names[:]
            rng.shuffle(order)
            groups.insert(rng.choice([0, len(groups)]), {"order_params": order})
        options["groups"] = groups
    if mode in ("lazy", "plain") and rng.random() < 0.8:
        if not any(len(p["shape"]) >= 2 and p["shape"][0] >= 3 for p in params):
            params[0]["shape"] = [rng.randint(4, 10), rng.choice([2, 4, 16])]
        rows_ok = [p["name"] for p in params if len(p["shape"]) >= 2 and p["shape"][0] >= 3]
        table = next(p for p in params if p["name"] == rows_ok[0])
        options["sparse"] = {"params": rows_ok[: rng.randint(1, len(rows_ok))], "rows": rng.randint(1, 6),
                             "repeat": rng.random() < 0.7, "cover": False}
        if options["target"] == "CPU" and mode == "plain":
            options["use_nesterov"] = False  # MindSpore's FusedSparseAdam Nesterov form is undefined there
        if not options["sparse"]["repeat"]:
            options["sparse"]["rows"] = min(options["sparse"]["rows"], table["shape"][0])
        for group in options.get("groups") or []:
            if set(group.get("params", ())) & set(options["sparse"]["params"]):
                group.pop("grad_centralization", None)  # MindSpore: F.shape(RowTensor) fails in that path
    return scenario(f"random-{seed:04d}", params, **options)




# ----------------------------------------------------------------------------- naming and describing


def get_scenario(name: str) -> Scenario:
    """The named scenario ``name`` (see [`named_scenarios`][msadam.parity.named_scenarios]);
    [`InputError`][msadam.parity.InputError] lists the names."""
    found = {s["name"]: s for s in named_scenarios()}
    if name not in found:
        close = [n for n in found if name.lower() in n.lower()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InputError(f"unknown scenario {name!r}{hint}; 'msadam parity --list' shows the {len(found)} built-in "
                         "ones; or use --seed N or --scenario FILE")
    return found[name]


def to_json(scen: Scenario) -> str:
    """The scenario as canonical JSON text (sorted keys), as records store it."""
    return json.dumps(scen, sort_keys=True)


def _lr_name(spec: Any) -> str:
    if isinstance(spec, dict):
        kind = str(spec.get("kind"))
        return {"float": f"{spec.get('value')}", "int": f"{spec.get('value')}", "tensor0d": "0-d Tensor",
                "tensor1d": "1-D Tensor", "list": "list"}.get(kind, kind)
    return f"{spec}"


def describe(scen: Scenario) -> str:
    """One line summing a scenario up: parameters, groups, steps, learning rate, features, sparsity."""
    n, groups = len(scen["params"]), [g for g in scen.get("groups") or [] if "params" in g]
    parts = [f"{n} parameter{'s' * (n != 1)}" + (f" in {len(groups)} groups" if groups else ""),
             f"{scen['steps']} steps"]
    rates = {_lr_name(scen["learning_rate"])} if not groups or any("lr" not in g for g in groups) else set()
    rates |= {_lr_name(g["lr"]) for g in groups if "lr" in g}
    parts.append("lr " + "/".join(sorted(rates)))
    decays = [scen["weight_decay"], *(g["weight_decay"] for g in groups if "weight_decay" in g)]
    if any(isinstance(d, dict) for d in decays):
        parts.append("dynamic weight decay")
    elif any(d for d in decays):
        parts.append("weight decay")
    if scen["loss_scale"] != 1:
        parts.append(f"loss scale {scen['loss_scale']:g}")
    parts += [flag.removeprefix("use_") for flag in ("use_nesterov", "use_amsgrad", "use_lazy", "use_offload")
              if scen[flag]]
    if any(g.get("grad_centralization") for g in groups):
        parts.append("grad centralization")
    if scen["eps"] != 1e-8 or (scen["beta1"], scen["beta2"]) != (0.9, 0.999):
        parts.append(f"beta1={scen['beta1']:g} beta2={scen['beta2']:g} eps={scen['eps']:g}")
    if scen["sparse"]:
        unique = "" if scen["unique"] or scen["target"] not in ("GPU", "Ascend") else ", unique=False"
        parts.append(f"sparse {','.join(scen['sparse']['params'])} (target {scen['target']}{unique})")
    return ", ".join(parts)
