"""A bad gradient is a clear error before any state changes, on every backend; a kernel failure says what moved.

``test_bad_gradient_changes_nothing`` plays one table of bad gradients (``CASES``) on every installed
backend. Each case runs on an optimizer that has already made one good step (so the moments are not
zero), puts the bad gradient *second*, after a good one for a parameter of another bucket (so a
check made bucket by bucket would already have stepped the first), and asserts:

* the exception class — MindSpore's wherever MindSpore raises one for the case (below);
* that ``state_dict()`` (parameters, ``moment1``/``moment2``/``vhat``, ``global_step``, beta powers,
  learning rates) is bit for bit what it was;
* that the next good step gives, bit for bit, what the optimizer would have reached without the
  failed step (a fresh optimizer's two good steps).

What ``mindspore.nn.Adam`` 2.10 does with each case (CPU, PyNative, run by hand: a (4, 3) float32
table, ``learning_rate=0.1``; sparse gradients through a ``@jit`` Cell calling it with a
``RowTensorInner``, as ``msadam_mindspore`` does). ``Case.mindspore`` holds its exception class, and
msadam's exception is an instance of it too. "State" says whether MindSpore's own state changed:

==========================================  =================================================  ==============
case                                        MindSpore 2.10                                     state
==========================================  =================================================  ==============
a list instead of a tuple                   ``RuntimeError`` (``Map``: types inconsistent)     unchanged
too few / too many / no gradients           ``RuntimeError`` (``Map``: lengths differ)         unchanged
wrong shape                                 ``ValueError`` (``Adam``: var_shape)               unchanged
float64 for float32                         ``TypeError`` (no implicit conversion)             unchanged
a torch / jax array, any other object       ``NotImplementedError`` (cannot be converted)      step, powers
``None``, a ``str``, a Python list          ``ValueError`` (cannot find fn match)              step, powers
RowTensor indices out of range / negative   default: ``RuntimeError`` (``ScatterAdd``; lazy:   ``m`` or ``w``,
                                            ``Gather``); ``target='CPU'``: no error, the rows  step, powers
                                            are dropped silently                               (CPU: a step)
RowTensor float or bool indices             ``TypeError`` ("dtype of indices must be a Int")   unchanged
RowTensor 2-D indices                       ``TypeError`` ("must be a 1 dimension tensor")     unchanged
RowTensor values rows != indices            ``TypeError`` ("first dimension of indices")       unchanged
RowTensor values' row shape != table's      ``TypeError`` ("element of dense_shape")           unchanged
RowTensor float64 values                    ``TypeError`` (no implicit conversion)             unchanged
RowTensor dense_shape != parameter's        no error (dense_shape is not read)                 a step
==========================================  =================================================  ==============

So MindSpore itself leaves a half-made step for some of them (its ``@jit`` construct falls back to
running the statements before the failing one); msadam changes nothing, whatever the case. msadam
differs on purpose: it takes NumPy arrays and Python lists that convert (MindSpore: ``TypeError`` /
``ValueError``), and refuses out-of-range indices on every path and a ``dense_shape`` that is not the
parameter's (``ValueError``). A wrong device (a torch ``meta`` tensor standing for "another device")
and a torch sparse CSR or 2-D COO tensor have no MindSpore counterpart: ``ValueError``, ``TypeError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import msadam
from msadam import registry
from msadam.tensor import Parameter, RowTensor

TABLE, BIAS = (6, 3), (3,)
FRAMEWORKS = ("torch", "jax", "tensorflow", "mindspore")

def _good(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(BIAS).astype(np.float32), rng.standard_normal(TABLE).astype(np.float32)


def _optimizer(backend_name: str, flavor: str) -> msadam.Adam:
    """Two parameters in two buckets (their learning rates differ): ``b`` first, ``table`` second."""
    rng = np.random.default_rng(7)
    b = Parameter(rng.standard_normal(BIAS).astype(np.float32), name="b", backend=backend_name)
    table = Parameter(rng.standard_normal(TABLE).astype(np.float32), name="table", backend=backend_name)
    return msadam.Adam([{"params": [b]}, {"params": [table], "lr": 0.05}], learning_rate=0.01,
                       use_amsgrad=flavor == "amsgrad", use_nesterov=flavor == "nesterov")


_REFERENCE: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _reference(backend_name: str, flavor: str) -> dict[str, np.ndarray]:
    """The state after the two good steps, without a failed step between them (computed once per backend)."""
    key = (backend_name, flavor)
    if key not in _REFERENCE:
        opt = _optimizer(backend_name, flavor)
        opt(_good(1))
        opt(_good(2))
        _REFERENCE[key] = opt.state_dict()
    return _REFERENCE[key]


def assert_bits_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        got = actual[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.tobytes() == value.tobytes(), f"{name} changed: {got} != {value}"


# -- how a case builds its gradients --------------------------------------------------------------------


def _native(backend_name: str, array: np.ndarray) -> Any:
    return registry.load_backend(backend_name).from_numpy(array)


def _foreign(backend_name: str, array: np.ndarray) -> Any:
    """``array`` as an array of another installed framework than the one under test."""
    others = [name for name in FRAMEWORKS if name != backend_name and name in msadam.available_backends()]
    if not others:
        pytest.skip("no other framework installed")
    return _native(others[0], array)


def _torch_only(backend_name: str, make: Callable[[Any], Any]) -> Any:
    if backend_name != "torch":
        pytest.skip("only torch tensors carry a device and a layout msadam can compare")
    import torch

    return make(torch)


def _csr(tensor: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Sparse CSR tensor support is in beta state"
        return tensor.to_sparse_csr()


def _native_f64(backend_name: str, array: np.ndarray) -> Any:
    if backend_name == "jax":
        pytest.skip("JAX holds float64 only with jax_enable_x64")
    return _native(backend_name, array.astype(np.float64))


def _native_row_sparse(backend_name: str, indices: np.ndarray, values: np.ndarray, rows: int | None = None) -> Any:
    """The framework's own row-sparse gradient, built without its own checks where it has some.

    ``rows``: keep only the first ``rows`` indices (values then have a row too many), where the type allows it.
    """
    if rows is not None:
        if backend_name in ("torch", "jax"):
            pytest.skip(f"{backend_name}'s sparse type cannot hold more values than indices")
        indices = indices[:rows]
    if backend_name == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant(TABLE, tf.int64))
    if backend_name == "jax":
        from jax.experimental import sparse

        return sparse.BCOO((values, indices[:, None]), shape=TABLE)
    if backend_name == "torch":
        import torch

        try:
            return torch.sparse_coo_tensor(torch.from_numpy(indices)[None, :], torch.from_numpy(values), TABLE,
                                           check_invariants=False)
        except RuntimeError as exc:  # torch checks the indices against the size itself
            pytest.skip(f"torch refuses to build it: {exc}")
    if backend_name == "mindspore":
        from mindspore import Tensor
        from mindspore.common.sparse_tensor import RowTensorInner

        return RowTensorInner(Tensor(indices), Tensor(values), TABLE)
    pytest.skip(f"{backend_name} has no row-sparse gradient type of its own")


def _rows(n: int) -> np.ndarray:
    return np.arange(n * TABLE[1], dtype=np.float32).reshape(n, TABLE[1]) / 10


def _sparse(indices: Any, values: Any = None, dense_shape: tuple[int, ...] = TABLE) -> RowTensor:
    return RowTensor(indices, _rows(len(indices)) if values is None else values, dense_shape)


Build = Callable[[str, np.ndarray, np.ndarray], Any]  # (backend, good bias grad, good table grad) -> gradients


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    error: type[Exception]  # msadam's documented class
    match: str
    mindspore: type[Exception] | None = None  # MindSpore's class when it differs (msadam's error is one too)
    flavor: str = "adam"


I32 = np.int32
ROWS = np.array([0, 2], I32)
CASES = [
    # containers and counts
    Case("list", lambda n, b, t: [b, t], RuntimeError, "tuple"),
    Case("too_few", lambda n, b, t: (b,), RuntimeError, "number of gradients"),
    Case("too_many", lambda n, b, t: (b, t, t), RuntimeError, "number of gradients"),
    Case("empty", lambda n, b, t: (), RuntimeError, "number of gradients"),
    # dense gradients
    Case("wrong_shape", lambda n, b, t: (b, t.T), ValueError, "shape"),
    Case("wrong_shape_native", lambda n, b, t: (b, _native(n, t.reshape(-1))), ValueError, "shape"),
    Case("wrong_shape_amsgrad", lambda n, b, t: (b, t[:2]), ValueError, "shape", flavor="amsgrad"),
    Case("wrong_shape_nesterov", lambda n, b, t: (b, t[:2]), ValueError, "shape", flavor="nesterov"),
    Case("float64", lambda n, b, t: (b, t.astype(np.float64)), TypeError, "dtype|float64"),
    Case("float64_native", lambda n, b, t: (b, _native_f64(n, t)), TypeError, "dtype"),
    Case("float64_amsgrad", lambda n, b, t: (b, t.astype(np.float64)), TypeError, "dtype|float64", flavor="amsgrad"),
    Case("another_framework", lambda n, b, t: (b, _foreign(n, t)), TypeError, "another framework",
         NotImplementedError),
    Case("object", lambda n, b, t: (b, object()), TypeError, "got object", NotImplementedError),
    Case("none", lambda n, b, t: (b, None), TypeError, "got NoneType", ValueError),
    Case("string", lambda n, b, t: (b, "gradient"), TypeError, "got str", ValueError),
    Case("ragged_list", lambda n, b, t: (b, [[1.0, 2.0], [3.0]]), TypeError, "converted", ValueError),
    Case("object_array", lambda n, b, t: (b, np.full(TABLE, None, object)), TypeError, "numeric|dtype"),
    Case("meta_device", lambda n, b, t: (b, _torch_only(n, lambda torch: torch.empty(TABLE, device="meta"))),
         ValueError, "device"),
    Case("sparse_csr", lambda n, b, t: (b, _torch_only(n, lambda torch: _csr(torch.from_numpy(t)))), TypeError,
         "layout"),
    Case("sparse_coo_2d", lambda n, b, t: (b, _torch_only(n, lambda torch: torch.from_numpy(t).to_sparse(2))),
         TypeError, "layout"),
    # RowTensors
    Case("rows_out_of_range", lambda n, b, t: (b, _sparse(np.array([0, 6], I32))), ValueError, r"\[0, 6\)",
         RuntimeError),
    Case("rows_negative", lambda n, b, t: (b, _sparse(np.array([-1, 2], I32))), ValueError, r"\[0, 6\)",
         RuntimeError),
    Case("rows_out_of_range_native", lambda n, b, t: (b, _sparse(_native(n, np.array([2, 9], I32)))),
         ValueError, r"\[0, 6\)", RuntimeError),
    Case("rows_out_of_range_int64", lambda n, b, t: (b, _sparse(np.array([1, 2**40], np.int64))),
         ValueError, r"\[0, 6\)", RuntimeError),
    Case("rows_float_indices", lambda n, b, t: (b, _sparse(np.array([0.0, 2.0], np.float32))), TypeError,
         "integers"),
    Case("rows_bool_indices", lambda n, b, t: (b, _sparse(np.array([True, False]))), TypeError, "integers"),
    Case("rows_2d_indices", lambda n, b, t: (b, _sparse(np.array([[0], [2]], I32), _rows(2))), TypeError, "1-D"),
    Case("rows_too_many_values", lambda n, b, t: (b, _sparse(ROWS, _rows(3))), TypeError, "one row per index"),
    Case("rows_wrong_row_shape", lambda n, b, t: (b, _sparse(ROWS, np.ones((2, 4), np.float32))), TypeError,
         "one row per index"),
    Case("rows_wrong_dense_shape", lambda n, b, t: (b, _sparse(ROWS, dense_shape=(7, 3))), ValueError,
         "dense_shape"),
    Case("rows_float64_values", lambda n, b, t: (b, _sparse(ROWS, _rows(2).astype(np.float64))), TypeError,
         "dtype|float64"),
    Case("rows_indices_of_another_framework", lambda n, b, t: (b, _sparse(_foreign(n, ROWS), _rows(2))),
         TypeError, "another framework", NotImplementedError),
    Case("rows_values_of_another_framework", lambda n, b, t: (b, _sparse(ROWS, _foreign(n, _rows(2)))),
         TypeError, "another framework", NotImplementedError),
    Case("rows_meta_values", lambda n, b, t: (b, _sparse(ROWS, _torch_only(
        n, lambda torch: torch.empty((2, 3), device="meta")))), ValueError, "device"),
    Case("rows_in_amsgrad", lambda n, b, t: (b, _sparse(ROWS)), TypeError, "AMSGrad", flavor="amsgrad"),
    Case("native_rows_out_of_range", lambda n, b, t: (b, _native_row_sparse(n, np.array([1, 6], I32), _rows(2))),
         ValueError, r"\[0, 6\)", RuntimeError),
    Case("native_rows_negative", lambda n, b, t: (b, _native_row_sparse(n, np.array([1, -2], I32), _rows(2))),
         ValueError, r"\[0, 6\)", RuntimeError),
    Case("native_rows_too_many_values",
         lambda n, b, t: (b, _native_row_sparse(n, np.array([1, 2, 3], I32), _rows(3), rows=2)), TypeError,
         "one row per index"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_gradient_changes_nothing(backend_name: str, case: Case) -> None:
    opt = _optimizer(backend_name, case.flavor)
    opt(_good(1))
    before = opt.state_dict()
    bad = case.build(backend_name, *_good(2))
    with pytest.raises(case.error, match=case.match) as info:
        opt(bad)
    if case.mindspore is not None:
        assert isinstance(info.value, case.mindspore), f"MindSpore raises {case.mindspore.__name__} here"
    assert_bits_equal(opt.state_dict(), before)
    opt(_good(2))
    assert_bits_equal(opt.state_dict(), _reference(backend_name, case.flavor))


def _failing_on_call(monkeypatch: pytest.MonkeyPatch, opt: msadam.Adam, failing_call: int) -> list[int]:
    """Make the backend's dense kernel raise on its ``failing_call``-th call (1 = the first bucket)."""
    backend = opt._backend
    real = backend.dense_step
    calls: list[int] = []

    def dense_step(bucket: Any, grads: Any, hyper: Any) -> None:
        calls.append(len(calls) + 1)
        if len(calls) == failing_call:
            raise MemoryError("simulated: the kernel of this bucket failed")
        real(bucket, grads, hyper)

    monkeypatch.setattr(backend, "dense_step", dense_step)
    return calls


