"""The torch backend (msadam-torch) against the NumPy reference: bit-exact float32 on the CPU, every path.

MindSpore parity itself is tested by test_parity.py / test_selfcheck.py (parametrized over installed
backends); here the torch kernels are held to the reference's exact bits, the in-place contract
(``nn.Parameter`` identity, ``requires_grad``) is pinned, and the lazy paths are checked to touch
only indexed rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from msadam_torch import kernels
from msadam_torch.backend import TorchBackend

import msadam
from msadam.backend import Bucket, SparseGrad, SparsePath, StepHyper
from msadam.backends import numpy_kernels
from msadam.backends.numpy_backend import NumpyBackend

REFERENCE = NumpyBackend()
TORCH = TorchBackend(device="cpu")
# Scalars, scalar tails (size % 8), centralizable shapes, a tensor split across chunks with the small chunk.
SHAPES: list[tuple[int, ...]] = [(), (5,), (4, 16), (3, 32, 3), (1000,), (9, 111)]
FORMS: dict[str, dict[str, Any]] = {
    "plain": {}, "nesterov": {"use_nesterov": True}, "amsgrad": {"use_amsgrad": True},
    "amsgrad-nesterov": {"use_amsgrad": True, "use_nesterov": True}}
PREPROCESSING: dict[str, dict[str, Any]] = {
    "none": {}, "decay": {"weight_decay": np.float32(0.04)}, "loss-scale": {"grad_scale": np.float32(0.125)},
    "centralize": {"centralize": True},
    "all": {"weight_decay": np.float32(0.3), "grad_scale": np.float32(1 / 3), "centralize": True}}


def make_hyper(step: int, **overrides: Any) -> StepHyper:
    """The StepHyper of step ``step`` (beta powers advanced as the core does), with ``overrides``."""
    beta1, beta2 = np.float32(0.9), np.float32(0.99)
    fields: dict[str, Any] = {
        "lr": np.float32(0.01), "beta1": beta1, "beta2": beta2, "eps": np.float32(1e-6),
        "beta1_power": np.float32(beta1**step), "beta2_power": np.float32(beta2**step), "weight_decay": None,
        "centralize": False, "grad_scale": None, "use_nesterov": False, "use_amsgrad": False,
    }
    return StepHyper(**{**fields, **overrides})


def state(bucket: Bucket) -> Iterator[tuple[str, int, Any]]:
    for field in ("params", "m", "v", "vhat"):
        for i, array in enumerate(getattr(bucket, field) or []):
            yield field, i, array


def assert_buckets_equal(reference: Bucket, mine: Bucket, check: Callable[..., None] = np.testing.assert_array_equal,
                         ) -> None:
    pairs = zip(state(reference), state(mine), strict=True)
    for (field, i, expected), (_, _, actual) in pairs:
        check(TORCH.to_numpy(actual), expected, err_msg=f"{field}[{i}]")


def buckets(values: list[np.ndarray], amsgrad: bool, device: str = "cpu") -> tuple[Bucket, Bucket]:
    """A reference bucket and a torch bucket (of ``nn.Parameter``s) with the same initial values."""
    params = [torch.nn.Parameter(torch.from_numpy(v.copy()).to(device)) for v in values]
    return REFERENCE.new_bucket([v.copy() for v in values], amsgrad), TORCH.new_bucket(params, amsgrad)


def run_dense(values: list[np.ndarray], hyper: dict[str, Any], steps: int = 3, seed: int = 0,
              device: str = "cpu") -> tuple[Bucket, Bucket]:
    rng = np.random.default_rng(seed)
    reference, mine = buckets(values, bool(hyper.get("use_amsgrad")), device)
    for step in range(1, steps + 1):
        grads = [np.asarray(rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 2), v.dtype) for v in values]
        h = make_hyper(step, **hyper)
        REFERENCE.dense_step(reference, grads, h)
        TORCH.dense_step(mine, [torch.from_numpy(g).to(device) for g in grads], h)
    return reference, mine


def initial(shapes: Sequence[tuple[int, ...]], dtype: Any = np.float32, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(shape), dtype) for shape in shapes]


@pytest.fixture(params=["torch", "native"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs the torch kernels, and again the compiled one (msadam_torch.native) when it is built."""
    if request.param == "torch":
        monkeypatch.setenv(kernels.ENV_NATIVE, "0")
    elif kernels.native_kernel() is None:
        pytest.skip(f"msadam_torch.native is unavailable: {kernels._import_native()[1]}")
    return str(request.param)


