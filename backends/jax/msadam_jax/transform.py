r"""``msadam_jax.adam``: ``mindspore.nn.Adam`` as an ``optax.GradientTransformation``.

```text
m = beta1 * m + (1 - beta1) * g
v = beta2 * v + (1 - beta2) * g * g
w = w - learning_rate * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps)
```

with MindSpore's arguments, checks (same exception classes), float32 running beta powers and
rounding — the kernels of ``msadam_jax.kernels``, the numbers of ``msadam.Adam``. The updates are
such that ``optax.apply_updates(params, updates)`` gives MindSpore's new parameters (bit for bit in
float32 but for the rare scalar-loop element that moves by more than a factor of two).

Parameter names (key paths, [`msadam_jax.names.mindspore_names`][msadam_jax.names.mindspore_names]) drive the
``beta``/``gamma`` weight-decay filter unless ``decay_mask`` is given, and the checkpoint names of
[`to_mindspore`][msadam_jax.transform.to_mindspore]. Learning rates: MindSpore's kinds (a number, a list or 1-D array —
step *i* takes element *i* —, a ``msadam`` ``LearningRateSchedule``) and optax schedules (any other callable of the step
count), or a 0-d ``jax.Array`` (so ``optax.inject_hyperparams`` works). MindSpore's kinds are read on the host
through ``jax.pure_callback`` (one scalar per step), so they are MindSpore's bits and fail with
MindSpore's messages (a list read past its end: ``RuntimeError``, which JAX re-raises as
``JaxRuntimeError`` or, on jit's fast dispatch path, ``ValueError``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import msadam
from msadam import validation
from msadam.backend import SparsePath
from msadam.kernel_dtypes import check_parameter
from msadam.learning_rates import (
    DynamicWeightDecay,
    FixedLR,
    LRSource,
    UncallableLR,
    build_lr,
    preprocess_lr,
    preprocess_weight_decay,
)
from msadam.schedules import LearningRateSchedule
from msadam.sparse import SparseStrategy, check_target, check_unique
from msadam_jax import kernels
from msadam_jax.names import is_row_sparse, mindspore_names, row_tensor
from msadam_jax.rounding import fma_mode, rounded

__all__ = ["AdamState", "adam", "from_mindspore", "to_mindspore"]

Array = Any


class AdamState(NamedTuple):
    """MindSpore's optimizer state, as a pytree; [`to_mindspore`][msadam_jax.transform.to_mindspore] names it as a
    MindSpore checkpoint.

    ``global_step`` is int32 of shape ``(1,)`` and the beta powers float32 scalars (running products,
    as MindSpore keeps them). ``vhat`` is ``None`` without AMSGrad.
    """

    global_step: Array
    beta1_power: Array
    beta2_power: Array
    moment1: Any
    moment2: Any
    vhat: Any


def _register_row_tensor() -> None:
    """Make :class:`msadam.RowTensor` a pytree (indices and values are children), so it crosses ``jit``."""

    def unflatten(dense_shape: tuple[int, ...], children: Any) -> msadam.RowTensor:
        node = msadam.RowTensor.__new__(msadam.RowTensor)  # children may be tracers or placeholders
        node.indices, node.values = children
        node.dense_shape = dense_shape
        return node

    with contextlib.suppress(ValueError):  # already registered (a module reload)
        jax.tree_util.register_pytree_node(msadam.RowTensor, lambda r: ((r.indices, r.values), r.dense_shape),
                                           unflatten)


_register_row_tensor()

# The kernels run under jit even when `update` is called eagerly: an FMA is XLA's contraction of
# `a*b + c` inside one compiled computation (under an outer jit these are inlined).
_DENSE = jax.jit(kernels.dense_update, static_argnames=("cfg", "delta"))
_SPARSE = jax.jit(kernels.sparse_update, static_argnames="cfg")

# ----------------------------------------------------------------------------- hyper-parameters


class _HostValue:
    """A MindSpore-kind learning rate or weight decay, read on the host at the current global step."""

    def __init__(self, source: Callable[[np.ndarray], np.float32]) -> None:
        self.source = source

    def __call__(self, global_step: Array) -> Array:
        def read(step: np.ndarray) -> np.ndarray:
            return np.asarray(self.source(np.asarray(step, np.int32).reshape(1)), np.float32)

        return jax.pure_callback(read, jax.ShapeDtypeStruct((), jnp.float32), global_step)


def _learning_rate(learning_rate: Any) -> Callable[[Array], Array]:
    """``learning_rate`` as a function of the global step (``(1,)`` int32) giving a float32 scalar."""
    if isinstance(learning_rate, jax.Array) and learning_rate.ndim == 0:
        if not isinstance(learning_rate, jax.core.Tracer):
            validation.check_non_negative_float("learning rate", float(learning_rate), "Optimizer")
        return lambda step: jnp.asarray(learning_rate, jnp.float32)
    if callable(learning_rate) and not isinstance(learning_rate, LearningRateSchedule | type):
        schedule = learning_rate  # an optax schedule: traced, called with the step count
        return lambda step: jnp.asarray(schedule(step[0]), jnp.float32)
    if isinstance(learning_rate, jax.Array):  # as a MindSpore Tensor (a NumPy array stays an Iterable, as in msadam)
        learning_rate = msadam.Tensor(np.asarray(learning_rate))
    source: LRSource = build_lr(preprocess_lr(learning_rate)[0], "learning_rate")
    if isinstance(source, FixedLR):
        value = source(np.zeros(1, np.int32))
        return lambda step: jnp.float32(value)
    if isinstance(source, UncallableLR):
        def fail(step: Array) -> Array:
            return source(np.zeros(1, np.int32))  # raises MindSpore's ValueError at the first step

        return fail
    return _HostValue(source)


def _weight_decay(weight_decay: Any, loss_scale: float) -> Callable[[Array], Array] | None:
    """The weight decay times the loss scale as a function of the step, or ``None`` when there is none."""
    if callable(weight_decay) and not isinstance(weight_decay, LearningRateSchedule | type):
        scale = np.float32(loss_scale)
        return lambda step: jnp.asarray(weight_decay(step[0]), jnp.float32) * scale
    decay = preprocess_weight_decay(weight_decay, loss_scale)
    if isinstance(decay, DynamicWeightDecay):
        return _HostValue(decay)
    if decay <= 0:
        return None
    value = np.float32(decay)
    return lambda step: jnp.float32(value)


# Stand-ins that pass MindSpore's checks, for hyper-parameters that arrive traced.
_VALID = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "loss_scale": 1.0}


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _number(value: Any) -> Any:
    """A concrete 0-d ``jax.Array`` as a Python number (how ``optax.inject_hyperparams`` passes them)."""
    if isinstance(value, jax.Array) and not _is_traced(value) and value.ndim == 0:
        return value.item()
    return value


def _traced_weight_decay(weight_decay: Any, loss_scale: Any) -> Callable[[Array], Array] | None:
    """Weight decay from a traced value (``inject_hyperparams``): applied to the decaying leaves, even if 0."""
    if callable(weight_decay):
        return lambda step: jnp.asarray(weight_decay(step[0]), jnp.float32) * jnp.asarray(loss_scale, jnp.float32)
    return lambda step: jnp.asarray(weight_decay, jnp.float32) * jnp.asarray(loss_scale, jnp.float32)


def _grad_scale(loss_scale: Any) -> Any:
    """``1 / loss_scale`` in float32 (``None`` for 1): MindSpore's ``tensor_grad_scale`` factor."""
    if _is_traced(loss_scale):
        return jnp.float32(1.0) / jnp.asarray(loss_scale, jnp.float32)
    return None if loss_scale == 1.0 else jnp.float32(np.float32(1.0 / loss_scale))


