"""``msadam_compat``'s ``nn.dynamic_lr``, ``amp`` loss scalers, loss scale managers and update cells vs real MindSpore.

Every expectation is computed live from MindSpore 2.10 (skipped when it does not import), so the
tables below cannot drift from it: (a) the ``dynamic_lr`` lists over a grid of valid arguments,
equal element for element (``==``, same Python types); (b) invalid arguments raise the class (and,
for the validators, the message) MindSpore raises; (c) loss scalers, managers and update cells
over sequences of finite and overflowing steps, state and returns bit for bit, and
``scale``/``unscale`` bits for float32, float16 and int32 inputs; (d) ``scale``, ``unscale`` and
``all_finite`` on the native arrays of every installed msadam backend, NaN and ±Inf included.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import msadam_compat as compat
import numpy as np
import pytest
from msadam_compat import amp as compat_amp
from msadam_compat.nn import dynamic_lr as compat_dynamic_lr
from msadam_compat.nn import loss_scale as compat_loss_scale
from msadam_compat.train import loss_scale_manager as compat_managers

import msadam
from msadam import registry


def _side(root: Any, amp: Any, cells: Any, managers: Any, tensor: Callable[[Any], Any]) -> SimpleNamespace:
    return SimpleNamespace(root=root, amp=amp, cells=cells, managers=managers, tensor=tensor,
                           Parameter=root.Parameter)


@pytest.fixture(scope="module")
def sides(mindspore: ModuleType) -> tuple[SimpleNamespace, SimpleNamespace]:
    """The same names on both sides: (MindSpore, msadam_compat)."""
    theirs = _side(mindspore, mindspore.amp, mindspore.nn, mindspore.train.loss_scale_manager,
                   lambda value: mindspore.Tensor(np.asarray(value)))
    ours = _side(compat, compat_amp, compat_loss_scale, compat_managers, lambda value: compat.Tensor(np.asarray(value)))
    return theirs, ours


def _outcome(call: Callable[[], Any]) -> tuple[type, str]:
    try:
        call()
    except Exception as error:  # the class (and message) is what is compared
        return type(error), str(error).splitlines()[0] if str(error) else ""
    return type(None), ""


def _bits(value: Any) -> Any:
    """The exact bits of a float32/float16/int array (MindSpore Tensor or Parameter, ours, or NumPy)."""
    array = np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value)
    return array.view(f"u{array.dtype.itemsize}").tolist() if array.dtype.kind == "f" else array.tolist()


# --- (a) dynamic_lr values -------------------------------------------------------------------------

_COUNTS = list(itertools.product([1, 10, 23], [1, 3], [1, 2, 5]))  # total_step, step_per_epoch, decay/warmup epoch
_DECAY = [(lr, rate, *counts, stair) for lr, rate, counts, stair
          in itertools.product([0.1, 1.0, 3e-4], [0.9, 0.5, 1.7], _COUNTS, [False, True])]
GRIDS: dict[str, list[tuple[Any, ...]]] = {
    "piecewise_constant_lr": [([2, 5, 10], [0.1, 0.05, 0.01]), ((1,), (0.5,)), ([3, 3, 7], [0.1, 0.2, 0.3]),
                              ([1, 4], [np.float64(0.1), 0.2]), ([], [])],
    "exponential_decay_lr": [*_DECAY, (np.float64(0.1), 0.9, 5, 1, 1), (0.1, np.float64(0.3), 7, 2, 3, True)],
    "natural_exp_decay_lr": [*_DECAY, (np.float64(0.1), 0.9, 5, 1, 1), (0.1, np.float64(0.3), 7, 2, 3, True)],
    "inverse_decay_lr": [*_DECAY, (np.float64(0.1), 0.9, 5, 1, 1), (0.1, np.float64(0.3), 7, 2, 3, True)],
    "cosine_decay_lr": [(low, high, *counts) for low, high, counts
                        in itertools.product([0.0, 0.01, 0.05], [0.1, 1.0], _COUNTS)],
    "polynomial_decay_lr": [(lr, end, *counts, power, update) for lr, end, counts, power, update
                            in itertools.product([0.1, 1.0], [0.0, 0.01, 0.5], _COUNTS, [0.5, 1.0, 2.0, 3.3],
                                                 [False, True])],
    "warmup_lr": [(lr, *counts) for lr, counts in itertools.product([0.0, 0.1, 1.0], _COUNTS)],
}


def test_dynamic_lr_exports_mindspores_names(mindspore: ModuleType) -> None:
    assert sorted(compat_dynamic_lr.__all__) == sorted(mindspore.nn.dynamic_lr.__all__) == sorted(GRIDS)
    for name in GRIDS:
        assert getattr(compat.nn, name) is getattr(compat_dynamic_lr, name)


@pytest.mark.parametrize("function", sorted(GRIDS))
def test_dynamic_lr_lists_equal_mindspores(function: str, mindspore: ModuleType) -> None:
    ours, theirs = getattr(compat_dynamic_lr, function), getattr(mindspore.nn.dynamic_lr, function)
    for args in GRIDS[function]:
        expected, got = theirs(*args), ours(*args)
        assert got == expected, (function, args)
        assert [type(value) for value in got] == [type(value) for value in expected], (function, args)


# --- (b) invalid arguments -------------------------------------------------------------------------

_DECAY_OK = (0.1, 0.9, 10, 2, 2)
_DECAY_BAD: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((0.1, 0.9, 0, 2, 2), {}), ((0.1, 0.9, -1, 2, 2), {}), ((0.1, 0.9, 10.0, 2, 2), {}), ((0.1, 0.9, True, 2, 2), {}),
    ((0.1, 0.9, 10, 0, 2), {}), ((0.1, 0.9, 10, 2, 0), {}), ((0.1, 0.9, 10, 2, None), {}),
    ((0.0, 0.9, 10, 2, 2), {}), ((-0.1, 0.9, 10, 2, 2), {}), ((1, 0.9, 10, 2, 2), {}), ((True, 0.9, 10, 2, 2), {}),
    ((float("nan"), 0.9, 10, 2, 2), {}), ((float("inf"), 0.9, 10, 2, 2), {}), ((np.float32(0.1), 0.9, 10, 2, 2), {}),
    ((0.1, 0.0, 10, 2, 2), {}), ((0.1, 1, 10, 2, 2), {}), ((0.1, "0.9", 10, 2, 2), {}),
    (_DECAY_OK, {"is_stair": 1}), (_DECAY_OK, {"is_stair": None}), (_DECAY_OK, {"is_stair": np.bool_(True)}),
    ((-1.0, 0.9, 0, 2, 2), {}),  # order: total_step is checked before learning_rate
    ((0.1, 0.9, 2**64, 2, 2), {}),  # NumPy's isinf refuses the int: TypeError
    ((0.1, 0.9, 10, 10**400, 2), {}),  # math.isinf overflows: OverflowError
    ((0.1, 0.9, np.int64(10), 2, 2), {}),
]
INVALID_LR: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("piecewise_constant_lr", ("abc", [0.1]), {}),
    ("piecewise_constant_lr", ([1, 2], (0.1,)), {}),
    ("piecewise_constant_lr", ([2, 1], [0.1, 0.2]), {}),
    ("piecewise_constant_lr", ([0], [0.1]), {}),
    ("piecewise_constant_lr", ([1.0], [0.1]), {}),
    ("piecewise_constant_lr", ([True], [0.1]), {}),
    ("piecewise_constant_lr", ([1], [1]), {}),
    ("piecewise_constant_lr", ([1], [True]), {}),
    ("piecewise_constant_lr", ([1], [float("nan")]), {}),
    ("piecewise_constant_lr", ([1], [float("-inf")]), {}),
    ("piecewise_constant_lr", ([1], None), {}),
    ("piecewise_constant_lr", ({1: 0.1}, [0.1]), {}),
    ("piecewise_constant_lr", ([np.int64(2)], [0.1]), {}),
    ("piecewise_constant_lr", ([2, 1], [0.1, 1]), {}),  # learning_rates[1]'s type before milestone[1]'s order
    *((name, args, kwargs) for name in ("exponential_decay_lr", "natural_exp_decay_lr", "inverse_decay_lr")
      for args, kwargs in _DECAY_BAD),
    ("cosine_decay_lr", (0, 0.1, 10, 2, 2), {}),
    ("cosine_decay_lr", (-0.1, 0.1, 10, 2, 2), {}),
    ("cosine_decay_lr", (float("nan"), 0.1, 10, 2, 2), {}),
    ("cosine_decay_lr", (0.0, 0.0, 10, 2, 2), {}),
    ("cosine_decay_lr", (0.0, 1, 10, 2, 2), {}),
    ("cosine_decay_lr", (0.2, 0.1, 10, 2, 2), {}),
    ("cosine_decay_lr", (0.1, 0.1, 10, 2, 2), {}),
    ("cosine_decay_lr", (0.0, 0.1, 0, 2, 2), {}),
    ("cosine_decay_lr", (0.0, 0.1, 10, 2.0, 2), {}),
    ("cosine_decay_lr", (0.2, 0.1, 0, 2, 2), {}),  # order: counts before min < max
    ("polynomial_decay_lr", (0.0, 0.01, 10, 2, 2, 1.0), {}),
    ("polynomial_decay_lr", (1, 0.01, 10, 2, 2, 1.0), {}),
    ("polynomial_decay_lr", (0.1, 0, 10, 2, 2, 1.0), {}),
    ("polynomial_decay_lr", (0.1, -0.01, 10, 2, 2, 1.0), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 2, 0.0), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 2, 1), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 2, float("inf")), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 0, 2, 2, 1.0), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 0, 1.0), {}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 2, 1.0), {"update_decay_epoch": 1}),
    ("polynomial_decay_lr", (0.1, 0.01, 10, 2, 2, -1.0), {"update_decay_epoch": 1}),
    ("warmup_lr", (1, 10, 2, 2), {}),
    ("warmup_lr", (-0.1, 10, 2, 2), {}),
    ("warmup_lr", (float("inf"), 10, 2, 2), {}),
    ("warmup_lr", (0.1, 10, 2, 0), {}),
    ("warmup_lr", (0.1, 0, 2, 0), {}),  # order: warmup_epoch first
    ("warmup_lr", (0.1, 0, 2, 2), {}),
    ("warmup_lr", (0.1, 10, 0, 2), {}),
    ("warmup_lr", (0.1, 10, 2, 2.0), {}),
]


@pytest.mark.parametrize(("function", "args", "kwargs"), INVALID_LR,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(INVALID_LR)])
def test_dynamic_lr_invalid_arguments_raise_like_mindspore(function: str, args: tuple[Any, ...],
                                                           kwargs: dict[str, Any], mindspore: ModuleType) -> None:
    expected = _outcome(lambda: getattr(mindspore.nn.dynamic_lr, function)(*args, **kwargs))
    got = _outcome(lambda: getattr(compat_dynamic_lr, function)(*args, **kwargs))
    assert expected[0] is not type(None), "the table lists only arguments MindSpore rejects"
    assert got == expected


# Each entry builds one object on a side (MindSpore's or ours): `s.tensor(x)` is that side's Tensor.
INVALID_AMP: dict[str, Callable[[SimpleNamespace], Any]] = {
    "static-bool": lambda s: s.amp.StaticLossScaler(True),
    "static-np-float32": lambda s: s.amp.StaticLossScaler(np.float32(3.0)),
    "static-str": lambda s: s.amp.StaticLossScaler("2"),
    "static-none": lambda s: s.amp.StaticLossScaler(None),
    "static-below-1": lambda s: s.amp.StaticLossScaler(0.5),
    "static-zero": lambda s: s.amp.StaticLossScaler(0),
    "static-huge-int": lambda s: s.amp.StaticLossScaler(2**64),
    "dynamic-below-1": lambda s: s.amp.DynamicLossScaler(0.5, "a", "b"),
    "dynamic-window-before-factor": lambda s: s.amp.DynamicLossScaler(2, "a", "b"),
    "dynamic-window-zero": lambda s: s.amp.DynamicLossScaler(2, 0, 0),
    "dynamic-window-bool": lambda s: s.amp.DynamicLossScaler(2, 2, True),
    "dynamic-factor-zero": lambda s: s.amp.DynamicLossScaler(2, 0, 3),
    "dynamic-factor-float": lambda s: s.amp.DynamicLossScaler(2, 2.0, 3),
    "abstract-scaler": lambda s: s.amp.LossScaler(),
    "scale-python-float": lambda s: s.amp.StaticLossScaler(4).scale(1.5),
    "adjust-python-bool": lambda s: s.amp.DynamicLossScaler(4, 2, 2).adjust(True),
    "adjust-int-tensor": lambda s: s.amp.DynamicLossScaler(4, 2, 2).adjust(s.tensor(np.int32(1))),
    "adjust-rank-1": lambda s: s.amp.DynamicLossScaler(4, 2, 2).adjust(s.tensor(np.array([True]))),
    "all-finite-single-tensor": lambda s: s.amp.all_finite(s.tensor(np.ones(2, np.float32))),
    "all-finite-empty": lambda s: s.amp.all_finite(()),
    "all-finite-nested": lambda s: s.amp.all_finite((s.tensor(np.ones(2, np.float32)),
                                                     [s.tensor(np.ones(1, np.float32))])),
    "fixed-manager-below-1": lambda s: s.amp.FixedLossScaleManager(0.5),
    "fixed-manager-zero": lambda s: s.amp.FixedLossScaleManager(0),
    "fixed-manager-str": lambda s: s.amp.FixedLossScaleManager("a"),
    "fixed-manager-none": lambda s: s.amp.FixedLossScaleManager(None),
    "dynamic-manager-below-1": lambda s: s.amp.DynamicLossScaleManager(0.5),
    "dynamic-manager-str": lambda s: s.amp.DynamicLossScaleManager("a"),
    "dynamic-manager-window-zero": lambda s: s.amp.DynamicLossScaleManager(2, 2, 0),
    "dynamic-manager-window-float": lambda s: s.amp.DynamicLossScaleManager(2, 2, 1.5),
    "dynamic-manager-factor-zero": lambda s: s.amp.DynamicLossScaleManager(2, 0, 10),
    "dynamic-manager-factor-str": lambda s: s.amp.DynamicLossScaleManager(2, "a", 10),
    "dynamic-manager-window-first": lambda s: s.amp.DynamicLossScaleManager(2, -1, 0),
    "cell-python-bool": lambda s: s.cells.DynamicLossScaleUpdateCell(8.0, 2, 2)(
        s.Parameter(s.tensor(np.float32(8.0)), name="scale_sense"), True),
    "cell-float16-scale": lambda s: s.cells.DynamicLossScaleUpdateCell(8.0, 2, 2)(
        s.Parameter(s.tensor(np.float16(8.0)), name="scale_sense"), s.tensor(np.bool_(False))),
    "cell-rank-1-overflow": lambda s: s.cells.DynamicLossScaleUpdateCell(8.0, 2, 2)(
        s.Parameter(s.tensor(np.array([8.0], np.float32)), name="scale_sense"), s.tensor(np.array([True]))),
    "cell-float-overflow": lambda s: s.cells.DynamicLossScaleUpdateCell(8.0, 2, 2)(
        s.Parameter(s.tensor(np.float32(8.0)), name="scale_sense"), s.tensor(np.float32(1.0))),
}
# Messages written by MindSpore's own validators, which ours reproduce word for word.
SAME_MESSAGE = {name for name in INVALID_AMP if name.startswith(("static-", "dynamic-", "fixed-"))} - {
    "static-huge-int", "static-str", "static-none", "dynamic-manager-str", "dynamic-manager-factor-str",
    "fixed-manager-str", "fixed-manager-none"}


@pytest.mark.parametrize("case", sorted(INVALID_AMP))
def test_loss_scaling_invalid_arguments_raise_like_mindspore(
        case: str, sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    theirs, ours = sides
    expected, got = _outcome(lambda: INVALID_AMP[case](theirs)), _outcome(lambda: INVALID_AMP[case](ours))
    assert expected[0] is not type(None), "the table lists only calls MindSpore rejects"
    assert got[0] is expected[0], (got, expected)
    if case in SAME_MESSAGE:
        assert got[1] == expected[1]


def test_manager_gives_up_after_1000_overflows_like_mindspore(sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    errors = []
    for side in sides:
        manager = side.amp.DynamicLossScaleManager(2**24, 2, 5)
        with pytest.raises(RuntimeError) as info:
            for _ in range(2000):
                manager.update_loss_scale(True)
        errors.append((info.value.args, manager.cur_iter, manager.bad_step, manager.loss_scale))
    assert errors[0] == errors[1]


# --- (c) loss scalers, managers and update cells over steps -----------------------------------------

FLAGS = [True, True, False, True, True, True, True, False, False, True, True, True, True, True, True, True]
SCALER_ARGS = [(1024, 2, 1), (1000.5, 3, 2), (2.0**127, 2, 1), (3.0e38, 2, 1), (3.0, 16777217, 1),
               (1, 2, 3), (65536, 7, 4), (50331651.0 * 7, 16777217, 1)]


def _scaler_trace(side: SimpleNamespace, args: tuple[Any, ...], flags: list[bool]) -> list[Any]:
    scaler = side.amp.DynamicLossScaler(*args)
    trace: list[Any] = [scaler.scale_value.name, scaler.counter.name, scaler.scale_factor, scaler.scale_window,
                        _bits(scaler.scale_value), _bits(scaler.counter)]
    for flag in flags:
        trace.append((scaler.adjust(side.tensor(np.bool_(flag))), _bits(scaler.scale_value), _bits(scaler.counter)))
    return trace


@pytest.mark.parametrize("args", SCALER_ARGS, ids=str)
def test_dynamic_loss_scaler_steps_like_mindspore(args: tuple[Any, ...],
                                                  sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    theirs, ours = sides
    assert _scaler_trace(ours, args, FLAGS) == _scaler_trace(theirs, args, FLAGS)


@pytest.mark.parametrize("value", [1, 1000.5, 2**30 + 1, float("inf"), float("nan"), 1e300, 2**64 - 1])
def test_static_loss_scaler_state_like_mindspore(value: float, sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    traces = []
    for side in sides:
        scaler = side.amp.StaticLossScaler(value)
        traces.append((scaler.scale_value.name, _bits(scaler.scale_value), scaler.adjust(side.tensor(np.bool_(True))),
                       _bits(scaler.scale_value)))
    assert traces[0] == traces[1]


CELL_ARGS = [(1024.0, 2, 1), (1024.0, 3, 2), (2.0**126, 2, 1), (1.5, 2.5, 3), (1.0, 2, 2), (65504.0, 7, 3)]


def _cell_trace(side: SimpleNamespace, args: tuple[Any, ...], flags: list[bool]) -> list[Any]:
    cell = side.cells.DynamicLossScaleUpdateCell(*args)
    scale = side.Parameter(side.tensor(np.float32(args[0])), name="scale_sense")
    trace: list[Any] = [cell.get_loss_scale(), _bits(cell.scale_factor), _bits(cell.scale_window),
                        cell.cur_iter.name, cell.last_overflow_iter.name]
    for flag in flags:
        overflow = side.tensor(np.bool_(not flag))
        returned = cell(scale, overflow)
        trace.append((bool(returned.asnumpy()), _bits(scale), _bits(cell.cur_iter), _bits(cell.last_overflow_iter),
                      cell.get_loss_scale()))
    return trace


@pytest.mark.parametrize("args", CELL_ARGS, ids=str)
def test_dynamic_update_cell_steps_like_mindspore(args: tuple[Any, ...],
                                                  sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    theirs, ours = sides
    assert _cell_trace(ours, args, FLAGS) == _cell_trace(theirs, args, FLAGS)


def test_update_cells_return_overflow_as_given(sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    _, ours = sides
    overflow = ours.tensor(np.bool_(True))
    scale = ours.Parameter(ours.tensor(np.float32(8.0)), name="scale_sense")
    assert ours.cells.DynamicLossScaleUpdateCell(8.0, 2, 2)(scale, overflow) is overflow
    fixed = ours.cells.FixedLossScaleUpdateCell(12.0)
    assert fixed(None, overflow) is overflow and fixed(scale, "anything") == "anything"
    assert fixed.get_loss_scale() == 12.0 and float(scale.asnumpy()) == 4.0


MANAGER_ARGS = [(), (1024, 2, 2), (1000.5, 3, 3), (5, 2.5, 1), (3, 2, 1), (2**24, 2, 2000), (1.0, 1, 2)]


def _manager_trace(side: SimpleNamespace, args: tuple[Any, ...], flags: list[bool]) -> list[Any]:
    manager = side.amp.DynamicLossScaleManager(*args)
    trace: list[Any] = [manager.get_drop_overflow_update(), manager.decrease_ratio]
    for flag in flags:
        trace.append((manager.update_loss_scale(not flag), manager.get_loss_scale(),
                      type(manager.get_loss_scale()).__name__, manager.cur_iter, manager.last_overflow_iter,
                      manager.bad_step))
    cell = manager.get_update_cell()
    trace.append((type(cell).__name__, cell.get_loss_scale(), _bits(cell.scale_factor), _bits(cell.scale_window)))
    return trace


@pytest.mark.parametrize("args", MANAGER_ARGS, ids=str)
def test_dynamic_manager_steps_like_mindspore(args: tuple[Any, ...],
                                              sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    theirs, ours = sides
    flags = FLAGS + [False] * 6 + [True] * 9
    assert _manager_trace(ours, args, flags) == _manager_trace(theirs, args, flags)


@pytest.mark.parametrize("args", [(), (1024.0,), (3, False), (2.5, True), (7, 0), (8.0, None)], ids=str)
def test_fixed_manager_like_mindspore(args: tuple[Any, ...], sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    traces = []
    for side in sides:
        manager = side.amp.FixedLossScaleManager(*args)
        cell = manager.get_update_cell()
        traces.append((manager.get_loss_scale(), manager.get_drop_overflow_update(), manager.update_loss_scale(True),
                       type(cell).__name__, None if cell is None else cell.get_loss_scale()))
    assert traces[0] == traces[1]


def test_managers_are_exported_where_mindspore_has_them(mindspore: ModuleType) -> None:
    for name in ("LossScaleManager", "FixedLossScaleManager", "DynamicLossScaleManager"):
        assert getattr(compat, name) is getattr(compat_amp, name) is getattr(compat.train, name)
        assert name in mindspore.amp.__all__ and name in compat_amp.__all__
    for name in ("LossScaler", "StaticLossScaler", "DynamicLossScaler", "all_finite"):
        assert name in mindspore.amp.__all__ and name in compat_amp.__all__
    for name in compat_loss_scale.__all__:
        assert hasattr(mindspore.nn, name)


GRAD_VALUES = np.array([0.0, -0.0, 1.0, -1.5, 3.14159, 1e-3, 7.7e-5, 6.1e-5, 1e-7, 255.9, 31.0, 60000.0, 65504.0,
                        1e5, -3e38, np.inf, -np.inf, np.nan])
INT_VALUES = np.array([0, 1, -3, 7, 1000, -65536, 2**20], np.int32)
_KEEP_ALIVE: list[Any] = []
SCALE_VALUES = [1, 3, 1000.5, 1024, 65536, 1e6, 2**20 + 1, 16777217, 2.0**126, 2.0**127, 3.0e38]


# Subnormal float32/float64 inputs and products: MindSpore's graph kernels flush them (FTZ/DAZ), the host path too.
SUBNORMAL_VALUES = np.array([1e-39, -1e-40, 1e-33, -2e-36, 4e-45, 1e-310, -3e-320])


def _gradients(side: SimpleNamespace) -> tuple[Any, ...]:
    values = np.concatenate([GRAD_VALUES, SUBNORMAL_VALUES])
    with np.errstate(over="ignore", under="ignore"):
        return (side.tensor(values.astype(np.float32)), side.tensor(values.astype(np.float16)),
                side.tensor(INT_VALUES), side.tensor(values.astype(np.float64)))


@pytest.mark.parametrize("value", SCALE_VALUES, ids=str)
def test_scale_and_unscale_bits_equal_mindspores(value: float, sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    results = []
    for side in sides:
        scaler = side.amp.StaticLossScaler(value)
        _KEEP_ALIVE.append(scaler)
        grads = _gradients(side)
        results.append({(method, str(out.dtype).lower()): _bits(out)
                        for method in ("scale", "unscale") for out in getattr(scaler, method)(grads)})
    theirs, ours = results
    assert ours.keys() == theirs.keys()
    for key, expected in theirs.items():
        pairs = enumerate(zip(ours[key], expected, strict=True))
        wrong = [(i, hex(got), hex(want)) for i, (got, want) in pairs if got != want]
        assert not wrong, (key, wrong)


def test_all_finite_like_mindspore(sides: tuple[SimpleNamespace, SimpleNamespace]) -> None:
    cases: list[list[Any]] = [
        [np.ones(3, np.float32)], [np.array([1.0, np.nan], np.float32)], [np.array([np.inf], np.float16)],
        [np.ones(2, np.float16), np.array([-np.inf], np.float32)], [np.arange(3, dtype=np.int32)],
        [np.float32(2.0), np.ones((2, 2), np.float32)]]
    outcomes = []
    for side in sides:
        outs = [side.amp.all_finite([side.tensor(array) for array in case]) for case in cases]
        outcomes.append([(out.shape, str(out.dtype).lower().replace("bool_", "bool"), bool(out.asnumpy()))
                         for out in outs])
    assert outcomes[1] == outcomes[0]


# --- (d) every installed backend's native arrays ----------------------------------------------------

NON_FINITE = {"finite": None, "nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def _leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, tuple | list):
        for item in tree:
            yield from _leaves(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _leaves(item)
    else:
        yield tree


@pytest.mark.parametrize("method", ["scale", "unscale"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=lambda d: np.dtype(d).name)
def test_scale_unscale_keep_each_backends_arrays(msadam_backend: str, dtype: Any, method: str) -> None:
    backend = registry.load_backend(msadam_backend)
    with np.errstate(over="ignore"):
        host = GRAD_VALUES.astype(dtype)
    native = backend.from_numpy(host)
    stored = msadam.Parameter(host, name="w", backend=msadam_backend).data  # e.g. a tf.Variable
    scaler = compat_amp.DynamicLossScaler(1000.5, 2, 3)
    expected = _bits(getattr(scaler, method)(host))  # NumPy: checked against MindSpore above
    got = getattr(scaler, method)((native, [stored, (native,)], {"k": native}))
    assert type(got) is tuple and type(got[1]) is list and type(got[1][1]) is tuple and type(got[2]) is dict
    for leaf in [*_leaves(got), getattr(scaler, method)(native)]:
        assert backend.owns(leaf), type(leaf)
        assert backend.dtype(leaf) == np.dtype(dtype)
        assert _bits(backend.to_numpy(leaf)) == expected


def test_scale_takes_mindspore_shaped_values(msadam_backend: str) -> None:
    """``ms.Tensor`` and ``ms.Parameter`` (of any backend) give an ``ms.Tensor``, as ``Parameter * Tensor`` does."""
    host = np.array([1.5, -2.0, np.inf], np.float16)
    scaler = compat_amp.StaticLossScaler(3)
    inputs = [compat.Tensor(host), compat.Parameter(host, name="p", backend=msadam_backend)]
    for out in scaler.scale(inputs):
        assert isinstance(out, compat.Tensor) and out.dtype == np.float16
        assert _bits(out) == _bits(host * np.float16(3))


@pytest.mark.parametrize("case", sorted(NON_FINITE))
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=lambda d: np.dtype(d).name)
def test_all_finite_on_each_backend(msadam_backend: str, dtype: Any, case: str) -> None:
    backend = registry.load_backend(msadam_backend)
    clean = np.array([[1.0, -2.0], [3.5, 0.0]], dtype)
    dirty = clean.copy()
    if NON_FINITE[case] is not None:
        dirty[1, 0] = NON_FINITE[case]
    param = compat.Parameter(dirty, name="p", backend=msadam_backend)
    for grads in ([backend.from_numpy(clean), backend.from_numpy(dirty)],
                  (np.ones(2, np.float32), backend.from_numpy(dirty)), (param,), (param.data, compat.Tensor(clean))):
        out = compat_amp.all_finite(grads)
        assert isinstance(out, compat.Tensor) and out.shape == () and out.dtype == np.bool_
        assert bool(out) is (case == "finite")
    scaler = compat_amp.DynamicLossScaler(8, 2, 1)
    assert scaler.adjust(compat_amp.all_finite([backend.from_numpy(dirty)])) is True
    assert float(scaler.scale_value.asnumpy()) == (16.0 if case == "finite" else 4.0)


def test_all_finite_uses_a_backends_own_check(msadam_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend's optional ``all_finite(arrays) -> bool`` answers for its arrays, in one call per backend."""
    backend = registry.load_backend(msadam_backend)
    calls: list[int] = []

    def own_check(arrays: list[Any]) -> bool:
        calls.append(len(arrays))
        return False

    monkeypatch.setattr(backend, "all_finite", own_check, raising=False)
    params = [compat.Parameter(np.ones(2, np.float32), name=f"p{i}", backend=msadam_backend) for i in range(3)]
    assert not compat_amp.all_finite([np.ones(2, np.float32), *params])
    assert calls == [3]


def test_update_cell_writes_each_backends_parameter(msadam_backend: str) -> None:
    """The loss scale Parameter may live on any backend; the numbers are the NumPy ones checked against MindSpore."""
    traces = []
    for backend in ("numpy", msadam_backend):
        cell = compat_loss_scale.DynamicLossScaleUpdateCell(1024.0, 3, 2)
        scale = compat.Parameter(np.float32(1024.0), name="scale_sense", backend=backend)
        trace = []
        for flag in FLAGS:
            cell(scale, compat.Tensor(np.bool_(not flag)))
            trace.append(_bits(scale))
        assert scale.backend == backend
        traces.append(trace)
    assert traces[1] == traces[0]


def test_compat_modules_import_no_framework() -> None:
    for module in (compat_dynamic_lr, compat_amp, compat_loss_scale, compat_managers,
                   sys.modules["msadam_compat._number_checks"]):
        roots = set()
        for node in ast.walk(ast.parse(Path(str(module.__file__)).read_text())):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots.add(node.module.split(".")[0])
        assert roots - set(sys.stdlib_module_names) <= {"numpy", "msadam", "msadam_compat"}, module.__name__