@pytest.fixture(params=[None, 64], ids=["default-chunk", "chunk-64"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default chunk, and a tiny one: tensors split across chunks, small ones packed together."""
    if request.param is not None:
        monkeypatch.setitem(kernels._CHUNK, "cpu", request.param)


# ----------------------------------------------------------------------------- dense


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("pre", PREPROCESSING)
def test_dense_float32_is_bit_exact(form: str, pre: str, chunk: None, kernel: str) -> None:
    assert_buckets_equal(*run_dense(initial(SHAPES), {**FORMS[form], **PREPROCESSING[pre]}))


def test_dense_with_many_small_tensors_is_bit_exact(kernel: str) -> None:
    shapes = [(int(n),) for n in np.random.default_rng(5).integers(1, 40, size=300)]
    assert_buckets_equal(*run_dense(initial(shapes), {"use_nesterov": True, "weight_decay": np.float32(0.1)}))


def test_sub_buckets_and_non_contiguous_tensors_are_bit_exact(kernel: str) -> None:
    """The core steps a sub-bucket (empty cache) when some members got sparse gradients."""
    values = initial([(16, 9), (7, 5)])
    reference = Bucket([v.copy() for v in values], [np.zeros_like(v) for v in values],
                       [np.zeros_like(v) for v in values], None)
    params = [torch.from_numpy(v.T.copy()).T for v in values]  # transposed storage: not contiguous
    mine = Bucket(params, [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params], None)
    rng = np.random.default_rng(3)
    for step in range(1, 4):
        grads = [rng.standard_normal(v.shape).astype(np.float32) for v in values]
        h = make_hyper(step, weight_decay=np.float32(0.01), centralize=True)
        REFERENCE.dense_step(reference, grads, h)
        TORCH.dense_step(mine, [torch.from_numpy(g.T.copy()).T for g in grads], h)
    assert not mine.params[0].is_contiguous()
    assert_buckets_equal(reference, mine)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("form", FORMS)
def test_other_dtypes_use_the_plain_formula(dtype: Any, form: str) -> None:
    pre = {"weight_decay": np.float32(0.02), "grad_scale": np.float32(0.5)}
    for extra in ({}, pre, {"grad_scale": np.float32(0.5)}):
        reference, mine = run_dense(initial([(37,), (4, 16)], dtype), {**FORMS[form], **extra})
        assert all(p.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype for p in mine.params)
        assert_buckets_equal(reference, mine)


def test_bfloat16_tensors_step_with_the_plain_formula() -> None:
    start = torch.linspace(-2, 2, 64)
    param, grad = start.bfloat16(), torch.linspace(-1, 1, 64, dtype=torch.bfloat16)
    m, v = torch.zeros_like(param), torch.zeros_like(param)
    kernels.adam_step_([param], [grad], [m], [v], None, make_hyper(1, lr=np.float32(0.1)))
    # The first step moves every weight by lr_t = 0.1 against its gradient's sign.
    torch.testing.assert_close(param.float(), start - 0.1 * grad.float().sign(), atol=0.02, rtol=0)


# ----------------------------------------------------------------------------- sparse


@pytest.mark.parametrize("path", list(SparsePath), ids=lambda p: p.value)
@pytest.mark.parametrize("lazy", [False, True], ids=["dense", "lazy"])
@pytest.mark.parametrize("nesterov", [False, True], ids=["", "nesterov"])
@pytest.mark.parametrize("dedup", [False, True], ids=["", "dedup"])
@pytest.mark.parametrize("shape", [(50, 8), (50,)], ids=["rows", "vector"])
def test_sparse_float32_is_bit_exact(path: SparsePath, lazy: bool, nesterov: bool, dedup: bool,
                                     shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    reference, mine = buckets(initial([shape]), amsgrad=False)
    for step in range(1, 5):
        indices = rng.integers(0, 12, size=20)  # few rows: indices repeat
        values = rng.standard_normal((20, *shape[1:])).astype(np.float32)
        h = make_hyper(step, use_nesterov=nesterov, weight_decay=np.float32(0.05), grad_scale=np.float32(0.5))
        REFERENCE.sparse_step(reference, 0, SparseGrad(indices, values, lazy, path, dedup), h)
        grad = SparseGrad(torch.from_numpy(indices.astype(np.int32)), torch.from_numpy(values), lazy, path, dedup)
        TORCH.sparse_step(mine, 0, grad, h)
        assert_buckets_equal(reference, mine)


class _TableOps(torch.overrides.TorchFunctionMode):
    """Records the torch functions called with a tensor of at least ``size`` elements."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.names = size, set[str]()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if any(isinstance(a, torch.Tensor) and a.numel() >= self.size for a in (*args, *kwargs.values())):
            self.names.add(getattr(func, "__name__", repr(func)))
        return func(*args, **kwargs)


@pytest.mark.parametrize("path", list(SparsePath), ids=lambda p: p.value)
@pytest.mark.parametrize("nesterov", [False, True], ids=["", "nesterov"])
def test_lazy_paths_touch_only_indexed_rows(path: SparsePath, nesterov: bool) -> None:
    table = torch.nn.Parameter(torch.ones(10_000, 4))
    bucket = TORCH.new_bucket([table], False)
    grad = SparseGrad(torch.tensor([3, 7, 3, 9998]), torch.ones(4, 4), True, path)
    h = make_hyper(1, use_nesterov=nesterov, weight_decay=np.float32(0.1))
    with _TableOps(table.numel()) as ops:
        TORCH.sparse_step(bucket, 0, grad, h)
    # Only gathers and scatters of the touched rows (and attribute reads) see the whole table.
    assert ops.names <= {"index_select", "index_add_", "index_copy_", "__get__"}, ops.names
    touched = torch.tensor([3, 7, 9998])
    untouched = torch.ones(10_000, dtype=torch.bool).index_fill_(0, touched, False)
    for array, start in ((table, 1.0), (bucket.m[0], 0.0), (bucket.v[0], 0.0)):
        assert bool((array[untouched] == start).all()) and bool((array[touched] != start).all())


# ----------------------------------------------------------------------------- the in-place contract


def test_nn_parameters_stay_the_same_objects_and_keep_requires_grad() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.LayerNorm(8))
    named = list(model.named_parameters())
    params = [msadam.Parameter(p, name=name) for name, p in named]
    assert {p.backend for p in params} == {"torch"}
    opt = msadam.Adam(params, learning_rate=0.1, weight_decay=0.01)
    before = [p.detach().clone() for _, p in named]
    for _ in range(2):
        grads = tuple(torch.randn_like(p) for _, p in named)
        copies = [g.clone() for g in grads]
        opt(grads)
        assert all(torch.equal(g, c) for g, c in zip(grads, copies, strict=True))  # gradients are read only
    for (_, tensor), param, start, m in zip(named, params, before, opt.moment1, strict=True):
        assert param.data is tensor and isinstance(tensor, torch.nn.Parameter)
        assert tensor.requires_grad and tensor.is_leaf and tensor.grad_fn is None
        assert not torch.equal(tensor, start)
        assert not m.data.requires_grad and m.data.shape == tensor.shape
    model(torch.randn(2, 16)).sum().backward()  # autograd still works on the updated parameters
    assert all(p.grad is not None for p in model.parameters())


def test_backend_conversions(monkeypatch: pytest.MonkeyPatch) -> None:
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = TORCH.from_numpy(source)
    source[0, 0] = 99.0
    assert tensor[0, 0].item() == 0.0 and TORCH.owns(tensor) and not TORCH.owns(source)
    assert TORCH.shape(tensor) == (2, 3) and TORCH.dtype(tensor) == np.float32
    assert TORCH.cast(tensor, np.dtype(np.float32)) is tensor
    assert TORCH.cast(tensor, np.dtype(np.float64)).dtype == torch.float64
    param = torch.nn.Parameter(torch.zeros(2, 3))
    assert TORCH.assign(param, tensor) is param and torch.equal(param, tensor) and param.requires_grad
    np.testing.assert_array_equal(TORCH.to_numpy(param), tensor.numpy())
    assert "cpu" in TORCH.devices() and TORCH.version() == str(torch.__version__)
    monkeypatch.setenv("MSADAM_TORCH_DEVICE", "meta")  # a device every build has, without a GPU
    assert TorchBackend().from_numpy(source).device.type == "meta"
    assert "torch" in msadam.available_backends()


def test_bfloat16_dtype_needs_ml_dtypes() -> None:
    tensor = torch.zeros(3, dtype=torch.bfloat16)
    try:
        import ml_dtypes
    except ImportError:
        with pytest.raises(TypeError, match="ml_dtypes"):
            TORCH.dtype(tensor)
    else:
        assert TORCH.dtype(tensor) == np.dtype(ml_dtypes.bfloat16)
        assert TORCH.from_numpy(TORCH.to_numpy(tensor)).dtype == torch.bfloat16


# ----------------------------------------------------------------------------- native dispatch


@pytest.mark.parametrize("handled", [True, False])
def test_the_compiled_kernel_gets_preprocessed_gradients(monkeypatch: pytest.MonkeyPatch, handled: bool) -> None:
    calls: list[tuple[list[Any], StepHyper]] = []

    def fake(params: Any, grads: Any, m: Any, v: Any, vhat: Any, hyper: StepHyper) -> bool:
        calls.append((list(grads), hyper))
        return handled

    monkeypatch.delenv(kernels.ENV_NATIVE, raising=False)
    monkeypatch.setattr(kernels, "_import_native", lambda: (fake, None))
    values, pre = initial([(4, 16)]), PREPROCESSING["all"]
    reference, mine = run_dense(values, pre, steps=1)
    (grads, hyper), = calls
    assert hyper.weight_decay is None and hyper.grad_scale is None and not hyper.centralize
    rng = np.random.default_rng(0)
    raw = [np.asarray(rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 2), np.float32) for v in values]
    expected = numpy_kernels.preprocess(raw[0], values[0], make_hyper(1, **pre))
    np.testing.assert_array_equal(grads[0].numpy(), expected)
    if handled:
        np.testing.assert_array_equal(mine.params[0].detach().numpy(), values[0])  # the fake did nothing
    else:
        assert_buckets_equal(reference, mine)  # declined: the torch kernel ran


