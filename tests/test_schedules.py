"""msadam's learning-rate schedules against MindSpore 2.10's ``nn.*DecayLR``/``WarmUpLR``.

Three sources of truth: the fixture ``golden/schedules.json`` recorded from real MindSpore by
``golden/record_schedules.py`` (runs everywhere), live MindSpore when it imports (skipped otherwise),
and MindSpore's source for the behaviour pinned by hand below.
"""

from __future__ import annotations

import ast
import json
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from msadam import schedules
from msadam.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)
from msadam.tensor import Tensor

GOLDEN = json.loads((Path(__file__).parent / "golden" / "schedules.json").read_text())
STEPS: list[int] = GOLDEN["steps"]
SCHEDULE_ROWS: list[dict[str, Any]] = GOLDEN["schedules"]
VALIDATION_ROWS: list[dict[str, Any]] = GOLDEN["validation"]
MSADAM_NAMESPACE = {name: getattr(schedules, name) for name in schedules.__all__}
# glibc's powf is what MindSpore's CPU Pow kernel calls: with it the numbers are bit-identical.
EXACT = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
# Attributes MindSpore's constructors set (ported code may read them).
ATTRIBUTES = [
    "learning_rate",
    "decay_rate",
    "decay_steps",
    "is_stair",
    "math_e",
    "min_lr",
    "max_lr",
    "delta",
    "math_pi",
    "start_learning_rate",
    "end_learning_rate",
    "diff_learning_rate",
    "power",
    "update_decay_steps",
    "warmup_steps",
]


def _row_id(row: dict[str, Any]) -> str:
    return f"{row['class']}{tuple(row['args'])}"


def _golden(row: dict[str, Any]) -> np.ndarray:
    return np.array([np.float32(text) for text in row["values"]], dtype=np.float32)


def _per_step(schedule: Any, make_step: Any, steps: list[int] = STEPS) -> np.ndarray:
    """The schedule's learning rate at each step, each step evaluated on its own (as the optimizer does)."""
    values = []
    for step in steps:
        out = schedule(make_step(step))
        array = out.asnumpy()
        assert array.dtype == np.float32 and array.size == 1, (schedule, step, out)
        values.append(array.reshape(-1)[0])
    return np.array(values, dtype=np.float32)


def _optimizer_step(step: int) -> np.ndarray:
    return np.array([step], dtype=np.int32)  # MindSpore's global_step Parameter: int32, shape (1,)


def _outcome(call: str, namespace: dict[str, Any]) -> tuple[str, str]:
    try:
        eval(call, {"np": np}, dict(namespace))
    except Exception as error:  # the class is what is compared
        return type(error).__name__, str(error)
    return "ok", ""


def _authored_by_mindspore(message: str) -> bool:
    """Messages written by MindSpore's validators (not by Python or NumPy, which vary by version)."""
    return message.startswith(("For '", "The "))


@pytest.fixture(scope="module")
def ms(mindspore: Any) -> Any:
    """Real MindSpore (the conftest's ``mindspore`` fixture), under the name these tests use."""
    return mindspore


