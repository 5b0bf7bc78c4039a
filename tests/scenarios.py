"""Parity scenarios: a JSON-able description of one Adam run, its gradients, and how to run it.

A *scenario* is a plain dict (it is stored verbatim in the golden fixtures)::

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

``LR`` is ``{"kind": K, ...}`` with ``K`` one of :data:`LR_KINDS`: ``float``/``int`` (``value``),
``tensor0d`` (``value``), ``tensor1d``/``list`` (``values``, one per step) or a schedule name with
``args`` (MindSpore's constructor keywords). ``WD`` is a number or a schedule spec (dynamic decay).

Gradients are an open-loop NumPy stream drawn from ``seed`` (:func:`gradient_stream`). :func:`run`
drives any implementation spelled as a :class:`Library` (msadam's here, MindSpore's in the recorder)
into a *trajectory*: ``param/``, ``moment1/``, ``moment2/``, ``vhat/`` (AMSGrad) and ``lr/<name>``,
``beta1_power``, ``beta2_power``, ``global_step``, each stacked over steps (state after each step).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Scenario = dict[str, Any]
Trajectory = dict[str, np.ndarray]

SCHEDULES = ("ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR", "CosineDecayLR",
             "PolynomialDecayLR", "WarmUpLR")
LR_KINDS = ("float", "int", "tensor0d", "tensor1d", "list", *SCHEDULES)
TARGETS = ("default", "CPU", "GPU", "Ascend")
DEFAULT_STEPS = 50
TINY = float(np.finfo(np.float32).tiny)

_DEFAULTS: Scenario = {
    "seed": 0, "steps": DEFAULT_STEPS, "groups": None, "learning_rate": {"kind": "float", "value": 1e-3},
    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "loss_scale": 1.0, "use_nesterov": False,
    "use_amsgrad": False, "use_lazy": False, "use_offload": False, "sparse": None, "target": "default",
    "unique": True}


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
    assert kind in SCHEDULES, kind
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
_WD_SCHEDULE = schedule("ExponentialDecayLR", learning_rate=0.05, decay_rate=0.8, decay_steps=5)


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
    """Every MindSpore behaviour the parity suite pins, one small scenario each."""
    lr = lr_spec("float")
    gc_groups = [{"params": ["conv1.weight", "conv2.weight", "fc.weight"], "grad_centralization": True,
                  "weight_decay": 0.02},
                 {"params": ["fc.bias"], "lr": 0.005}]
    found = [
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


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SparseGradient:
    """A row-sparse gradient: ``dense[indices[i]] += values[i]``."""

    indices: np.ndarray
    values: np.ndarray
    dense_shape: tuple[int, ...]


Gradient = np.ndarray | SparseGradient


def initial_values(scen: Scenario) -> dict[str, np.ndarray]:
    """The initial value of every parameter, by name."""
    return {p["name"]: np.random.default_rng(p["init_seed"]).standard_normal(p["shape"]).astype(p["dtype"])
            for p in scen["params"]}


def _sparse_indices(rng: np.random.Generator, n_rows: int, cfg: dict[str, Any]) -> np.ndarray:
    rows = cfg["rows"]
    if cfg.get("cover"):
        indices = np.concatenate([rng.permutation(n_rows), rng.integers(0, n_rows, rows)])
    elif cfg["repeat"]:
        indices = rng.integers(0, n_rows, rows)
        indices[-1] = indices[0]  # at least one repeated row, every step
    else:
        indices = rng.choice(n_rows, rows, replace=False)
    return indices.astype(np.int32)


def gradient_stream(scen: Scenario) -> list[dict[str, Gradient]]:
    """Every step's gradients by parameter name (multiplied by the loss scale, as a scaled loss gives)."""
    rng = np.random.default_rng(scen["seed"])
    sparse = set(scen["sparse"]["params"]) if scen["sparse"] else set()
    scale = float(scen["loss_scale"])
    stream = []
    for _ in range(scen["steps"]):
        grads: dict[str, Gradient] = {}
        for p in scen["params"]:
            shape, factor = tuple(p["shape"]), p["grad_scale"] * scale
            if p["name"] in sparse:
                indices = _sparse_indices(rng, shape[0], scen["sparse"])
                values = (rng.standard_normal((indices.size, *shape[1:])) * factor).astype(p["dtype"])
                grads[p["name"]] = SparseGradient(indices, values, shape)
            else:
                grads[p["name"]] = (rng.standard_normal(shape) * factor).astype(p["dtype"])
        stream.append(grads)
    return stream


