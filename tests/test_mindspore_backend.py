"""The ``mindspore`` backend (msadam-mindspore): real ``mindspore.nn.Adam`` behind msadam's protocol.

The key property: msadam.Adam trajectories on the ``mindspore`` backend equal the NumPy reference
within 1e-6 relative, and the golden trajectories recorded from MindSpore itself
(``tests/golden/trajectories``) bit for bit. Dense scenarios run in this process; every sparse
scenario runs in a process of its own (the golden recorder saw graph-mode state leak between
scenarios of one process), all of them started together on first use.

Skipped as a whole when msadam-mindspore or MindSpore is not installed, except the tests that
make MindSpore unimportable on purpose (they need only msadam-mindspore).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import msadam
from msadam.backend import Bucket, SparseGrad, SparsePath, StepHyper
from msadam.tensor import Parameter, RowTensor

pytest.importorskip("msadam_mindspore", reason="msadam-mindspore is not installed")

from msadam import parity as sc
from msadam.parity import load_record
from msadam.parity.scenarios import to_json

TESTS = Path(__file__).resolve().parent
FIXTURE_DIR = TESTS / "golden" / "trajectories"
REPO = TESTS.parent
BACKEND = "mindspore"
REL_TOL = 1e-6


def _mindspore_problem() -> str | None:
    try:
        msadam.registry.load_backend(BACKEND)
    except Exception as exc:  # not installed, or failed to load: say why
        return f"the mindspore backend does not load: {exc}"
    return None


_PROBLEM = _mindspore_problem()
_MINDSPORE_VERSION = None if _PROBLEM else msadam.registry.load_backend(BACKEND).version()
needs_mindspore = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSADAM_")}
    env.update(GLOG_v="3", TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


def run_python(code: str, timeout: float = 600.0, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh process (temporary working directory and ``MS_OM_PATH``)."""
    with tempfile.TemporaryDirectory(prefix="msadam-ms-test-") as tmp:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              cwd=tmp, env=_env(MS_OM_PATH=tmp, **env), timeout=timeout, check=False)


# ----------------------------------------------------------------------------- scenarios


def _all_scenarios() -> list[sc.Scenario]:
    return sc.named_scenarios() + [sc.random_scenario(seed) for seed in range(12)]


def _golden(scen: sc.Scenario) -> sc.Trajectory | None:
    """The trajectory recorded from this very MindSpore for exactly this scenario and these inputs, if any."""
    path = FIXTURE_DIR / f"{scen['name']}.npz"
    if not path.exists() or _MINDSPORE_VERSION is None:
        return None
    fixture = load_record(path, check_inputs=False)
    if fixture.mindspore_version != _MINDSPORE_VERSION or fixture.scenario != json.loads(to_json(scen)) \
            or fixture.inputs_digest != sc.inputs_digest(scen):
        return None
    return fixture.trajectory


def _check_trajectory(scen: sc.Scenario, ours: sc.Trajectory) -> None:
    reference = sc.run_msadam(scen, "numpy")
    mismatch = sc.compare(reference, ours)
    assert mismatch.error <= REL_TOL, f"{scen['name']}: mindspore vs the NumPy reference: {mismatch}"
    golden = _golden(scen)
    if golden is not None:
        exact = sc.compare(golden, ours)
        assert exact.error == 0.0, f"{scen['name']}: mindspore vs MindSpore's recorded trajectory: {exact}"


DENSE = [s for s in _all_scenarios() if not s["sparse"]]
SPARSE = [s for s in _all_scenarios() if s["sparse"]]


@needs_mindspore
@pytest.mark.parametrize("scen", DENSE, ids=[s["name"] for s in DENSE])
def test_dense_trajectory_equals_the_reference_and_mindspore(scen: sc.Scenario) -> None:
    _check_trajectory(scen, sc.run_msadam(scen, BACKEND))


_WORKER = """
import json, sys
import numpy as np
from msadam import parity as sc
scen = json.loads(open(sys.argv[1]).read())
trajectory = sc.run_msadam(scen, "mindspore")
np.savez(sys.argv[2], **trajectory)
"""