# ----------------------------------------------------------------------------- the transformation


def _decay_flags(params: Any, decay_mask: Any, names: Callable[[Any], Any]) -> Any:
    """Which leaves decay: ``decay_mask`` (a pytree of bools or a callable of params), else the name filter."""
    if decay_mask is None:
        return jax.tree.map(lambda name: "beta" not in name and "gamma" not in name, names(params))
    return decay_mask(params) if callable(decay_mask) else decay_mask


def adam(
    learning_rate: Any = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    use_locking: bool = False,
    use_nesterov: bool = False,
    weight_decay: Any = 0.0,
    loss_scale: float = 1.0,
    use_amsgrad: bool = False,
    *,
    use_lazy: bool = False,
    use_offload: bool = False,
    target: str | None = None,
    unique: bool = True,
    decay_mask: Any = None,
    names: Callable[[Any], Any] | None = None,
) -> optax.GradientTransformation:
    """``mindspore.nn.Adam(params, learning_rate, ...)`` as an ``optax.GradientTransformation``.

    The positional arguments are MindSpore's (without ``params``; checked in MindSpore's order, with
    its exception classes). ``use_lazy``/``use_offload`` are MindSpore's keyword arguments.
    ``target`` (``'CPU'``, ``'GPU'``, ``'Ascend'``) and ``unique`` choose the sparse path as
    ``opt.target``/``opt.unique`` do (default: the composite path). Gradient leaves may be
    [`msadam.RowTensor`][msadam.RowTensor] or row-sparse ``jax.experimental.sparse.BCOO``.

    ``decay_mask``: a pytree of bools like the params (or a callable returning one) choosing which
    leaves take weight decay; default: MindSpore's filter on the names (no ``beta``/``gamma``).
    ``names``: params -> pytree of names (default
    [`msadam_jax.names.mindspore_names`][msadam_jax.names.mindspore_names]). ``update`` needs ``params``.
    """
    # optax.inject_hyperparams passes numeric arguments as 0-d jax arrays: concrete ones (at init)
    # are checked as numbers; traced ones (inside its update) were checked when they were concrete.
    numbers = {name: _number(value) for name, value in
               (("beta1", beta1), ("beta2", beta2), ("eps", eps), ("weight_decay", weight_decay),
                ("loss_scale", loss_scale))}
    traced = {name for name, value in numbers.items() if _is_traced(value)}
    checked = {name: _VALID[name] if name in traced else value for name, value in numbers.items()}
    if isinstance(checked["loss_scale"], int):
        checked["loss_scale"] = float(checked["loss_scale"])  # optimizer.py: an int (bool too) becomes a float
    validation.check_value_type("loss_scale", checked["loss_scale"], (float,), "Adam")
    validation.check_positive_float("loss_scale", checked["loss_scale"], "Adam")
    lr = _learning_rate(learning_rate)
    decay = _weight_decay(checked["weight_decay"], checked["loss_scale"])
    flags = {"use_locking": use_locking, "use_nesterov": use_nesterov, "use_amsgrad": use_amsgrad,
             "use_lazy": use_lazy, "use_offload": use_offload}
    validation.check_adam_args(checked["beta1"], checked["beta2"], checked["eps"], flags, {})
    sparse = SparseStrategy(check_target(target), True, check_unique(unique)) if target is not None else \
        SparseStrategy(unique=check_unique(unique))
    if traced & {"weight_decay", "loss_scale"}:
        decay = _traced_weight_decay(numbers["weight_decay"], numbers["loss_scale"])
    b1, b2, eps32 = (numbers[k] if k in traced else np.float32(checked[k]) for k in ("beta1", "beta2", "eps"))
    loss_scale = numbers["loss_scale"] if "loss_scale" in traced else float(checked["loss_scale"])
    grad_scale = _grad_scale(loss_scale)
    name_tree = names or mindspore_names
    rounding = fma_mode()  # probed now, not while tracing

    def init(params: Any) -> AdamState:
        def zeros() -> Any:
            return jax.tree.map(jnp.zeros_like, params)

        return AdamState(jnp.zeros((1,), jnp.int32), jnp.ones((), jnp.float32), jnp.ones((), jnp.float32),
                         zeros(), zeros(), zeros() if use_amsgrad else None)

    def update(grads: Any, state: AdamState, params: Any = None) -> tuple[Any, AdamState]:
        if params is None:
            raise ValueError("msadam_jax.adam needs the current params (weight decay and MindSpore's rounding "
                             "read them): call update(grads, state, params).")
        step = state.global_step
        lr_value = lr(step)  # read at the step before it advances (Optimizer.get_lr)
        decay_value = decay(step) if decay is not None else None
        zero = (step[0] < 0).astype(jnp.int32)  # 0, but not a constant XLA can see (rounding.rounded)
        # Rounded products: XLA would fuse `1 - beta2_power * beta2` into one FMA (and 1 - b2**t cancels).
        beta1_power = rounded(state.beta1_power * jnp.asarray(b1, jnp.float32), zero)
        beta2_power = rounded(state.beta2_power * jnp.asarray(b2, jnp.float32), zero)
        one = jnp.float32(1.0)
        lr_t = lr_value * jnp.sqrt(one - beta2_power) / (one - beta1_power)
        base = kernels.Scalars(lr_t, jnp.asarray(b1, jnp.float32), jnp.asarray(b2, jnp.float32),
                               jnp.asarray(eps32, jnp.float32), None, grad_scale, zero,
                               kernels.new_lr64(lr_value, beta1_power, beta2_power))
        with_decay = base._replace(weight_decay=decay_value)
        decays = _decay_flags(params, decay_mask, name_tree)
        cfg = kernels.Config(use_nesterov, use_amsgrad, False, rounding)
        sparse_cfg = kernels.SparseConfig(use_nesterov, use_lazy, sparse.path.value == "composite",
                                          sparse.deduplicate)
        treedef: Any = jax.tree.structure(params)  # (PyTreeDef's methods are untyped)
        flat_w = treedef.flatten_up_to(params)
        flat_g = treedef.flatten_up_to(grads)
        flat_m, flat_v = treedef.flatten_up_to(state.moment1), treedef.flatten_up_to(state.moment2)
        flat_vhat = treedef.flatten_up_to(state.vhat) if use_amsgrad else [None] * len(flat_w)
        flat_decay = treedef.flatten_up_to(decays)
        if any(w.dtype != jnp.float32 for w in flat_w):  # MindSpore's half-precision refusals: a TypeError
            for name, w, g in zip(treedef.flatten_up_to(name_tree(params)), flat_w, flat_g, strict=True):
                check_parameter(str(name), w.dtype, use_amsgrad=use_amsgrad, use_offload=use_offload,
                                sparse=is_row_sparse(g), fused=sparse.path is SparsePath.FUSED)
        out_u, out_m, out_v, out_vhat = [], [], [], []
        for w, g, m, v, vhat, decays_here in zip(flat_w, flat_g, flat_m, flat_v, flat_vhat, flat_decay, strict=True):
            s = with_decay if decays_here and decay_value is not None else base
            if is_row_sparse(g):
                if use_amsgrad or use_offload:
                    raise TypeError("For 'Adam', a row-sparse gradient was given, but "
                                    f"{'AMSGrad' if use_amsgrad else 'use_offload'} has no sparse kernel.")
                sparse_grad = row_tensor(g)
                new_w, m, v = _SPARSE(w, m, v, jnp.asarray(sparse_grad.indices),
                                                    jnp.asarray(sparse_grad.values, w.dtype), s, sparse_cfg)
                u = new_w - w
            else:
                u, m, v, vhat = _DENSE(w, m, v, vhat, jnp.asarray(g).astype(w.dtype), s, cfg,
                                                     delta=True)
            out_u.append(u)
            out_m.append(m)
            out_v.append(v)
            out_vhat.append(vhat)
        new_state = AdamState(step + 1, beta1_power, beta2_power, treedef.unflatten(out_m), treedef.unflatten(out_v),
                              treedef.unflatten(out_vhat) if use_amsgrad else None)
        return treedef.unflatten(out_u), new_state

    return optax.GradientTransformation(init, update)