# ----------------------------------------------------------------------------- sparse COO gradients


def test_embedding_gradients_keep_their_repeated_rows() -> None:
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    lookups = torch.tensor([1, 2, 1, 1])
    embedding(lookups).pow(2).sum().backward()
    grad = embedding.weight.grad
    assert grad is not None and not grad.is_coalesced()
    indices, values = kernels.coo_to_row_parts(grad)
    assert indices.tolist() == lookups.tolist() and values.shape == (4, 3)
    torch.testing.assert_close(torch.zeros(10, 3).index_add_(0, indices, values), grad.to_dense())
    coalesced, summed = kernels.coo_to_row_parts(grad.coalesce())
    assert coalesced.tolist() == [1, 2] and summed.shape == (2, 3)
    # Through the optimizer, the repeats select MindSpore's per-occurrence numbers (composite path).
    params = {b: msadam.Parameter(np.ones((10, 3), np.float32), name="emb", backend=b) for b in ("numpy", "torch")}
    for backend, param in params.items():
        i, v = (indices, values) if backend == "torch" else (indices.numpy(), values.detach().numpy())
        msadam.Adam([param], learning_rate=0.1)((msadam.RowTensor(i, v, (10, 3)),))
    np.testing.assert_array_equal(params["torch"].asnumpy(), params["numpy"].asnumpy())