def _run_in_own_process(scen: sc.Scenario) -> sc.Trajectory:
    """The scenario's trajectory on the mindspore backend, computed by a fresh Python process."""
    with tempfile.TemporaryDirectory(prefix="msadam-ms-sparse-") as tmp:
        src, out = Path(tmp) / "scenario.json", Path(tmp) / "trajectory.npz"
        src.write_text(to_json(scen), encoding="utf-8")
        done = subprocess.run([sys.executable, "-c", _WORKER, str(src), str(out)], capture_output=True, text=True,
                              cwd=tmp, env=_env(MS_OM_PATH=tmp), timeout=900, check=False)
        if done.returncode:
            raise AssertionError(f"{scen['name']}: worker failed ({done.returncode}):\n{done.stderr[-4000:]}")
        with np.load(out, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def sparse_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[sc.Trajectory]]]:
    """Every selected sparse scenario started at once, one process each (as many at a time as there are CPUs)."""
    selected = {item.callspec.params["scen"]["name"] for item in request.session.items
                if item.module is request.module and item.originalname == "test_sparse_trajectory_equals_the_"
                "reference_and_mindspore" and hasattr(item, "callspec")}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        yield {s["name"]: pool.submit(_run_in_own_process, s) for s in SPARSE if s["name"] in selected}


@needs_mindspore
@pytest.mark.parametrize("scen", SPARSE, ids=[s["name"] for s in SPARSE])
def test_sparse_trajectory_equals_the_reference_and_mindspore(
    scen: sc.Scenario, sparse_runs: dict[str, Future[sc.Trajectory]]
) -> None:
    _check_trajectory(scen, sparse_runs[scen["name"]].result())


def test_the_scenarios_cover_every_path() -> None:
    """Dense: Nesterov, AMSGrad, decay + loss scale, groups, per-step lrs, centralization, offload;
    sparse: the composite default, the fused 'CPU' kernels, lazy, and 'GPU'/'Ascend' de-duplication."""
    dense, sparse = {s["name"] for s in DENSE}, {s["name"] for s in SPARSE}
    assert {"plain", "nesterov", "amsgrad", "loss-scale-decay-beta-gamma", "groups-fixed", "groups-dynamic",
            "dynamic-weight-decay", "lr-list", "grad-centralization", "offload", "lazy-dense"} <= dense
    assert {"sparse-default-dense", "sparse-default-lazy", "sparse-CPU-dense", "sparse-CPU-lazy",
            "sparse-GPU-dense", "sparse-GPU-lazy-nounique", "sparse-Ascend-dense-nesterov"} <= sparse
    assert sum(_golden(s) is not None for s in DENSE + SPARSE) >= 50  # the golden fixtures are found


# ----------------------------------------------------------------------------- the protocol


def _hyper(**overrides: Any) -> StepHyper:
    f32 = np.float32
    fields: dict[str, Any] = {
        "lr": f32(0.01), "beta1": f32(0.9), "beta2": f32(0.999), "eps": f32(1e-8), "beta1_power": f32(0.9),
        "beta2_power": f32(0.999), "weight_decay": None, "centralize": False, "grad_scale": None,
        "use_nesterov": False, "use_amsgrad": False,
    }
    return StepHyper(**{**fields, **overrides})


@pytest.fixture
def backend() -> Any:
    if _PROBLEM is not None:
        pytest.skip(_PROBLEM)
    return msadam.registry.load_backend(BACKEND)


def test_arrays_are_mindspore_tensors(backend: Any) -> None:
    import mindspore

    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    native = backend.from_numpy(value)
    value[0, 0] = 99.0  # from_numpy copies
    assert isinstance(native, mindspore.Tensor) and backend.owns(native) and not backend.owns(value)
    assert backend.shape(native) == (2, 3) and backend.dtype(native) == np.float32
    assert backend.to_numpy(native)[0, 0] == 0.0
    half = backend.cast(native, np.dtype(np.float16))
    assert backend.dtype(half) == np.float16 and backend.cast(native, np.dtype(np.float32)) is native
    target = mindspore.Parameter(backend.from_numpy(np.zeros((2, 3), np.float32)), name="assign_target")
    assert backend.assign(target, backend.from_numpy(np.ones((2, 3), np.float32))) is target
    assert target.asnumpy().tolist() == [[1.0] * 3] * 2
    assert backend.version() == mindspore.__version__ and backend.devices()


def test_native_arrays_take_the_mindspore_backend(backend: Any) -> None:
    import mindspore

    tensor = mindspore.Tensor(np.ones(3, np.float32))
    param = mindspore.Parameter(mindspore.Tensor(np.ones(3, np.float32)), name="native_param")
    assert Parameter(tensor, name="t").backend == BACKEND
    assert Parameter(param, name="p").backend == BACKEND  # its class is built at run time in module 'abc'