# --- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_golden_values(row: dict[str, Any]) -> None:
    expected = _golden(row)
    got = _per_step(MSADAM_NAMESPACE[row["class"]](*row["args"]), _optimizer_step)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    if EXACT:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_golden_values_without_libm(row: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a C ``powf`` (e.g. Windows) the float64 fallback stays within 1e-6 of MindSpore."""
    monkeypatch.setattr(schedules, "_libm_powf", lambda: None)
    got = _per_step(MSADAM_NAMESPACE[row["class"]](*row["args"]), _optimizer_step)
    np.testing.assert_allclose(got, _golden(row), rtol=1e-6, atol=0)


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_config_rebuilds_the_same_schedule(row: dict[str, Any]) -> None:
    """``get_config``/``from_config`` (what framework optimizers serialize) give the same numbers."""
    schedule = MSADAM_NAMESPACE[row["class"]](*row["args"])
    again = type(schedule).from_config(schedule.get_config())
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    np.testing.assert_array_equal(_per_step(again, _optimizer_step), _per_step(schedule, _optimizer_step))


def test_a_user_schedule_without_get_config_says_so() -> None:
    class Halving(LearningRateSchedule):
        def construct(self, global_step: Any) -> Any:
            return 0.5

    with pytest.raises(NotImplementedError, match="Halving does not define get_config"):
        Halving().get_config()


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_batched_steps_equal_single_steps(row: dict[str, Any]) -> None:
    schedule = MSADAM_NAMESPACE[row["class"]](*row["args"])
    batched = schedule(np.array(STEPS, dtype=np.int32))
    assert batched.shape == (len(STEPS),) and batched.dtype == np.float32
    np.testing.assert_array_equal(batched.asnumpy(), _per_step(schedule, _optimizer_step))


@pytest.mark.parametrize(
    ("make_step", "shape"),
    [
        (int, ()),
        (np.int32, ()),
        (lambda s: np.array(s, np.int32), ()),
        (lambda s: np.array([s], np.int64), (1,)),
        (lambda s: Tensor(s), ()),
        (lambda s: Tensor(np.array([s], np.int32)), (1,)),
    ],
    ids=["int", "np.int32", "array-0d", "array-int64-(1,)", "Tensor", "Tensor-(1,)"],
)
@pytest.mark.parametrize("row", SCHEDULE_ROWS[::9], ids=_row_id)
def test_global_step_kinds(row: dict[str, Any], make_step: Any, shape: tuple[int, ...]) -> None:
    schedule = MSADAM_NAMESPACE[row["class"]](*row["args"])
    steps = STEPS[:12]
    for step in steps:
        out = schedule(make_step(step))
        assert isinstance(out, Tensor) and out.dtype == np.float32 and out.shape == shape
    np.testing.assert_array_equal(_per_step(schedule, make_step, steps), _golden(row)[: len(steps)])


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        # NaturalExpDecayLR(is_stair=True): e**(-rate * floor(t/d)*d), never divided by d.
        (NaturalExpDecayLR(0.1, 0.5, 4, True), 7, 0.1 * np.float32(np.e) ** -2.0),
        (NaturalExpDecayLR(0.1, 0.5, 4, False), 7, 0.1 * np.float32(np.e) ** -3.5),
        # PolynomialDecayLR(update_decay_steps=True): the end value at each multiple of decay_steps.
        (PolynomialDecayLR(0.1, 0.01, 5, 2.0, True), 10, 0.01),
        (PolynomialDecayLR(0.1, 0.01, 5, 2.0, True), 11, 0.09 * (1 - 11 / 15) ** 2 + 0.01),
        (PolynomialDecayLR(0.1, 0.01, 5, 2.0, False), 11, 0.01),
        (WarmUpLR(0.0, 3), 5, 0.0),
        (WarmUpLR(0.3, 3), 1, 0.1),
        (CosineDecayLR(0.01, 0.1, 4), 2, 0.055),
    ],
)
def test_pinned_formulas(schedule: LearningRateSchedule, step: int, expected: float) -> None:
    np.testing.assert_allclose(schedule(step).asnumpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_live_values_match_mindspore(row: dict[str, Any], ms: Any) -> None:
    reference = _per_step(getattr(ms.nn, row["class"])(*row["args"]), lambda s: ms.Tensor(_optimizer_step(s)))
    got = _per_step(MSADAM_NAMESPACE[row["class"]](*row["args"]), _optimizer_step)
    np.testing.assert_allclose(got, reference, rtol=1e-6, atol=0)
    if EXACT:
        np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize("row", SCHEDULE_ROWS, ids=_row_id)
def test_live_attributes_match_mindspore(row: dict[str, Any], ms: Any) -> None:
    reference = getattr(ms.nn, row["class"])(*row["args"])
    ours = MSADAM_NAMESPACE[row["class"]](*row["args"])
    names = [name for name in ATTRIBUTES if hasattr(reference, name)]
    assert names
    assert {name: getattr(ours, name) for name in names} == {name: getattr(reference, name) for name in names}


# --- argument validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("row", VALIDATION_ROWS, ids=lambda row: row["call"])
def test_validation_matches_recorded_mindspore(row: dict[str, Any]) -> None:
    raises, message = _outcome(row["call"], MSADAM_NAMESPACE)
    assert raises == row["raises"], message
    if _authored_by_mindspore(row["message"]):
        assert message == row["message"]


@pytest.mark.parametrize("row", VALIDATION_ROWS, ids=lambda row: row["call"])
def test_validation_matches_live_mindspore(row: dict[str, Any], ms: Any) -> None:
    namespace = {name: getattr(ms.nn, name) for name in MSADAM_NAMESPACE if name != "LearningRateSchedule"}
    assert _outcome(row["call"], MSADAM_NAMESPACE) == _outcome(row["call"], namespace)


def test_validation_table_covers_every_class_and_outcome() -> None:
    classes = {row["call"].split("(")[0] for row in VALIDATION_ROWS}
    assert classes == set(schedules.__all__) - {"LearningRateSchedule"}
    assert {row["raises"] for row in VALIDATION_ROWS} >= {"ok", "TypeError", "ValueError", "OverflowError"}


# --- the base class --------------------------------------------------------------------------------


class _Recording(LearningRateSchedule):
    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result
        self.seen: list[Any] = []

    def construct(self, global_step: Any) -> Any:
        self.seen.append(global_step)
        return self.result


@pytest.mark.parametrize(
    "result",
    [0.25, np.float32(0.25), np.array(0.25, np.float32), Tensor(0.25)],
    ids=["float", "np.float32", "array", "Tensor"],
)
@pytest.mark.parametrize("step", [3, np.array([3], np.int32), Tensor(3)], ids=["int", "array-(1,)", "Tensor"])
def test_user_subclass_is_called_with_the_step(result: Any, step: Any) -> None:
    schedule = _Recording(result)
    assert schedule(step) is result
    assert schedule.seen == [step] and schedule.seen[0] is step
    assert isinstance(schedule, LearningRateSchedule) and schedule.cls_name == "_Recording"


def test_base_class_construct_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        LearningRateSchedule()(0)


def test_schedules_are_learning_rate_schedules() -> None:
    for name in schedules.__all__:
        assert issubclass(getattr(schedules, name), LearningRateSchedule)
    assert repr(ExponentialDecayLR(0.1, 0.9, 4)) == "ExponentialDecayLR()"


def test_overflow_is_silent_like_mindspore() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(ExponentialDecayLR(3.0, 10.0, 2)(10**6).asnumpy())
        assert NaturalExpDecayLR(3.0, 10.0, 2)(10**6).asnumpy() == 0.0


def test_core_module_imports_no_framework() -> None:
    roots = set()
    for node in ast.walk(ast.parse(Path(schedules.__file__).read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) <= {"numpy", "msadam"}
