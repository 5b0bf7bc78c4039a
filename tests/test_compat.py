"""msadam_compat's value types, ``ms.nn.Adam``'s Cell methods, ``install()`` and the name maps.

Checked against real MindSpore 2.10 where it is installed (signatures, dtypes, exception classes,
``parameters_dict()`` order). Checkpoints: test_compat_checkpoint.py; dynamic_lr and loss scaling:
test_compat_lr_amp.py.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from isolation import run_without_mindspore  # tests/ is not a package

import msadam

ms = pytest.importorskip("msadam_compat")
REPO = Path(__file__).resolve().parents[1]


# --- Tensor -------------------------------------------------------------------------------------

TENSOR_INPUTS = [
    pytest.param(lambda m: m.Tensor(0.1), id="float"),
    pytest.param(lambda m: m.Tensor(3), id="int"),
    pytest.param(lambda m: m.Tensor(True), id="bool"),
    pytest.param(lambda m: m.Tensor([0.1, 0.2]), id="float-list"),
    pytest.param(lambda m: m.Tensor([1, 2]), id="int-list"),
    pytest.param(lambda m: m.Tensor(np.arange(3.0)), id="float64-array"),
    pytest.param(lambda m: m.Tensor(np.arange(3.0), m.float16), id="to-float16"),
    pytest.param(lambda m: m.Tensor([1, 2], dtype=m.float32), id="int-list-to-float32"),
    pytest.param(lambda m: m.Tensor(dtype=m.int32, shape=(2, 3)), id="shape-only"),
]


@pytest.mark.parametrize("build", TENSOR_INPUTS)
def test_tensor_values_and_dtypes_match_mindspore(build: Any, mindspore: Any) -> None:
    ours, theirs = build(ms), build(mindspore)
    theirs_np = theirs.asnumpy()
    assert ours.dtype == theirs_np.dtype
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.asnumpy(), theirs_np)


@pytest.mark.parametrize("convert", [bool, int, float])
def test_single_element_conversions(convert: Any) -> None:
    assert convert(ms.Tensor([2.5])) == convert(2.5)
    assert convert(ms.Tensor(0.0)) == convert(0.0)
    with pytest.raises(ValueError, match="2 elements"):
        convert(ms.Tensor([1.0, 2.0]))


def test_tensor_truth_is_its_value_not_identity() -> None:
    # msadam.Tensor has no __bool__, so `if all_finite(grads):` would always be true.
    assert not ms.Tensor(False)
    assert ms.Tensor(np.array(True))
    assert ms.Tensor([1, 2, 3])[1].item() == 2
    assert ms.Tensor(np.ones((2, 3))).astype(ms.float16).dtype == np.float16
    assert len(ms.Tensor(np.ones((4, 2)))) == 4


def test_tensor_needs_data_or_dtype_and_shape() -> None:
    with pytest.raises(ValueError):
        ms.Tensor()
    with pytest.raises(ValueError):
        ms.Tensor([1.0, 2.0], shape=(3,))
    with pytest.raises(NotImplementedError, match="init"):
        ms.Tensor(shape=(2,), dtype=ms.float32, init="zeros")


# --- Parameter and ParameterTuple -----------------------------------------------------------------


def test_parameter_signature_is_mindspores(mindspore: Any) -> None:
    ours = inspect.signature(ms.Parameter.__init__).parameters
    theirs = inspect.signature(mindspore.Parameter.__init__).parameters
    positional = [name for name, p in ours.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == list(theirs)
    for name in theirs:
        assert ours[name].default == theirs[name].default, name
    assert ours["backend"].kind is inspect.Parameter.KEYWORD_ONLY  # msadam's one addition


def test_parameter_is_an_msadam_parameter_on_the_backend(backend_name: str) -> None:
    param = ms.Parameter(ms.Tensor(np.arange(6.0).reshape(2, 3), ms.float32), name="fc.weight", backend=backend_name,
                         layerwise_parallel=True)
    assert isinstance(param, msadam.Parameter)
    assert (param.name, param.backend, param.shape, param.dtype) == ("fc.weight", backend_name, (2, 3), np.float32)
    assert param.layerwise_parallel is True
    twin = param.clone("zeros")
    assert (twin.name, twin.backend) == ("fc.weight", backend_name)
    np.testing.assert_array_equal(twin.asnumpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(param.clone().asnumpy(), param.asnumpy())


PARAMETER_TUPLE_CASES = [
    pytest.param(lambda m, a, b: m.ParameterTuple([a, 1.0]), id="not-a-parameter"),
    pytest.param(lambda m, a, b: m.ParameterTuple([a, m.Parameter(np.ones(2, np.float32), name="a")]), id="name-twice"),
    pytest.param(lambda m, a, b: m.ParameterTuple([a, b]).clone("bad prefix"), id="bad-clone-prefix"),
    pytest.param(lambda m, a, b: m.ParameterTuple([a, a, b]), id="same-object-twice-is-fine"),
    pytest.param(lambda m, a, b: m.ParameterTuple([a, b]).clone("moment1", "zeros"), id="clone"),
]


def _outcome(call: Any) -> Any:
    try:
        result = call()
    except Exception as exc:
        return type(exc)
    return [p.name for p in result] if isinstance(result, tuple) else "ok"


@pytest.mark.parametrize("case", PARAMETER_TUPLE_CASES)
def test_parameter_tuple_matches_mindspore(case: Any, mindspore: Any) -> None:
    def build(module: Any) -> Any:
        a = module.Parameter(module.Tensor(np.ones(2, np.float32)), name="a")
        b = module.Parameter(module.Tensor(np.ones(3, np.float32)), name="b")
        return _outcome(lambda: case(module, a, b))

    assert build(ms) == build(mindspore)


# --- nn.Adam as a Cell -------------------------------------------------------------------------------


def _net(module: Any) -> list[Any]:
    return [module.Parameter(module.Tensor(np.ones((2, 3), np.float32)), name="fc.weight"),
            module.Parameter(module.Tensor(np.zeros(3, np.float32)), name="ln.gamma"),
            module.Parameter(module.Tensor(np.zeros(3, np.float32)), name="fc.bias")]


ADAM_CONFIGS = [
    pytest.param(lambda p: {"params": p}, id="plain"),
    pytest.param(lambda p: {"params": p, "use_amsgrad": True, "learning_rate": [0.1, 0.01]}, id="amsgrad-dynamic"),
    pytest.param(lambda p: {"params": [{"params": p[:1], "lr": 0.1}, {"params": p[1:], "weight_decay": 0.1}]},
                 id="groups"),
    pytest.param(lambda p: {"params": [{"params": p[:1], "lr": [0.1, 0.2]}, {"params": p[1:], "weight_decay": 0.1}],
                            "learning_rate": [0.3, 0.4]}, id="dynamic-groups"),
    pytest.param(lambda p: {"params": p, "learning_rate": 0.01, "use_nesterov": True}, id="nesterov"),
    pytest.param(lambda p: {"params": [{"params": p[:1], "lr": 0.1}, {"params": p[1:]}], "learning_rate": [0.3, 0.4],
                            "use_amsgrad": True}, id="fixed-group-beside-dynamic"),
]


@pytest.mark.parametrize("config", ADAM_CONFIGS)
def test_parameters_dict_names_and_order_match_mindspore(config: Any, mindspore: Any) -> None:
    ours = ms.nn.Adam(**config(_net(ms)))
    theirs = mindspore.nn.Adam(**config(_net(mindspore)))
    assert list(ours.parameters_dict()) == list(theirs.parameters_dict())
    assert [name for name, _ in ours.parameters_and_names()] == [name for name, _ in theirs.parameters_and_names()]
    assert [name for name, _ in ours.parameters_and_names("opt")] == [n for n, _ in theirs.parameters_and_names("opt")]
    assert [p.name for p in ours.trainable_params()] == [p.name for p in theirs.trainable_params()]


def test_construct_is_a_step_and_state_is_the_optimizers(backend_name: str) -> None:
    params = [ms.Parameter(np.ones((2, 3), np.float32), name="w", backend=backend_name)]
    opt = ms.nn.Adam(params, learning_rate=0.1)
    reference = msadam.Adam([msadam.Parameter(np.ones((2, 3), np.float32), name="w", backend="numpy")],
                            learning_rate=0.1)
    grads = (np.full((2, 3), 0.5, np.float32),)
    assert opt.construct(grads) == reference(grads) == (True,)
    ours = {name: p.asnumpy() for name, p in opt.parameters_dict().items()}
    assert ours.keys() == reference.state_dict().keys()
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


# --- install() -------------------------------------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          cwd=REPO)


def test_install_stands_in_for_an_absent_mindspore(tmp_path: Path) -> None:
    result = run_without_mindspore(textwrap.dedent("""
        import importlib.util, sys
        assert importlib.util.find_spec("mindspore") is None, "MindSpore is not hidden"
        import msadam_compat
        msadam_compat.install()
        msadam_compat.install()  # idempotent
        import mindspore as ms
        from mindspore import nn
        from mindspore.nn import dynamic_lr
        from mindspore.train.serialization import save_checkpoint
        import mindspore.common.dtype as mstype
        assert ms is msadam_compat and nn is msadam_compat.nn and dynamic_lr is msadam_compat.nn.dynamic_lr
        assert save_checkpoint is msadam_compat.save_checkpoint and mstype.float32 == ms.float32
        assert msadam_compat.installed()
        try:
            import mindspore.ops
        except ModuleNotFoundError as exc:
            assert "msadam_compat" in str(exc) and exc.name == "mindspore.ops", exc
        else:
            raise AssertionError("mindspore.ops imported")
        msadam_compat.uninstall()
        assert not msadam_compat.installed() and "mindspore" not in sys.modules
        try:
            import mindspore
        except ModuleNotFoundError:
            print("ok")
    """), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok"]


def test_install_refuses_to_shadow_an_installed_mindspore(mindspore: Any) -> None:
    result = _run("""
        import msadam_compat
        try:
            msadam_compat.install()
        except RuntimeError as exc:
            print("refused:", "real MindSpore is installed" in str(exc))
        msadam_compat.install(force=True)
        import mindspore
        print("forced:", mindspore is msadam_compat)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["refused: True", "forced: True"]


