"""Behaviour of msadam.Adam a user relies on, on every installed backend (numbers: test_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

import msadam
from msadam.tensor import Parameter, RowTensor, Tensor


def make_params(backend_name: str, names: tuple[str, ...] = ("w", "b"), seed: int = 0) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    shapes = [(4, 16), (16,), (3, 5), (2, 32)]
    return [
        Parameter(rng.standard_normal(shapes[i % len(shapes)]).astype(np.float32), name=name, backend=backend_name)
        for i, name in enumerate(names)
    ]


def grads_for(params: list[Parameter], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(p.shape).astype(np.float32) for p in params)


def snapshot(opt: msadam.Adam) -> dict[str, np.ndarray]:
    return opt.state_dict()


def test_first_step_matches_the_closed_form(backend_name: str) -> None:
    (w,) = make_params(backend_name, ("w",))
    start = w.asnumpy()
    g = np.full(w.shape, 0.5, np.float32)
    opt = msadam.Adam([w], learning_rate=0.1)
    assert opt((g,)) == (True,)
    # Step 1: m = (1-b1) g, v = (1-b2) g^2, lr_t = lr * sqrt(1-b2) / (1-b1), w -= lr_t * m / (sqrt(v) + eps),
    # with 1-b1 and 1-b2 taken in float32 as MindSpore does (1 - float32(0.999) is not 0.001).
    one_b1, one_b2 = np.float32(1) - np.float32(0.9), np.float32(1) - np.float32(0.999)
    m, v = one_b1 * g, one_b2 * g * g
    lr_t = np.float32(0.1) * np.sqrt(one_b2) / one_b1
    np.testing.assert_allclose(w.asnumpy(), start - lr_t * m / (np.sqrt(v) + np.float32(1e-8)), atol=1e-6)
    np.testing.assert_allclose(opt.moment1[0].asnumpy(), m, rtol=1e-6)
    np.testing.assert_allclose(opt.moment2[0].asnumpy(), v, rtol=1e-6)
    assert opt.global_step.asnumpy().tolist() == [1]
    assert opt.beta1_power.asnumpy() == np.float32(0.9)


def test_state_names_and_dtypes_follow_mindspore(backend_name: str) -> None:
    params = make_params(backend_name, ("w", "b"))
    opt = msadam.Adam([{"params": params[:1], "lr": 0.1}, {"params": params[1:]}],
                      learning_rate=Tensor(np.array([0.1, 0.2], np.float32)), use_amsgrad=True)
    state = opt.state_dict()
    assert list(state) == ["global_step", "w", "b", "beta1_power", "beta2_power", "moment1.w", "moment1.b",
                           "moment2.w", "moment2.b", "vhat.w", "vhat.b", "learning_rate_group_0", "learning_rate"]
    assert state["global_step"].dtype == np.int32 and state["global_step"].shape == (1,)
    assert state["beta1_power"].dtype == np.float32 and state["beta1_power"].shape == ()
    assert state["learning_rate"].shape == (2,)


def test_state_dict_round_trip_continues_identically(backend_name: str) -> None:
    def run(steps: range, opt: msadam.Adam, params: list[Parameter]) -> None:
        for s in steps:
            opt(grads_for(params, s))

    params_a = make_params(backend_name, ("w", "gamma"))
    opt_a = msadam.Adam(params_a, learning_rate=[0.1, 0.05, 0.02, 0.01, 0.01], weight_decay=0.1, use_nesterov=True)
    run(range(2), opt_a, params_a)
    saved = opt_a.state_dict()
    params_b = make_params(backend_name, ("w", "gamma"), seed=99)
    opt_b = msadam.Adam(params_b, learning_rate=[0.1, 0.05, 0.02, 0.01, 0.01], weight_decay=0.1, use_nesterov=True)
    opt_b.load_state_dict(saved)
    run(range(2, 5), opt_a, params_a)
    run(range(2, 5), opt_b, params_b)
    for key, value in opt_a.state_dict().items():
        np.testing.assert_array_equal(opt_b.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"moment1.w": np.zeros((2, 2), np.float32)}, ValueError),
        ({"nonsense": np.zeros(1, np.float32)}, KeyError),
    ],
)
def test_load_state_dict_is_all_or_nothing(backend_name: str, bad: dict, error: type) -> None:
    params = make_params(backend_name, ("w",))
    opt = msadam.Adam(params)
    opt(grads_for(params, 0))
    state = opt.state_dict()
    damaged = {**{k: v + 1 for k, v in state.items()}, **bad}
    with pytest.raises(error):
        opt.load_state_dict(damaged)
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_replaced_parameter_data_is_used_by_the_next_step(backend_name: str) -> None:
    """Parameter.set_data between steps (e.g. a checkpoint load) takes effect, as in MindSpore."""
    params_a = make_params(backend_name, ("w", "b", "c"))
    params_b = make_params(backend_name, ("w", "b", "c"))
    opt_a, opt_b = msadam.Adam(params_a), msadam.Adam(params_b)
    new_value = np.arange(16, dtype=np.float32)
    params_a[1].set_data(new_value)
    params_b[1].set_data(Tensor(new_value))
    for s in range(3):
        opt_a(grads_for(params_a, s))
        opt_b(grads_for(params_b, s))
    for pa, pb in zip(params_a, params_b, strict=True):
        np.testing.assert_array_equal(pa.asnumpy(), pb.asnumpy())
    assert not np.array_equal(params_a[1].asnumpy(), new_value)


def test_fixed_learning_rate_parameter_can_be_changed_between_steps(backend_name: str) -> None:
    (w1,) = make_params(backend_name, ("w",))
    (w2,) = make_params(backend_name, ("w",))
    opt1, opt2 = msadam.Adam([w1], learning_rate=0.1), msadam.Adam([w2], learning_rate=0.01)
    opt1.learning_rate.set_data(np.float32(0.01))
    g = grads_for([w1], 0)
    opt1(g)
    opt2(g)
    np.testing.assert_array_equal(w1.asnumpy(), w2.asnumpy())
    assert opt1.get_lr().asnumpy() == np.float32(0.01)


def test_get_lr_and_get_lr_parameter_by_kind(backend_name: str) -> None:
    params = make_params(backend_name, ("w", "b"))
    schedule = msadam.ExponentialDecayLR(0.1, 0.9, 2)
    opt = msadam.Adam([{"params": params[:1], "lr": schedule}, {"params": params[1:], "lr": [0.3, 0.2]}],
                      learning_rate=0.1)
    assert opt.is_group and opt.is_group_lr and opt.dynamic_lr
    assert opt.get_lr_parameter(params[0]) is schedule
    vector = opt.get_lr_parameter(params[1])
    assert vector.name == "learning_rate_group_1" and vector.asnumpy().tolist() == pytest.approx([0.3, 0.2])
    lrs = opt.get_lr()
    assert isinstance(lrs, tuple) and float(lrs[1]) == pytest.approx(0.3)
    opt(grads_for(params, 0))
    assert float(opt.get_lr()[1]) == pytest.approx(0.2)
    assert float(opt.get_lr()[0]) == pytest.approx(float(schedule(np.array([1], np.int32)).asnumpy().reshape(())))


def test_weight_decay_is_premultiplied_by_loss_scale(backend_name: str) -> None:
    params = make_params(backend_name, ("w",))
    opt = msadam.Adam(params, weight_decay=0.1, loss_scale=4)
    assert float(opt.get_weight_decay()) == pytest.approx(0.4)
    assert opt.loss_scale == 4.0


def test_beta_and_gamma_names_skip_decay_only_without_groups(backend_name: str) -> None:
    names = ("w", "bn.beta", "ln.gamma", "bias")
    g = lambda params: tuple(np.zeros(p.shape, np.float32) for p in params)  # noqa: E731
    plain = make_params(backend_name, names)
    start = [p.asnumpy() for p in plain]
    msadam.Adam(plain, weight_decay=0.5)(g(plain))
    moved = [not np.array_equal(p.asnumpy(), s) for p, s in zip(plain, start, strict=True)]
    assert moved == [True, False, False, True]  # biases are decayed; beta/gamma are not
    grouped = make_params(backend_name, names)
    msadam.Adam([{"params": grouped, "weight_decay": 0.5}])(g(grouped))
    assert all(not np.array_equal(p.asnumpy(), s) for p, s in zip(grouped, start, strict=True))


def test_sparse_lazy_touches_only_indexed_rows(backend_name: str) -> None:
    table = Parameter(np.ones((1000, 4), np.float32), name="embedding", backend=backend_name)
    opt = msadam.Adam([table], learning_rate=0.1, use_lazy=True)
    grad = RowTensor(np.array([3, 7, 3], np.int32), np.ones((3, 4), np.float32), (1000, 4))
    opt((grad,))
    changed = np.flatnonzero(np.any(table.asnumpy() != 1.0, axis=1))
    assert changed.tolist() == [3, 7]
    assert np.count_nonzero(opt.moment1[0].asnumpy().any(axis=1)) == 2


def _native_row_sparse(backend_name: str, indices: np.ndarray, values: np.ndarray,
                       shape: tuple[int, int]) -> object | None:
    """The framework's own row-sparse gradient type, where it has one (what its autodiff gives)."""
    if backend_name == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant(shape, tf.int64))
    if backend_name == "jax":
        from jax.experimental import sparse

        return sparse.BCOO((values, indices[:, None]), shape=shape)
    if backend_name == "torch":
        import torch

        return torch.sparse_coo_tensor(torch.from_numpy(indices)[None, :], torch.from_numpy(values), shape,
                                       check_invariants=True)
    return None