def inputs_digest(scen: Scenario) -> str:
    """SHA-256 of the initial values and gradients: a fixture is replayed only on the very same inputs."""
    digest = hashlib.sha256()
    for array in initial_values(scen).values():
        digest.update(array.tobytes())
    for grads in gradient_stream(scen):
        for grad in grads.values():
            parts = (grad.indices, grad.values) if isinstance(grad, SparseGradient) else (grad,)
            for part in parts:
                digest.update(part.tobytes())
    return digest.hexdigest()


def to_json(scen: Scenario) -> str:
    return json.dumps(scen, sort_keys=True)


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Library:
    """How one implementation spells what a scenario needs (msadam's public API, or MindSpore's)."""

    adam: Callable[..., Any]
    parameter: Callable[[np.ndarray, str], Any]
    tensor: Callable[[np.ndarray], Any]
    schedules: Any  # a namespace holding the six schedule classes under MindSpore's names
    gradient: Callable[[Gradient], Any]


def hyper_value(spec: Any, lib: Library) -> Any:
    """A learning rate or weight decay object from its spec (plain numbers pass through, int stays int)."""
    if not isinstance(spec, dict):
        return spec
    kind = spec["kind"]
    if kind in SCHEDULES:
        return getattr(lib.schedules, kind)(**spec["args"])
    return {
        "float": lambda: float(spec["value"]), "int": lambda: int(spec["value"]),
        "tensor0d": lambda: lib.tensor(np.array(spec["value"], np.float32)),
        "tensor1d": lambda: lib.tensor(np.array(spec["values"], np.float32)),
        "list": lambda: [float(v) for v in spec["values"]],
    }[kind]()


def build_optimizer(scen: Scenario, lib: Library) -> Any:
    """``lib.adam`` configured as the scenario says (targets are set by the caller)."""
    init = initial_values(scen)
    params = {name: lib.parameter(value, name) for name, value in init.items()}
    if scen["groups"] is None:
        arg: list[Any] = list(params.values())
    else:
        arg = []
        for group in scen["groups"]:
            key = "order_params" if "order_params" in group else "params"
            built = {k: hyper_value(v, lib) for k, v in group.items() if k not in ("params", "order_params")}
            arg.append({key: [params[n] for n in group[key]], **built})
    kwargs = {k: scen[k] for k in ("beta1", "beta2", "eps", "use_nesterov", "use_amsgrad", "loss_scale")}
    extra = {k: True for k in ("use_lazy", "use_offload") if scen[k]}
    return lib.adam(arg, learning_rate=hyper_value(scen["learning_rate"], lib),
                    weight_decay=hyper_value(scen["weight_decay"], lib), **kwargs, **extra)


def _value(x: Any) -> np.ndarray:
    return np.array(x.asnumpy() if hasattr(x, "asnumpy") else x, copy=True)


def freeze_lr(lr: Any) -> Any:
    """A copy of ``opt.get_lr()``'s value(s), taken before the step changes anything."""
    return tuple(map(_value, lr)) if isinstance(lr, tuple | list) else _value(lr)


def lr_by_name(lr: Any, names: Sequence[str]) -> dict[str, np.float32]:
    """``opt.get_lr()`` (one value, or one per parameter in optimizer order) as a value per name."""
    values = list(lr) if isinstance(lr, tuple | list) else [lr] * len(names)
    return {name: np.float32(_value(v).reshape(-1)[0]) for name, v in zip(names, values, strict=True)}


def snapshot(opt: Any, amsgrad: bool) -> dict[str, np.ndarray]:
    """The optimizer state after a step (``param``, moments, ``vhat``, beta powers, global step)."""
    state = {"beta1_power": _value(opt.beta1_power), "beta2_power": _value(opt.beta2_power),
             "global_step": _value(opt.global_step)}
    slots = {"param": opt.parameters, "moment1": opt.moment1, "moment2": opt.moment2}
    if amsgrad:
        slots["vhat"] = opt.vhat
    for i, p in enumerate(opt.parameters):
        state.update({f"{slot}/{p.name}": _value(values[i]) for slot, values in slots.items()})
    return state


Stepper = Callable[[tuple[Gradient, ...]], Any]