def test_install_refuses_once_the_real_mindspore_is_imported(mindspore: Any) -> None:
    assert sys.modules["mindspore"] is mindspore
    with pytest.raises(RuntimeError, match="already imported"):
        ms.install(force=True)
    with pytest.raises(TypeError):
        ms.install(force="yes")  # type: ignore[arg-type]
    assert sys.modules["mindspore"] is mindspore


# --- name maps --------------------------------------------------------------------------------------


def test_name_map_is_two_way_extendable_and_all_or_nothing() -> None:
    names = ms.names.NameMap({"ln.weight": "ln.gamma"})
    names.update([("ln.bias", "ln.beta")])
    assert names.mindspore_name("ln.bias") == "ln.beta" and names.framework_name("ln.gamma") == "ln.weight"
    assert names.mindspore_name("fc.weight") == "fc.weight"  # unmapped names are kept
    assert names.from_mindspore({"moment2.ln.gamma": 1, "beta1_power": 2}) == {"moment2.ln.weight": 1,
                                                                                 "beta1_power": 2}
    with pytest.raises(ValueError, match=r"ln\.beta"):
        names.update({"ln.offset": "ln.gamma2", "other": "ln.beta"})
    assert "ln.offset" not in names  # the failed update changed nothing
    with pytest.raises(ValueError, match="both become"):
        names.to_mindspore({"ln.weight": 1, "ln.gamma": 2})
    with pytest.raises(TypeError):
        names.update({"x": 1})  # type: ignore[dict-item]
    assert names.inverse().mindspore_name("ln.beta") == "ln.bias"