def test_bucket_state_is_the_mindspore_optimizers_state(backend: Any) -> None:
    """bucket.m/v/vhat are the nn.Adam's moment1/moment2/vhat Parameters, updated in place."""
    from msadam_mindspore.backend import _CACHE_KEY

    params = [backend.from_numpy(np.full((2, 16), 1.0, np.float32)), backend.from_numpy(np.ones(3, np.float32))]
    bucket = backend.new_bucket(params, use_amsgrad=True)
    arrays = (*bucket.params, *bucket.m, *bucket.v, *bucket.vhat)
    grads = [backend.from_numpy(np.full((2, 16), 0.5, np.float32)), backend.from_numpy(np.ones(3, np.float32))]
    backend.dense_step(bucket, grads, _hyper(use_amsgrad=True))
    assert all(a is b for a, b in zip((*bucket.params, *bucket.m, *bucket.v, *bucket.vhat), arrays, strict=True))
    (runner,) = bucket.cache[_CACHE_KEY].by_config.values()
    assert list(runner.opt.moment1) == bucket.m and list(runner.opt.moment2) == bucket.v
    assert list(runner.opt.vhat) == bucket.vhat and list(runner.opt.parameters) == bucket.params
    np.testing.assert_allclose(backend.to_numpy(bucket.m[0]), np.float32(1 - np.float32(0.9)) * 0.5, rtol=1e-6)
    assert float(runner.opt.beta1_power.asnumpy()) == np.float32(0.9)


def test_loss_scale_and_weight_decay_reach_mindspore_exactly(backend: Any) -> None:
    """nn.Adam gets loss_scale = 1/grad_scale and weight_decay = decay/loss_scale; its float32 values are msadam's."""
    from msadam_mindspore.backend import _CACHE_KEY

    for loss_scale, decay in [(3.0, 0.7), (1024.0, 1e-4), (7.0, 1.0), (0.1, 0.05), (128.0, 0.01)]:
        bucket = backend.new_bucket([backend.from_numpy(np.ones(4, np.float32))], use_amsgrad=False)
        hyper = _hyper(weight_decay=np.float32(decay * loss_scale), grad_scale=np.float32(1.0 / loss_scale))
        backend.dense_step(bucket, [backend.from_numpy(np.ones(4, np.float32))], hyper)
        (runner,) = bucket.cache[_CACHE_KEY].by_config.values()
        assert np.float32(runner.opt.reciprocal_scale.asnumpy()) == hyper.grad_scale
        assert np.float32(runner.opt.weight_decay[0].asnumpy()) == hyper.weight_decay


def test_a_changing_weight_decay_switches_to_mindspores_dynamic_decay(backend: Any) -> None:
    from msadam_mindspore.backend import _CACHE_KEY
    from msadam_mindspore.driver import DYNAMIC

    bucket = backend.new_bucket([backend.from_numpy(np.ones(4, np.float32))], use_amsgrad=False)
    grads = [backend.from_numpy(np.ones(4, np.float32))]
    f32 = np.float32
    powers = [(f32(0.9), f32(0.999)), (f32(f32(0.9) * f32(0.9)), f32(f32(0.999) * f32(0.999)))]
    for (b1, b2), decay in zip(powers, [f32(0.3), f32(0.2)], strict=True):
        backend.dense_step(bucket, grads, _hyper(weight_decay=f32(decay * f32(3.0)), grad_scale=f32(1 / 3.0),
                                                 beta1_power=b1, beta2_power=b2))
    (runner,) = bucket.cache[_CACHE_KEY].by_config.values()
    assert runner.cfg.decay == DYNAMIC