@pytest.mark.parametrize(("sparse_dim", "error"), [(2, ValueError), (None, TypeError)])
def test_coo_helper_refuses_what_is_not_row_sparse(sparse_dim: int | None, error: type) -> None:
    grad = torch.eye(2)
    with pytest.raises(error):
        kernels.coo_to_row_parts(grad if sparse_dim is None else grad.to_sparse(sparse_dim))


# ----------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(("form", "pre"), list(itertools.product(FORMS, PREPROCESSING)))
def test_cuda_matches_the_reference(form: str, pre: str) -> None:
    """Same code on CUDA (atomics and torch.mean may differ in the last bit): within 1e-6 relative."""
    reference, mine = run_dense(initial(SHAPES), {**FORMS[form], **PREPROCESSING[pre]}, device="cuda")
    assert all(p.device.type == "cuda" for p in mine.params + mine.m)
    assert_buckets_equal(reference, mine, lambda a, e, err_msg: np.testing.assert_allclose(
        a, e, rtol=1e-6, atol=1e-6 * float(np.abs(e).max(initial=1.0)), err_msg=err_msg))
    rng = np.random.default_rng(2)
    for path, lazy in itertools.product(SparsePath, (False, True)):
        reference, mine = buckets(initial([(50, 8)]), False, "cuda")
        indices, values = rng.integers(0, 12, size=20), rng.standard_normal((20, 8)).astype(np.float32)
        REFERENCE.sparse_step(reference, 0, SparseGrad(indices, values, lazy, path), make_hyper(1))
        TORCH.sparse_step(mine, 0, SparseGrad(torch.from_numpy(indices).cuda(), torch.from_numpy(values).cuda(),
                                              lazy, path), make_hyper(1))
        assert_buckets_equal(reference, mine, lambda a, e, err_msg: np.testing.assert_allclose(
            a, e, rtol=1e-6, atol=1e-7, err_msg=err_msg))