def run(scen: Scenario, opt: Any, step: Stepper) -> Trajectory:
    """Drive ``opt`` through the scenario's gradients; ``step(grads)`` returns the step's ``get_lr()``."""
    names = [p.name for p in opt.parameters]
    frames = []
    for grads in gradient_stream(scen):
        lr = lr_by_name(step(tuple(grads[n] for n in names)), names)
        frames.append({**snapshot(opt, scen["use_amsgrad"]), **{f"lr/{n}": v for n, v in lr.items()}})
    return {key: np.stack([np.asarray(f[key]) for f in frames]) for key in frames[0]}


def msadam_library(backend: str = "numpy") -> Library:
    """msadam's public API, with parameters on ``backend``."""
    import msadam

    def gradient(g: Gradient) -> Any:
        return msadam.RowTensor(g.indices, g.values, g.dense_shape) if isinstance(g, SparseGradient) else g

    return Library(adam=msadam.Adam, parameter=lambda a, n: msadam.Parameter(a, name=n, backend=backend),
                   tensor=msadam.Tensor, schedules=msadam, gradient=gradient)


def run_msadam(scen: Scenario, backend: str = "numpy") -> Trajectory:
    """The scenario's trajectory through msadam's public API on ``backend``."""
    lib = msadam_library(backend)
    opt = build_optimizer(scen, lib)
    if scen["target"] != "default":
        opt.target = scen["target"]
    opt.unique = scen["unique"]

    def step(grads: tuple[Gradient, ...]) -> Any:
        lr = freeze_lr(opt.get_lr())
        opt(tuple(lib.gradient(g) for g in grads))
        return lr

    return run(scen, opt, step)


# ----------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Mismatch:
    """The worst relative error between two trajectories, and where it is."""

    error: float
    key: str
    step: int

    def __str__(self) -> str:
        return f"{self.error:.3e} at {self.key!r} step {self.step}"


def compare(expected: Trajectory, actual: Trajectory) -> Mismatch:
    """Worst ``max|a - e| / max(max|e|, tiny)`` over arrays and steps (``inf`` if keys or shapes differ)."""
    if set(expected) != set(actual):
        return Mismatch(float("inf"), f"keys differ: {sorted(set(expected) ^ set(actual))}", -1)
    worst = Mismatch(0.0, "", -1)
    for key in sorted(expected):
        e, a = np.asarray(expected[key], np.float64), np.asarray(actual[key], np.float64)
        if e.shape != a.shape:
            return Mismatch(float("inf"), f"{key}: shape {a.shape} != {e.shape}", -1)
        axes = tuple(range(1, e.ndim))
        diff = np.abs(a - e).max(axis=axes) if axes else np.abs(a - e)
        scale = np.maximum(np.abs(e).max(axis=axes) if axes else np.abs(e), TINY)
        rel = np.where(np.isnan(diff), np.inf, diff / scale)
        step = int(np.argmax(rel))
        if rel[step] > worst.error:
            worst = Mismatch(float(rel[step]), key, step)
    return worst


# ----------------------------------------------------------------------------- fixtures

FIXTURE_DIR = Path(__file__).parent / "golden" / "trajectories"


@dataclass(frozen=True)
class Fixture:
    """A golden trajectory recorded from MindSpore, with the scenario and inputs that produced it."""

    scenario: Scenario
    trajectory: Trajectory
    mindspore_version: str
    inputs_digest: str


def save_fixture(path: Path, fixture: Fixture) -> None:
    """Write a fixture as a compressed ``.npz`` (float32 arrays, the scenario as JSON text)."""
    payload: dict[str, Any] = {f"traj/{k}": v.astype(np.int32 if k == "global_step" else np.float32)
                               for k, v in fixture.trajectory.items()}
    payload["scenario"] = np.array(to_json(fixture.scenario))
    payload["mindspore_version"] = np.array(fixture.mindspore_version)
    payload["inputs_digest"] = np.array(fixture.inputs_digest)
    np.savez_compressed(path, **payload)


def load_fixture(path: Path) -> Fixture:
    with np.load(path, allow_pickle=False) as data:
        traj = {k.removeprefix("traj/"): data[k] for k in data.files if k.startswith("traj/")}
        return Fixture(json.loads(str(data["scenario"])), traj, str(data["mindspore_version"]),
                       str(data["inputs_digest"]))


def fixture_paths() -> list[Path]:
    return sorted(FIXTURE_DIR.glob("*.npz"))