@pytest.mark.parametrize("use_lazy", [False, True], ids=["composite", "lazy"])
def test_native_row_sparse_gradients_equal_row_tensors(backend_name: str, use_lazy: bool) -> None:
    indices, values = np.array([3, 7, 3, 0], np.int32), np.arange(16, dtype=np.float32).reshape(4, 4)
    native = _native_row_sparse(backend_name, indices, values, (10, 4))
    if native is None:
        pytest.skip(f"{backend_name} has no row-sparse gradient type of its own")
    tables = [Parameter(np.ones((10, 4), np.float32), name="embedding", backend=backend_name) for _ in range(2)]
    with_native, with_row_tensor = (msadam.Adam([t], learning_rate=0.1, use_lazy=use_lazy) for t in tables)
    for _ in range(2):  # repeats kept: index 3 counts twice on the composite path
        with_native((native,))
        with_row_tensor((RowTensor(indices, values, (10, 4)),))
    np.testing.assert_array_equal(tables[0].asnumpy(), tables[1].asnumpy())
    np.testing.assert_array_equal(with_native.moment2[0].asnumpy(), with_row_tensor.moment2[0].asnumpy())


def test_parameters_of_two_backends_are_rejected() -> None:
    class Foreign:  # a Parameter of another backend, simulated by a different backend object
        name = "other"

    params = make_params("numpy", ("w",))
    other = make_params("numpy", ("v",))[0]
    other._backend = Foreign()  # type: ignore[assignment]
    with pytest.raises(TypeError, match="one backend"):
        msadam.Adam([*params, other])