def test_kernel_failure_in_the_first_bucket_changes_nothing(backend_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that fails before writing (a trace/compile error, out of memory at allocation) leaves no trace."""
    opt = _optimizer(backend_name, "adam")
    opt(_good(1))
    before = opt.state_dict()
    _failing_on_call(monkeypatch, opt, 1)
    with pytest.raises(MemoryError, match="simulated") as info:
        opt(_good(2))
    assert "parameters already updated: none" in "\n".join(getattr(info.value, "__notes__", []))
    assert_bits_equal(opt.state_dict(), before)
    monkeypatch.undo()
    opt(_good(2))
    assert_bits_equal(opt.state_dict(), _reference(backend_name, "adam"))


def test_kernel_failure_in_a_later_bucket_is_reported_and_recoverable(
    backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not all-or-nothing (undoing would cost a copy of all state per step): the first bucket keeps its
    update, the counters are restored, the note names what moved, and loading a state_dict() taken
    before the step recovers exactly."""
    opt = _optimizer(backend_name, "adam")
    opt(_good(1))
    before = opt.state_dict()
    _failing_on_call(monkeypatch, opt, 2)
    with pytest.raises(MemoryError, match="simulated") as info:
        opt(_good(2))
    assert "parameters already updated: ['b']; possibly partly updated: ['table']" in "\n".join(info.value.__notes__)
    after = opt.state_dict()  # the Parameters point at live arrays (JAX's donated buffers were replaced)
    reference = _reference(backend_name, "adam")
    for name in ("global_step", "beta1_power", "beta2_power", "table", "moment1.table", "moment2.table"):
        assert after[name].tobytes() == before[name].tobytes(), name
    for name in ("b", "moment1.b", "moment2.b"):  # stepped: exactly the good step's values
        assert after[name].tobytes() == reference[name].tobytes(), name
    monkeypatch.undo()
    opt.load_state_dict(before)
    opt(_good(2))
    assert_bits_equal(opt.state_dict(), reference)
