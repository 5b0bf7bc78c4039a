"""Running a scenario: its inputs (initial values, a gradient stream) and the trajectory it produces.

Gradients are an open-loop NumPy stream drawn from the scenario's ``seed`` (:func:`gradient_stream`),
multiplied by the loss scale as a scaled loss gives them. :func:`run` drives any implementation
spelled as a :class:`Library` (msadam's public API here, MindSpore's in :mod:`msadam.parity.oracle`)
into a *trajectory*: ``param/<name>``, ``moment1/``, ``moment2/``, ``vhat/`` (AMSGrad only),
``lr/<name>`` (the learning rate each step used), ``beta1_power``, ``beta2_power`` and
``global_step``, each stacked over steps (the state after each step). Importing this module imports
NumPy only; msadam's optimizer is imported by :func:`run_msadam`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from msadam.parity.scenarios import SCHEDULES, Scenario

__all__ = [
    "Gradient",
    "Library",
    "SparseGradient",
    "Stepper",
    "Trajectory",
    "build_optimizer",
    "freeze_lr",
    "gradient_stream",
    "hyper_value",
    "initial_values",
    "inputs_digest",
    "lr_by_name",
    "msadam_library",
    "run",
    "run_msadam",
    "snapshot",
]

Trajectory = dict[str, np.ndarray]


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


def run(scen: Scenario, opt: Any, step: Stepper, timings: list[float] | None = None,
        on_step: Callable[[int], None] | None = None) -> Trajectory:
    """Drive ``opt`` through the scenario's gradients; ``step(grads)`` returns the step's ``get_lr()``.

    ``timings``, when given, receives the wall time of each ``step`` call in seconds (the optimizer
    call as its caller sees it, gradient conversion included, snapshot excluded); ``on_step(i)`` is
    called after step ``i`` (1-based), for a progress bar.
    """
    names = [p.name for p in opt.parameters]
    frames = []
    for i, grads in enumerate(gradient_stream(scen), start=1):
        start = time.perf_counter()
        lr = step(tuple(grads[n] for n in names))
        if timings is not None:
            timings.append(time.perf_counter() - start)
        used = lr_by_name(lr, names)
        frames.append({**snapshot(opt, scen["use_amsgrad"]), **{f"lr/{n}": v for n, v in used.items()}})
        if on_step is not None:
            on_step(i)
    return {key: np.stack([np.asarray(f[key]) for f in frames]) for key in frames[0]}


def msadam_library(backend: str = "numpy") -> Library:
    """msadam's public API, with parameters on ``backend``."""
    import msadam

    def gradient(g: Gradient) -> Any:
        return msadam.RowTensor(g.indices, g.values, g.dense_shape) if isinstance(g, SparseGradient) else g

    return Library(adam=msadam.Adam, parameter=lambda a, n: msadam.Parameter(a, name=n, backend=backend),
                   tensor=msadam.Tensor, schedules=msadam, gradient=gradient)


def run_msadam(scen: Scenario, backend: str = "numpy", timings: list[float] | None = None,
               on_step: Callable[[int], None] | None = None) -> Trajectory:
    """The scenario's trajectory through msadam's public API on ``backend`` (see ``msadam.parity.run.run``)."""
    lib = msadam_library(backend)
    opt = build_optimizer(scen, lib)
    if scen["target"] != "default":
        opt.target = scen["target"]
    opt.unique = scen["unique"]

    def step(grads: tuple[Gradient, ...]) -> Any:
        lr = freeze_lr(opt.get_lr())
        opt(tuple(lib.gradient(g) for g in grads))
        return lr

    return run(scen, opt, step, timings, on_step)