def test_fallback_kernel_rounds_fma_once_like_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """At float32 midpoints (tiny state, large gradient) the torch kernel's fma rounds once, as numpy_kernels.fma32."""
    from msadam_torch import kernels

    from msadam.backend import StepHyper
    from msadam.backends import numpy_kernels

    monkeypatch.setenv(kernels.ENV_NATIVE, "0")
    rng = np.random.default_rng(11)
    size = 4099
    g = rng.standard_normal(size).astype(np.float32)
    m = (rng.standard_normal(size) * 1e-30).astype(np.float32)
    v = (rng.random(size) * 1e-40).astype(np.float32)  # subnormal: the double-rounding hazard
    f32 = np.float32
    hyper = StepHyper(f32(1e-3), f32(0.25), f32(0.25), f32(1e-8), f32(0.25), f32(0.25), None, False, None, False, False)
    ref_w, ref_m, ref_v = np.ones(size, np.float32), m.copy(), v.copy()
    numpy_kernels.adam(ref_w, ref_m, ref_v, None, g, hyper)
    w_t, m_t, v_t = torch.ones(size), torch.from_numpy(m.copy()), torch.from_numpy(v.copy())
    assert kernels.adam_step_([w_t], [torch.from_numpy(g)], [m_t], [v_t], None, hyper)
    for ours, ref in ((w_t, ref_w), (m_t, ref_m), (v_t, ref_v)):
        np.testing.assert_array_equal(ours.numpy().view(np.int32), ref.view(np.int32))
    # The data must hit the hazard: rounding each float64 fma result straight to float32 (two roundings) differs.
    g64, v64 = g.astype(np.float64), v.astype(np.float64)
    inner = (g64 * g64 - v64).astype(np.float32).astype(np.float64)
    double_rounded = (inner * np.float64(f32(1) - f32(0.25)) + v64).astype(np.float32)
    assert not np.array_equal(double_rounded.view(np.int32), ref_v.view(np.int32))