def test_beta_powers_are_recovered_after_a_state_load(backend: Any) -> None:
    """A loaded optimizer (no remembered power) continues exactly like the reference."""
    def run(name: str, load: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        w = Parameter(rng.standard_normal((3, 8)).astype(np.float32), name="w", backend=name)
        opt = msadam.Adam([w], learning_rate=0.05, beta1=0.8, beta2=0.95, use_nesterov=True)
        if load is not None:
            opt.load_state_dict(load)
        for _ in range(3):
            opt((rng.standard_normal((3, 8)).astype(np.float32),))
        return opt.state_dict()

    first = run("numpy", None)
    ours = run(BACKEND, first)
    for key, value in run("numpy", first).items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_factor_search_finds_reachable_products_and_only_those() -> None:
    """float32(p * beta) misses some float32 values just below 1: those have no predecessor."""
    pytest.importorskip("mindspore")
    from msadam_mindspore.driver import factor_for

    beta = np.float32(0.9)
    products = np.nextafter(np.float32(0.95), np.float32(1), dtype=np.float32) + \
        np.arange(64, dtype=np.float32) * np.float32(2**-24)
    found = [factor_for(np.float32(x), beta) for x in products]
    reachable = [x for x, p in zip(products, found, strict=True) if p is not None]
    assert 0 < len(reachable) < len(products)
    assert all(np.float32(p * beta) == x for x, p in zip(products, found, strict=True) if p is not None)


def test_float64_is_held_and_refused_at_the_first_step_where_mindspore_refuses_it(backend: Any) -> None:
    w = Parameter(np.ones(3), name="w64", backend=BACKEND)  # float64
    opt = msadam.Adam([w])  # built, as mindspore.nn.Adam is
    with pytest.raises(TypeError, match=r"P\.Adam takes float16 and float32"):
        opt((np.ones(3),))
    assert int(opt.global_step.asnumpy()[0]) == 0


def test_bfloat16_is_refused_when_the_optimizer_is_built(backend: Any) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with pytest.raises(TypeError, match="bfloat16 parameters cannot be held"):
        backend.new_bucket([backend.from_numpy(np.ones(3, ml_dtypes.bfloat16))], use_amsgrad=False)


def test_sparse_grad_fused_path_refuses_deduplication(backend: Any) -> None:
    bucket = backend.new_bucket([backend.from_numpy(np.ones((4, 2), np.float32))], use_amsgrad=False)
    grad = SparseGrad(backend.from_numpy(np.array([1], np.int32)), backend.from_numpy(np.ones((1, 2), np.float32)),
                      lazy=False, path=SparsePath.FUSED, deduplicate=True)
    with pytest.raises(ValueError, match="fused"):
        backend.sparse_step(bucket, 0, grad, _hyper())


def test_a_bucket_the_backend_did_not_make_is_stepped_and_its_runner_reused(backend: Any) -> None:
    """Sub-buckets (empty cache) get their runners from a small table keyed by their arrays."""
    full = backend.new_bucket([backend.from_numpy(np.ones(4, np.float32)), backend.from_numpy(np.ones(2, np.float32))],
                              use_amsgrad=False)
    sub = Bucket(full.params[:1], full.m[:1], full.v[:1], None)
    grads = [backend.from_numpy(np.ones(4, np.float32))]
    f32 = np.float32
    backend.dense_step(sub, grads, _hyper())
    runners = len(backend._loose)
    backend.dense_step(Bucket(full.params[:1], full.m[:1], full.v[:1], None), grads,
                       _hyper(beta1_power=f32(f32(0.9) * f32(0.9)), beta2_power=f32(f32(0.999) * f32(0.999))))
    assert len(backend._loose) == runners
    assert full.m[0].asnumpy()[0] != 0 and full.m[1].asnumpy()[0] == 0


# ----------------------------------------------------------------------------- in their own processes


@needs_mindspore
def test_mindspore_row_tensors_are_sparse_gradients() -> None:
    """MindSpore's RowTensor (as_row_tensor) takes the same sparse path as an msadam.RowTensor."""
    done = run_python("""
        import numpy as np, mindspore, msadam
        from mindspore.common.sparse_tensor import RowTensor
        indices, values = np.array([3, 7, 3, 0], np.int32), np.arange(16, dtype=np.float32).reshape(4, 4)
        for lazy in (False, True):
            tables = [msadam.Parameter(np.ones((10, 4), np.float32), name="emb", backend="mindspore") for _ in "ab"]
            opts = [msadam.Adam([t], learning_rate=0.1, use_lazy=lazy) for t in tables]
            native = RowTensor(mindspore.Tensor(indices), mindspore.Tensor(values), (10, 4))
            for _ in range(2):
                opts[0]((native,))
                opts[1]((msadam.RowTensor(indices, values, (10, 4)),))
            assert np.array_equal(tables[0].asnumpy(), tables[1].asnumpy())
            assert np.array_equal(opts[0].moment2[0].asnumpy(), opts[1].moment2[0].asnumpy())
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-3000:]


def test_the_plugin_announces_the_backend_without_importing_mindspore() -> None:
    done = run_python("""
        import sys
        import msadam, msadam_mindspore
        from msadam import registry
        specs = [s for specs in registry.plugin_manager().hook.msadam_backends() for s in specs]
        assert any(s.name == "mindspore" for s in specs), specs
        assert "mindspore" not in sys.modules
        print(msadam_mindspore.__version__)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["0.1.0"]


_BACKENDS_TWICE = """
import contextlib, io, json, sys
from msadam import cli

outputs = []
for argv in (["backends", "--json"], ["backends"]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    outputs.append({"code": code, "stdout": out.getvalue()})
print(json.dumps(outputs))
"""


def _backends_twice(prefix: str = "") -> tuple[dict[str, dict[str, Any]], list[str], str]:
    """``msadam backends --json`` then ``msadam backends`` in one fresh process: rows, table lines, stderr."""
    done = run_python(prefix + _BACKENDS_TWICE)
    assert done.returncode == 0, done.stderr[-3000:]
    as_json, table = json.loads(done.stdout.strip().splitlines()[-1])
    assert as_json["code"] == 0 and table["code"] == 0
    rows = {row["name"]: row for row in json.loads(as_json["stdout"])["backends"]}
    return rows, table["stdout"].splitlines(), done.stderr


def _line(lines: list[str], name: str) -> list[str]:
    return next(line for line in lines if line.split()[:1] == [name]).split()


@needs_mindspore
def test_msadam_backends_lists_mindspore_with_its_version() -> None:
    import mindspore

    rows, lines, stderr = _backends_twice()
    assert stderr == ""  # MindSpore's start-up notices are kept off stderr
    row = rows[BACKEND]
    assert row["ok"] and row["error"] is None and row["devices"]
    assert row["version"] == mindspore.__version__ and row["distribution"] == "msadam-mindspore"
    assert _line(lines, BACKEND)[:3] == [BACKEND, "OK", mindspore.__version__]


_NO_MINDSPORE = """
import importlib.abc, sys

class _NoMindSpore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mindspore" or name.startswith("mindspore."):
            raise ModuleNotFoundError("No module named 'mindspore' (hidden by the test)", name=name)
        return None

sys.meta_path.insert(0, _NoMindSpore())
"""


def test_without_mindspore_msadam_backends_reports_why() -> None:
    rows, lines, _ = _backends_twice(_NO_MINDSPORE)
    failed = rows[BACKEND]
    assert not failed["ok"] and "No module named 'mindspore'" in failed["error"]
    assert failed["distribution"] == "msadam-mindspore"
    assert rows["numpy"]["ok"] and rows["numpy"]["error"] is None
    assert _line(lines, BACKEND)[:2] == [BACKEND, "FAILED"]
    assert _line(lines, "numpy")[:2] == ["numpy", "OK"]


def test_without_mindspore_the_package_imports_and_numpy_steps() -> None:
    done = run_python(_NO_MINDSPORE + """
import json
import numpy as np
import msadam, msadam_mindspore

try:
    msadam_mindspore.MindSporeBackend
except ImportError as exc:
    lazy_error = str(exc)
w = msadam.Parameter(np.ones(3, np.float32), name="w")
msadam.Adam([w], learning_rate=0.1)((np.ones(3, np.float32),))
try:
    msadam.Parameter(np.ones(3, np.float32), backend="mindspore")
except ValueError as exc:
    use_error = str(exc)
print(json.dumps({"lazy": lazy_error, "use": use_error, "w": w.asnumpy().tolist(), "numpy": msadam.get_backend()}))
""")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "pip install" in report["lazy"] and "mindspore" in report["lazy"]
    assert "mindspore" in report["use"] and "No module named 'mindspore'" in report["use"]
    assert report["numpy"] == "numpy" and all(x < 1.0 for x in report["w"])  # the NumPy step ran


def test_lazy_names_need_mindspore_only_when_used() -> None:
    import msadam_mindspore

    assert set(msadam_mindspore.__all__) <= set(dir(msadam_mindspore))
    with pytest.raises(AttributeError):
        msadam_mindspore.not_a_name  # noqa: B018


def test_row_tensor_helper_passes_other_values_through() -> None:
    pytest.importorskip("mindspore")
    import msadam_mindspore

    assert msadam_mindspore.row_tensor(np.ones(3)) is None
    assert msadam_mindspore.row_tensor(RowTensor(np.array([0]), np.ones((1, 2)), (2, 2))) is None