def test_torch_names_cover_norm_statistics_and_embeddings() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("msadam_torch")
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4),
                                torch.nn.BatchNorm1d(4))
    names = ms.names.torch_names(model)
    renamed = names.to_mindspore(model.state_dict())
    assert list(renamed) == ["0.embedding_table", "1.weight", "1.bias", "2.gamma", "2.beta", "3.gamma", "3.beta",
                             "3.moving_mean", "3.moving_variance", "3.num_batches_tracked"]
    assert list(names.from_mindspore(renamed)) == list(model.state_dict())


def test_keras_names_are_dotted_paths_with_mindspore_leaves() -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("msadam_tensorflow")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="dense"),
                              keras.layers.LayerNormalization(name="norm"),
                              keras.layers.BatchNormalization(name="bn")], name="net")
    names = ms.names.keras_names(model)
    assert names.mindspore_name("net/dense/kernel") == "net.dense.kernel"
    assert names.mindspore_name("net/norm/gamma") == "net.norm.gamma"
    assert names.mindspore_name("net/bn/moving_variance") == "net.bn.moving_variance"


def test_flax_names_map_norm_scale_and_embed() -> None:
    pytest.importorskip("msadam_jax")
    jax = pytest.importorskip("jax")
    tree = {"Embed_0": {"embedding": jax.numpy.zeros((3, 2))}, "LayerNorm_0": {"scale": 1.0, "bias": 0.0},
            "Dense_0": {"kernel": 1.0}}
    names = ms.names.flax_names(tree)
    assert dict(names) == {"Embed_0.embedding": "Embed_0.embedding_table", "LayerNorm_0.scale": "LayerNorm_0.gamma",
                           "LayerNorm_0.bias": "LayerNorm_0.beta", "Dense_0.kernel": "Dense_0.kernel"}


def test_a_generator_as_group_params_warns_at_the_callers_line() -> None:
    """MindSpore drops a one-shot iterator's parameters (msadam.groups._is_one_shot); the warning names the
    script's line through ``ms.nn.Adam`` too, not a line of msadam or msadam_compat."""
    kept = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="kept")
    dropped = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="dropped")
    with pytest.warns(msadam.MindSporeQuirkWarning) as record:
        opt = ms.nn.Adam([{"params": [kept]}, {"params": (p for p in [dropped])}])
    assert record[0].filename == __file__
    assert [name for name, _ in opt.parameters_and_names()] == ["global_step", "learning_rate", "kept",
                                                                "beta1_power", "beta2_power", "moment1.kept",
                                                                "moment2.kept"]
