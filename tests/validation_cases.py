"""The table of ``Adam`` validation cases, and the side-agnostic runner that plays one on a backend.

A case says what to build — parameters, constructor arguments, then operations on the optimizer
(steps, property assignments, calls) — in markers that either side can turn into its own objects:
:class:`P` becomes a ``mindspore.Parameter`` or an ``msadam.Parameter``, :class:`T` a ``Tensor``,
:class:`Sched` a learning-rate schedule, and so on. :func:`run_case` plays a case on a :class:`Side`
and returns its outcome: ``"ok"`` or the exception class name, where it was raised (``"construct"``
or ``"op<i>"``), and for a failed step whether the optimizer's state was left unchanged.

The recorder (``golden/record_exceptions.py``) plays every case on MindSpore (:class:`MindSporeSide`)
and writes the outcomes to ``golden/exceptions.json``; ``test_validation_table.py`` plays them on
msadam and compares, and ``test_fuzz_mindspore.py`` plays generated cases on both. This module
imports neither framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# --------------------------------------------------------------------------------------------------
# Markers: values that each side builds its own way.


@dataclass(frozen=True)
class P:
    """A Parameter; same ``key``, same object. ``name`` defaults to ``key`` (prefixed per case,
    the prefix stripped from everything recorded); ``unnamed=True`` passes no name."""

    key: str
    shape: tuple[int, ...] = (2, 3)
    name: str | None = None
    unnamed: bool = False
    dtype: str = "float32"


@dataclass(frozen=True)
class T:
    """A ``Tensor`` of ``value`` (for learning rates)."""

    value: Any
    dtype: str = "float32"


@dataclass(frozen=True)
class Sched:
    """A learning-rate schedule, e.g. ``Sched("ExponentialDecayLR", (0.1, 0.9, 4))``."""

    kind: str = "ExponentialDecayLR"
    args: tuple[Any, ...] = (0.1, 0.9, 4)


@dataclass(frozen=True)
class Gen:
    """A fresh generator over ``items`` (each resolved first)."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class Obj:
    """A fresh ``object()``."""


@dataclass(frozen=True)
class StepFn:
    """A plain Python callable of the global step returning ``value`` (not a ``Cell``)."""

    value: float = 0.01


@dataclass(frozen=True)
class G:
    """One gradient: an array of ``shape`` and ``dtype`` filled with ``fill``."""

    shape: tuple[int, ...] = (2, 3)
    dtype: str = "float32"
    fill: float = 0.5


@dataclass(frozen=True)
class Step:
    """One step ``opt(grads)``. ``grads=None``: one ``G(fill=fill)`` shaped like each parameter."""

    grads: tuple[G, ...] | None = None
    container: str = "tuple"  # "tuple" or "list"
    fill: float = 0.5


@dataclass(frozen=True)
class SetAttr:
    """``setattr(opt, attr, value)``, e.g. ``opt.target = 'CPU'``."""

    attr: str
    value: Any


@dataclass(frozen=True)
class Call:
    """``opt.<method>(*args)``; the result is recorded (see :func:`summarize`)."""

    method: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Get:
    """``opt.<attr>``; the value is recorded (see :func:`summarize`)."""

    attr: str


Op = Step | SetAttr | Call | Get


@dataclass(frozen=True)
class Deviation:
    """A documented, intentional difference: msadam's outcome where MindSpore's differs."""

    outcome: str
    at: str | None
    reason: str


@dataclass(frozen=True)
class Case:
    """One row of the table: ``Adam(params, **kwargs)``, then ``ops`` in order."""

    name: str
    params: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    ops: tuple[Op, ...] = ()
    deviation: Deviation | None = None


# --------------------------------------------------------------------------------------------------
# Sides and the runner.


class Side(Protocol):
    """How one framework builds the markers' objects and the optimizer."""

    name: str

    def parameter(self, array: np.ndarray, name: str | None) -> Any: ...
    def tensor(self, array: np.ndarray) -> Any: ...
    def schedule(self, kind: str, args: tuple[Any, ...]) -> Any: ...
    def gradient(self, array: np.ndarray) -> Any: ...
    def adam(self, params: Any, **kwargs: Any) -> Any: ...
    def is_parameter(self, value: Any) -> bool: ...
    def is_schedule(self, value: Any) -> bool: ...