# ----------------------------------------------------------------------------- checkpoint names


def _named_leaves(tree: Any, names: Any) -> list[tuple[str, Any]]:
    treedef: Any = jax.tree.structure(names)
    return list(zip(treedef.flatten_up_to(names), treedef.flatten_up_to(tree), strict=True))


def to_mindspore(state: AdamState, params: Any = None, *,
                 names: Callable[[Any], Any] | None = None) -> dict[str, np.ndarray]:
    """The state (and ``params``, when given) as ``{MindSpore checkpoint name: NumPy array}``.

    Names and order are ``mindspore.nn.Adam(...).parameters_dict()``'s (and ``msadam.Adam.state_dict()``'s):
    ``global_step``, the parameters, ``beta1_power``, ``beta2_power``, ``moment1.<name>``,
    ``moment2.<name>``, ``vhat.<name>`` (AMSGrad). Parameter names come from the key paths of
    ``params`` (or of ``state.moment1``), through ``names`` (default
    [`mindspore_names`][msadam_jax.names.mindspore_names]).
    """
    template = state.moment1 if params is None else params
    name_tree = (names or mindspore_names)(template)
    out: dict[str, np.ndarray] = {"global_step": np.array(state.global_step, np.int32).reshape(1)}
    if params is not None:
        out.update((name, np.array(value)) for name, value in _named_leaves(params, name_tree))
    out["beta1_power"] = np.array(state.beta1_power, np.float32).reshape(())
    out["beta2_power"] = np.array(state.beta2_power, np.float32).reshape(())
    fields = [("moment1", state.moment1), ("moment2", state.moment2)]
    if state.vhat is not None:
        fields.append(("vhat", state.vhat))
    for prefix, tree in fields:
        out.update((f"{prefix}.{name}", np.array(value)) for name, value in _named_leaves(tree, name_tree))
    return out