def test_use_locking_steps_from_threads_equal_sequential_steps(backend_name: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    threaded, sequential = make_params(backend_name, ("w",)), make_params(backend_name, ("w",))
    g = grads_for(threaded, 1)
    opt_t, opt_s = msadam.Adam(threaded, use_locking=True), msadam.Adam(sequential)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: opt_t(g), range(16)))
    for _ in range(16):
        opt_s(g)
    np.testing.assert_array_equal(threaded[0].asnumpy(), sequential[0].asnumpy())


def test_sparse_gradient_in_a_centralized_group_is_refused_before_any_change(backend_name: str) -> None:
    """MindSpore 2.10 cannot centralize a RowTensor (`F.shape` of it raises TypeError); neither do we."""
    table = Parameter(np.ones((8, 16), np.float32), name="emb", backend=backend_name)
    opt = msadam.Adam([{"params": [table], "grad_centralization": True}])
    before = opt.state_dict()
    with pytest.raises(TypeError, match="RowTensor"):
        opt((RowTensor(np.array([1, 2], np.int32), np.ones((2, 16), np.float32), (8, 16)),))
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_a_one_shot_iterator_as_group_params_gives_the_group_no_parameters(backend_name: str) -> None:
    """MindSpore 2.10 reads a group's iterator once to check it and finds it exhausted when it builds the
    group (``groups._is_one_shot``): reproduced, with a warning that points at the caller."""
    a, b = make_params(backend_name, ("a", "b"))
    with pytest.warns(msadam.MindSporeQuirkWarning, match="one-shot iterator") as record:
        opt = msadam.Adam([{"params": [a]}, {"params": filter(lambda p: True, [b]), "lr": 0.5}])
    assert record[0].filename == __file__
    assert [p.name for p in opt.parameters] == ["a"]
    assert list(opt.state_dict()) == ["global_step", "learning_rate", "a", "beta1_power", "beta2_power",
                                      "moment1.a", "moment2.a"]
    before = b.asnumpy()
    assert opt(grads_for([a], 1)) == (True,)
    assert np.array_equal(b.asnumpy(), before)

    with pytest.warns(msadam.MindSporeQuirkWarning):
        empty = msadam.Adam([{"params": iter([a, b])}])  # every group: an optimizer over nothing
    assert empty.parameters == ()
    assert empty(()) == ()
    assert int(empty.global_step.asnumpy()[0]) == 1
    assert list(empty.state_dict()) == ["global_step", "learning_rate", "beta1_power", "beta2_power"]


def test_a_list_or_tuple_as_group_params_is_kept(backend_name: str) -> None:
    a, b = make_params(backend_name, ("a", "b"))
    opt = msadam.Adam([{"params": (a,)}, {"params": list(filter(lambda p: True, [b])), "lr": 0.5}])
    assert [p.name for p in opt.parameters] == ["a", "b"]