class MindSporeSide:
    """Builds the cases' markers with the objects of ``ms``, an imported ``mindspore`` module.

    The module is passed in, not imported here, so that this file stays importable without
    MindSpore: the recorder imports it its own way, the live tests through their fixture.
    """

    name = "mindspore"

    def __init__(self, ms: Any) -> None:
        from mindspore.nn.learning_rate_schedule import LearningRateSchedule

        self.ms, self.schedule_base = ms, LearningRateSchedule

    def parameter(self, array: np.ndarray, name: str | None) -> Any:
        return self.ms.Parameter(self.ms.Tensor(array), name=name)

    def tensor(self, array: np.ndarray) -> Any:
        return self.ms.Tensor(array)

    def schedule(self, kind: str, args: tuple[Any, ...]) -> Any:
        return getattr(self.ms.nn, kind)(*args)

    def gradient(self, array: np.ndarray) -> Any:
        return self.ms.Tensor(array)

    def adam(self, params: Any, **kwargs: Any) -> Any:
        return self.ms.nn.Adam(params, **kwargs)

    def is_parameter(self, value: Any) -> bool:
        return isinstance(value, self.ms.Parameter)

    def is_schedule(self, value: Any) -> bool:
        return isinstance(value, self.schedule_base)


class _Builder:
    """Resolves markers for one case on one side; parameters are made once per key."""

    def __init__(self, side: Side, prefix: str) -> None:
        self.side, self.prefix = side, prefix
        self.params: dict[str, Any] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, P):
            if value.key not in self.params:
                array = np.ones(value.shape, dtype=value.dtype)
                name = None if value.unnamed else self.prefix + (value.name or value.key)
                self.params[value.key] = self.side.parameter(array, name)
            return self.params[value.key]
        if isinstance(value, T):
            return self.side.tensor(np.asarray(value.value, dtype=value.dtype))
        if isinstance(value, Sched):
            return self.side.schedule(value.kind, value.args)
        if isinstance(value, Gen):
            return iter([self(item) for item in value.items])
        if isinstance(value, Obj):
            return object()
        if isinstance(value, StepFn):
            return _constant_of_step(value.value)
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self(item) for item in value)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, np.ndarray):
            return value.copy()
        return value

    def gradients(self, step: Step, opt: Any) -> Any:
        specs = step.grads
        if specs is None:
            specs = tuple(G(tuple(p.shape), "float32", step.fill) for p in opt.parameters)
        grads = [self.side.gradient(np.full(g.shape, g.fill, dtype=g.dtype)) for g in specs]
        return tuple(grads) if step.container == "tuple" else grads


def _constant_of_step(value: float) -> Callable[[Any], float]:
    def weight_decay(global_step: Any) -> float:
        return value

    return weight_decay


def _state_parts(opt: Any) -> Iterator[Any]:
    for attr in ("parameters", "moment1", "moment2", "vhat"):
        yield from getattr(opt, attr, None) or ()
    for attr in ("global_step", "beta1_power", "beta2_power"):
        yield getattr(opt, attr)


def snapshot(opt: Any) -> list[np.ndarray]:
    """Copies of every state array: parameters, moments, vhat, global step and beta powers."""
    return [np.array(part.asnumpy(), copy=True) for part in _state_parts(opt)]