def from_mindspore(checkpoint: dict[str, Any], params: Any, *, use_amsgrad: bool | None = None,
                   names: Callable[[Any], Any] | None = None) -> tuple[Any, AdamState]:
    """``(params, state)`` from a MindSpore-named dict ([`to_mindspore`][msadam_jax.transform.to_mindspore],
    ``msadam.Adam.state_dict()``, or a MindSpore checkpoint read as a dict).

    ``params`` is the template: its structure, names, dtypes and placement (device or sharding).
    Parameters missing from ``checkpoint`` keep their value in ``params``; state entries must all be
    there (``KeyError``), with the parameters' shapes (``ValueError``). Nothing is half-loaded: the
    result is new arrays. ``use_amsgrad`` defaults to whether ``vhat.*`` entries are present.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"from_mindspore expects a dict of name -> array, but got {type(checkpoint).__name__}.")
    name_tree = (names or mindspore_names)(params)
    named = _named_leaves(params, name_tree)
    if use_amsgrad is None:
        use_amsgrad = any(key.startswith("vhat.") for key in checkpoint)
    prefixes = ["moment1", "moment2"] + (["vhat"] if use_amsgrad else [])
    needed = ["global_step", "beta1_power", "beta2_power"] + [f"{p}.{n}" for p in prefixes for n, _ in named]
    missing = [key for key in needed if key not in checkpoint]
    if missing:
        raise KeyError(f"The checkpoint has no {missing[:5]}{' ...' if len(missing) > 5 else ''}.")

    def array(key: str, like: Any) -> Array:
        value = np.asarray(checkpoint[key].asnumpy() if hasattr(checkpoint[key], "asnumpy") else checkpoint[key])
        if value.shape != tuple(like.shape):
            raise ValueError(f"Checkpoint entry {key!r} has shape {value.shape}, expected {tuple(like.shape)}.")
        return jax.device_put(jnp.asarray(value.astype(like.dtype)), getattr(like, "sharding", None))

    treedef: Any = jax.tree.structure(name_tree)
    leaves = [array(name, w) if name in checkpoint else w for name, w in named]
    trees = {p: treedef.unflatten([array(f"{p}.{name}", w) for name, w in named]) for p in prefixes}
    step = np.asarray(checkpoint["global_step"], np.int32).reshape(1)
    state = AdamState(jnp.asarray(step), jnp.asarray(np.float32(np.asarray(checkpoint["beta1_power"]))),
                      jnp.asarray(np.float32(np.asarray(checkpoint["beta2_power"]))), trees["moment1"],
                      trees["moment2"], trees.get("vhat"))
    return treedef.unflatten(leaves), state