def _same_state(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return len(before) == len(after) and all(
        a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
        for a, b in zip(before, after, strict=True)
    )


def summarize(value: Any, side: Side, prefix: str) -> Any:
    """A JSON-able, framework-neutral description of an op's result."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.number):
        return float(value) if not isinstance(value, int | np.integer) else int(value)
    if side.is_parameter(value):
        return {"Parameter": str(value.name).replace(prefix, ""), "value": value.asnumpy().tolist()}
    if side.is_schedule(value):
        return {"LearningRateSchedule": type(value).__name__}
    if isinstance(value, list | tuple):
        return [summarize(item, side, prefix) for item in value]
    if hasattr(value, "asnumpy"):
        return np.asarray(value.asnumpy()).tolist()
    return {"object": type(value).__name__}


def _message(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if any(char.isalpha() for char in line)]
    return lines[0][:300] if lines else ""


def run_case(case: Case, side: Side, index: int) -> dict[str, Any]:
    """Play ``case`` on ``side``; return its outcome (see the module docstring)."""
    prefix = f"c{index:03d}_"
    build = _Builder(side, prefix)
    params = build(case.params)
    kwargs = {key: build(value) for key, value in case.kwargs.items()}
    try:
        opt = side.adam(params, **kwargs)
    except Exception as error:  # the class is the outcome
        return {"outcome": type(error).__name__, "at": "construct", "message": _message(error)}
    results: list[Any] = []
    for i, op in enumerate(case.ops):
        before = snapshot(opt) if isinstance(op, Step) else None
        try:
            result = _apply(op, opt, build)
        except Exception as error:
            record: dict[str, Any] = {"outcome": type(error).__name__, "at": f"op{i}"}
            record.update(message=_message(error), results=results)
            if before is not None:
                record["state_unchanged"] = _same_state(before, snapshot(opt))
            return record
        results.append(_summarize_step(result) if isinstance(op, Step) else summarize(result, side, prefix))
    return {"outcome": "ok", "at": None, "results": results}


def _apply(op: Op, opt: Any, build: _Builder) -> Any:
    if isinstance(op, Step):
        return opt(build.gradients(op, opt))
    if isinstance(op, SetAttr):
        setattr(opt, op.attr, build(op.value))
        return None
    if isinstance(op, Call):
        return getattr(opt, op.method)(*(build(arg) for arg in op.args))
    return getattr(opt, op.attr)


def _summarize_step(result: Any) -> list[bool]:
    return [bool(np.asarray(item.asnumpy() if hasattr(item, "asnumpy") else item)) for item in result]


# --------------------------------------------------------------------------------------------------
# The table.

W, W2 = P("w"), P("w2", (3,))
ONE = [W]
SCHED = Sched()


_ONE_PARAMETER: Any = object()


def _ctor(name: str, params: Any = _ONE_PARAMETER, deviation: Deviation | None = None, **kwargs: Any) -> Case:
    """A construction-only case; ``params`` defaults to one (2, 3) parameter."""
    return Case(name, ONE if params is _ONE_PARAMETER else params, kwargs, (), deviation)


def _kw_cases(arg: str, values: Mapping[str, Any], deviations: Mapping[str, Deviation] | None = None,
              ) -> list[Case]:
    """One construction case per value of ``arg``, named ``<arg>_<label>``."""
    deviations = deviations or {}
    return [_ctor(f"{arg}_{label}", ONE, deviations.get(label), **{arg: v}) for label, v in values.items()]


_LR_VALUES: dict[str, Any] = {
    "float": 0.01, "int": 1, "zero": 0, "bool_true": True, "negative": -0.1, "negative_int": -1,
    "nan": math.nan, "inf": math.inf, "np_float32": np.float32(0.1), "np_float64": np.float64(0.1),
    "np_0d_array": np.array(0.1), "np_1d_array": np.array([0.1, 0.2]), "tensor_0d": T(0.1),
    "tensor_0d_int": T(1, "int32"), "tensor_1d": T([0.1, 0.2]), "tensor_1d_single": T([0.1]),
    "tensor_2d": T([[0.1, 0.2]]), "list": [0.1, 0.05], "tuple": (0.1, 0.05), "generator": Gen((0.1, 0.2)),
    "list_negative": [0.1, -0.1], "str_a": "a", "str_empty": "", "dict_empty": {}, "dict_str_keys": {"a": 1},
    "dict_float_keys": {0.1: 1}, "none": None, "object": Obj(), "schedule": SCHED,
}
_BETA_VALUES: dict[str, Any] = {
    "int": 1, "zero": 0.0, "one": 1.0, "negative": -0.5, "str": "0.9", "none": None, "bool": True,
    "np_float64": np.float64(0.9), "np_float32": np.float32(0.9), "nan": math.nan,
}
_EPS_VALUES: dict[str, Any] = {
    "int": 1, "zero": 0.0, "negative": -1e-8, "str": "1e-8", "none": None, "bool": True,
    "np_float64": np.float64(1e-6), "inf": math.inf, "nan": math.nan, "large": 1.0,
}
_WD_VALUES: dict[str, Any] = {
    "int": 1, "bool": True, "negative": -0.1, "str": "0.1", "none": None, "list": [0.1],
    "np_float32": np.float32(0.1), "np_float64": np.float64(0.1), "nan": math.nan, "schedule": SCHED,
    "callable": StepFn(),
}
_LOSS_SCALE_VALUES: dict[str, Any] = {
    "int": 2, "zero": 0, "negative": -1.0, "str": "2", "bool_true": True, "bool_false": False,
    "none": None, "np_float64": np.float64(2.0), "np_float32": np.float32(2.0), "inf": math.inf,
}
_FLAG_VALUES: dict[str, Any] = {"int": 1, "none": None, "str": "True", "true": True}

_CALLABLE_WD = Deviation(
    "ok", None,
    "msadam's weight_decay also accepts a plain callable of the step (DESIGN: 'Cell/callable'); "
    "MindSpore requires a Cell and raises TypeError.",
)
_DEVICE_TARGET = Deviation(
    "ok", None,
    "msadam allows opt.target 'GPU'/'Ascend' on any machine so device numbers can be reproduced "
    "anywhere; MindSpore raises ValueError for them on a CPU machine.",
)
_DEVICES = {"gpu": _DEVICE_TARGET, "ascend": _DEVICE_TARGET}
_TARGETS = {"int": 5, "tpu": "TPU", "lowercase_cpu": "cpu", "gpu": "GPU", "ascend": "Ascend"}

_CENTRALIZATION = "MindSpore's Centralization kernel exists only on Ascend, so on CPU a centralized " \
    "step fails; msadam computes the formula on every backend (DESIGN, step 2)."


def _constructor_cases() -> list[Case]:
    cases = _kw_cases("learning_rate", _LR_VALUES)
    for arg in ("beta1", "beta2"):
        cases += _kw_cases(arg, _BETA_VALUES)
    cases += _kw_cases("eps", _EPS_VALUES)
    cases += _kw_cases("weight_decay", _WD_VALUES, {"callable": _CALLABLE_WD})
    cases += _kw_cases("loss_scale", _LOSS_SCALE_VALUES)
    for arg in ("use_locking", "use_nesterov", "use_amsgrad", "use_lazy", "use_offload"):
        cases += _kw_cases(arg, _FLAG_VALUES)
    return [
        *cases,
        _ctor("lazy_and_offload", use_lazy=True, use_offload=True),
        _ctor("lazy_and_amsgrad", use_lazy=True, use_amsgrad=True),
        _ctor("offload_and_amsgrad", use_offload=True, use_amsgrad=True),
        _ctor("nesterov_and_amsgrad", use_nesterov=True, use_amsgrad=True),
        _ctor("unknown_kwarg", foo=1),
        _ctor("misspelt_kwarg", use_Lazy=True),
        # Validation order: the first failing check wins.
        _ctor("order_params_before_loss_scale", params=[], loss_scale="x"),
        _ctor("order_loss_scale_before_lr", loss_scale="x", learning_rate=-1.0),
        _ctor("order_lr_before_weight_decay", learning_rate="a", weight_decay="x"),
        _ctor("order_weight_decay_before_kwargs", weight_decay=-1.0, foo=1),
        _ctor("order_kwargs_before_betas", foo=1, beta1="x"),
        _ctor("order_types_before_ranges", beta1=1.5, eps=1),
        _ctor("order_eps_before_flags", eps=-1.0, use_locking=1),
        _ctor("order_flags_before_lazy_offload", use_lazy=True, use_offload=True, use_nesterov=1),
    ]


def _group(*params: P, **options: Any) -> dict[str, Any]:
    return {"params": list(params), **options}


A, B, C = P("a"), P("b"), P("c")
DUP_A, DUP_B = P("a", name="dup"), P("b", name="dup")  # two Parameters with one name
LR2, LR3 = [0.1, 0.2], [0.1, 0.2, 0.3]
_TWO_GROUPS = [_group(A), _group(B)]


def _params_cases() -> list[Case]:
    return [
        _ctor("params_none", params=None),
        _ctor("params_int", params=5),
        _ctor("params_empty", params=[]),
        _ctor("params_tuple", params=(A, B)),
        _ctor("params_single_parameter", params=A),
        _ctor("params_generator", params=Gen((A, B))),
        _ctor("params_mixed_parameter_dict", params=[A, _group(B)]),
        _ctor("params_non_parameters", params=[1, 2]),
        _ctor("params_str", params="ab"),
        _ctor("params_single_group_dict", params=_group(A)),
        _ctor("params_same_object_twice", params=[A, A]),
        _ctor("params_same_name_ungrouped", params=[DUP_A, DUP_B]),
        _ctor("params_two_unnamed", params=[P("a", unnamed=True), P("b", unnamed=True)]),
        _ctor("group_missing_params", params=[{"lr": 0.1}]),
        _ctor("group_unknown_key", params=[_group(A, momentum=0.9)]),
        _ctor("group_params_empty", params=[{"params": []}]),
        _ctor("group_params_none", params=[{"params": None}]),
        _ctor("group_params_int", params=[{"params": 5}]),
        _ctor("group_params_non_parameter", params=[{"params": [A, 1]}]),
        _ctor("group_params_single_parameter", params=[{"params": A}]),
        _ctor("group_same_object_in_two_groups", params=[_group(A), _group(A)]),
        _ctor("group_same_name_in_two_groups", params=[_group(DUP_A), _group(DUP_B)]),
        _ctor("group_same_name_in_one_group", params=[_group(DUP_A, DUP_B)]),
        _ctor("group_same_name_before_weight_decay", params=[_group(DUP_A), _group(DUP_B, weight_decay="x")]),
        _ctor("group_same_object_after_weight_decay", params=[_group(A), _group(A, weight_decay="x")]),
        _ctor("group_lr_each", params=[_group(A, lr=0.1), _group(B, lr=SCHED), _group(C)]),
        _ctor("group_lr_negative", params=[_group(A, lr=-0.1)]),
        _ctor("group_lr_str", params=[_group(A, lr="a")]),
        _ctor("group_lr_none", params=[_group(A, lr=None)]),
        _ctor("group_lr_tensor_2d", params=[_group(A, lr=T([[0.1]]))]),
        _ctor("group_lr_tensor_lengths_differ", params=[_group(A, lr=T(LR2)), _group(B, lr=T(LR3))]),
        _ctor("group_lr_list_lengths_differ", params=[_group(A, lr=LR2), _group(B, lr=LR3)]),
        _ctor("group_lr_length_differs_from_global", params=[_group(A, lr=LR2)], learning_rate=LR3),
        _ctor("group_lr_tensor_lengths_equal", params=[_group(A, lr=T(LR2)), _group(B, lr=LR2)]),
        _ctor("group_weight_decay_negative", params=[_group(A, weight_decay=-0.1)]),
        _ctor("group_weight_decay_str", params=[_group(A, weight_decay="x")]),
        _ctor("group_weight_decay_schedule", params=[_group(A, weight_decay=SCHED), _group(B)]),
        _ctor("group_bad_default_weight_decay", params=[_group(A, weight_decay=0.1)], weight_decay="x"),
        _ctor("group_grad_centralization_true", params=[_group(A, grad_centralization=True)]),
        _ctor("group_grad_centralization_int", params=[_group(A, grad_centralization=1)]),
        _ctor("group_grad_centralization_none", params=[_group(A, grad_centralization=None)]),
        _ctor("order_params_ok", params=[*_TWO_GROUPS, {"order_params": [B, A]}]),
        _ctor("order_params_first", params=[{"order_params": [B, A]}, *_TWO_GROUPS]),
        _ctor("order_params_extra_key", params=[*_TWO_GROUPS, {"order_params": [B, A], "lr": 0.1}]),
        _ctor("order_params_not_iterable", params=[*_TWO_GROUPS, {"order_params": 5}]),
        _ctor("order_params_missing_parameter", params=[*_TWO_GROUPS, {"order_params": [A]}]),
        _ctor("order_params_extra_parameter", params=[*_TWO_GROUPS, {"order_params": [A, B, C]}]),
        _ctor("order_params_foreign_parameter", params=[*_TWO_GROUPS, {"order_params": [A, C]}]),
        _ctor("order_params_empty", params=[*_TWO_GROUPS, {"order_params": []}]),
        _ctor("order_params_generator", params=[*_TWO_GROUPS, {"order_params": Gen((B, A))}]),
        _ctor("order_params_alone", params=[{"order_params": [A]}]),
        _ctor("group_order_checked_before_lr", params=[_group(A, foo=1), _group(B, lr=-1.0)]),
    ]


def _step_cases() -> list[Case]:
    two, half, int_grad = [A, W2], [P("h", dtype="float16")], G(dtype="int32", fill=2)
    values = Get("parameters")
    return [
        Case("step_ok", two, {}, (Step(), Step())),
        Case("step_list_gradients", two, {}, (Step(container="list"),)),
        Case("step_too_few_gradients", two, {}, (Step((G(),)),)),
        Case("step_too_many_gradients", two, {}, (Step((G(), G((3,)), G((3,)))),)),
        Case("step_wrong_shape", two, {}, (Step((G(), G((4,)))),)),
        Case("step_wrong_shape_after_ok_step", two, {}, (Step(), Step((G((3, 2)), G((3,)))))),
        Case("step_float64_gradients", two, {}, (Step((G(dtype="float64"), G((3,), "float64"))),)),
        Case("step_int32_gradients", two, {}, (Step((G(dtype="int32", fill=1), G((3,), "int32", 1))),)),
        Case("step_float16_gradients", two, {}, (Step((G(dtype="float16"), G((3,), "float16"))),)),
        Case("step_int64_gradients", ONE, {}, (Step((G(dtype="int64", fill=2),)), values)),
        Case("step_bool_gradients", ONE, {}, (Step((G(dtype="bool", fill=1),)), values)),
        Case("step_int32_gradients_weight_decay", ONE, {"weight_decay": 0.1}, (Step((int_grad,)),)),
        Case("step_int32_gradients_loss_scale", ONE, {"loss_scale": 4.0}, (Step((int_grad,)), values)),
        Case("step_amsgrad_int32_gradients", ONE, {"use_amsgrad": True}, (Step((int_grad,)), values)),
        Case("step_float16_param_float32_gradients", half, {}, (Step(),)),
        Case("step_float16_param_float16_gradients", half, {}, (Step((G(dtype="float16"),)),)),
        Case("step_amsgrad_wrong_shape", two, {"use_amsgrad": True}, (Step(), Step((G(), G((4,)))))),
        Case("step_grouped_wrong_shape", [_group(A, lr=0.1), _group(W2)], {}, (Step((G(), G((2,)))),)),
        Case("step_lr_list_past_end", ONE, {"learning_rate": [0.1, 0.2]}, (Step(), Step(), Step())),
        Case("step_lr_tensor_past_end", ONE, {"learning_rate": T([0.1, 0.2])}, (Step(), Step(), Step())),
        Case("step_lr_group_list_past_end", [_group(A, lr=[0.1]), _group(B)], {}, (Step(), Step())),
        Case("step_lr_empty_list", ONE, {"learning_rate": []}, (Step(),)),
        Case("step_lr_empty_str", ONE, {"learning_rate": ""}, (Step(),)),
        Case("step_lr_nested_list", ONE, {"learning_rate": [[0.1], [0.2]]}, (Step(),)),
        Case("step_lr_np_2d_array", ONE, {"learning_rate": np.full((2, 2), 0.1)}, (Step(),)),
        Case("step_lr_schedule", ONE, {"learning_rate": SCHED, "weight_decay": SCHED}, (Step(), Step())),
        Case("step_target_cpu", ONE, {}, (SetAttr("target", "CPU"), Step(), Get("target"))),
        Case("step_lazy_dense", two, {"use_lazy": True}, (Step(), Step())),
        Case("step_offload_dense", two, {"use_offload": True}, (Step(), Step())),
        Case("step_amsgrad_nesterov", two, {"use_amsgrad": True, "use_nesterov": True}, (Step(), Step())),
        Case("step_grad_centralization_skipped", [_group(A, grad_centralization=True)], {}, (Step(),)),
        Case("step_grad_centralization_16_columns", [_group(P("conv", (2, 16)), grad_centralization=True)],
             {}, (Step(),), Deviation("ok", None, _CENTRALIZATION)),
    ]


def _property_cases() -> list[Case]:
    lr_param = Call("get_lr_parameter", (W,))
    return [
        *(Case(f"target_{label}", ONE, {}, (SetAttr("target", value),), _DEVICES.get(label))
          for label, value in _TARGETS.items()),
        Case("unique_int", ONE, {}, (SetAttr("unique", 1),)),
        Case("unique_false", ONE, {}, (SetAttr("unique", False), Get("unique"))),
        Case("get_lr_parameter_int", ONE, {}, (Call("get_lr_parameter", (5,)),)),
        Case("get_lr_parameter_foreign", ONE, {}, (Call("get_lr_parameter", (A,)),)),
        Case("get_lr_parameter_list_with_int", ONE, {}, (Call("get_lr_parameter", ([W, 1],)),)),
        Case("get_lr_parameter_list", [W, A], {"learning_rate": 0.1}, (Call("get_lr_parameter", ([W, A],)),)),
        Case("get_lr_parameter_lr_true", ONE, {"learning_rate": True}, (lr_param,)),
        Case("get_lr_parameter_dynamic_list", ONE, {"learning_rate": [0.1, 0.2]}, (lr_param,)),
        Case("get_lr_parameter_schedule", ONE, {"learning_rate": SCHED}, (lr_param,)),
        Case("get_lr_parameter_group_names", [{"order_params": [B, A]}, _group(A), _group(B, lr=0.05)], {},
             (Call("get_lr_parameter", ([A, B],)), Get("is_group"), Get("is_group_lr"), Get("dynamic_lr"))),
        Case("default_flags", ONE, {}, (Get("is_group"), Get("dynamic_lr"), Get("target"), Get("unique"))),
        Case("get_weight_decay_scaled", ONE, {"weight_decay": 0.1, "loss_scale": 4.0},
             (Call("get_weight_decay"),)),
        # Numbers that pin DESIGN's decay claims (zero gradients: only decay moves a parameter).
        Case("decay_skips_only_beta_gamma", [P("bias"), P("ln_beta"), P("ln_gamma"), P("w")],
             {"weight_decay": 0.5, "learning_rate": 0.1}, (Step(fill=0.0), Get("parameters"))),
        Case("group_decay_ignores_names", [_group(P("ln_beta"), P("bias"), weight_decay=0.5), _group(P("w"))],
             {"learning_rate": 0.1}, (Step(fill=0.0), Get("parameters"))),
        Case("schedule_weight_decay_times_loss_scale", ONE,  # eps=1 makes the update scale-sensitive
             {"weight_decay": Sched(args=(0.5, 0.9, 4)), "loss_scale": 8.0, "eps": 1.0, "learning_rate": 0.1},
             (Step(fill=0.0), Step(fill=0.0), Get("parameters"))),
    ]


CASES: tuple[Case, ...] = tuple(_constructor_cases() + _params_cases() + _step_cases() + _property_cases())
assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"
