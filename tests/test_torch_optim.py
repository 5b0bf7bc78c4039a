"""msadam_torch.Adam, the torch.optim.Optimizer: the same numbers as msadam.Adam on NumPy, and torch's contract.

Parity tests run every step through ``msadam_torch.Adam`` (gradients from autograd, ``.grad``) and
through ``msadam.Adam`` on the NumPy reference backend (the same gradients as NumPy arrays or
``RowTensor``\\s) and require identical float32 numbers: parameters after every step and the whole
MindSpore-named state.
"""

from __future__ import annotations

import copy
import io
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import msadam_torch  # noqa: E402
from test_validation_table import MsadamSide, outcomes_match  # noqa: E402
from torch import nn  # noqa: E402
from validation_cases import CASES, run_case  # noqa: E402

import msadam  # noqa: E402

Items = dict[str, Any]  # torch name -> (name, tensor) pair, or msadam.Parameter
ParamsFn = Callable[[Items], Any]


class Net(nn.Module):
    """Linear -> LayerNorm -> Linear, optionally fed by a sparse Embedding (names: fc1, norm, fc2, emb)."""

    def __init__(self, embedding: bool = False, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(20, 16, sparse=True) if embedding else None
        self.fc1, self.norm, self.fc2 = nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4)

    def forward(self, x: Any) -> Any:
        if self.emb is not None:
            x = self.emb(x).mean(dim=1)
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


def batch(step: int, embedding: bool = False, size: int = 8) -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(100 + step)
    # Embedding lookups draw from few rows, so indices repeat within and across samples.
    x = torch.randint(0, 6, (size, 3), generator=generator) if embedding else torch.randn(size, 16, generator=generator)
    return x, torch.randn(size, 4, generator=generator)


def loss_of(model: nn.Module, step: int, embedding: bool = False) -> Any:
    x, y = batch(step, embedding)
    return (model(x) - y).pow(2).mean()


def flat(items: Items) -> Any:
    return list(items.values())


class Twin:
    """One model trained by msadam_torch.Adam, mirrored by msadam.Adam on NumPy Parameters."""

    def __init__(self, params_fn: ParamsFn = flat, embedding: bool = False, torch_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.model, self.embedding = Net(embedding), embedding
        self.names = msadam_torch.mindspore_names(self.model)
        self.named = list(self.model.named_parameters())
        self.ref_params = {n: msadam.Parameter(p.detach().numpy().copy(), name=self.names[n], backend="numpy")
                           for n, p in self.named}
        self.opt = msadam_torch.Adam(params_fn({n: (n, p) for n, p in self.named}), name_map=self.names,
                                     **kwargs, **(torch_kwargs or {}))
        self.ref = msadam.Adam(params_fn(dict(self.ref_params)), **kwargs)
        self.steps = 0

    def set(self, attr: str, value: Any) -> None:
        setattr(self.opt, attr, value)
        setattr(self.ref, attr, value)

    def step(self, drop: tuple[str, ...] = ()) -> None:
        """One step of both; the parameters named in ``drop`` get no ``.grad`` (a zero gradient for NumPy)."""
        self.opt.zero_grad()
        loss_of(self.model, self.steps, self.embedding).backward()
        for n, p in self.named:
            if n in drop:
                p.grad = None
        by_name = {self.names[n]: reference_gradient(p.grad) if n not in drop else np.zeros(tuple(p.shape), np.float32)
                   for n, p in self.named}
        self.ref(tuple(by_name[p.name] for p in self.ref.parameters))
        self.opt.step()
        self.steps += 1
        self.check()

    def check(self) -> None:
        for n, p in self.named:
            np.testing.assert_array_equal(p.detach().numpy(), self.ref_params[n].asnumpy(), err_msg=n)
        assert_same_state(self.opt.mindspore_state_dict(), self.ref.state_dict())


def reference_gradient(grad: Any) -> Any:
    """A torch gradient for the NumPy side: dense -> ndarray, sparse COO -> RowTensor with its rows as they are."""
    if grad.is_sparse:
        return msadam.RowTensor(grad._indices()[0].numpy().copy(), grad._values().numpy().copy(), tuple(grad.shape))
    return grad.numpy().copy()


def assert_same_state(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


def weights_and_rest(items: Items, **weights_group: Any) -> tuple[list[Any], list[Any]]:
    weights = [item for name, item in items.items() if name.endswith("weight")]
    return weights, [item for name, item in items.items() if not name.endswith("weight")]


def groups(items: Items) -> Any:
    weights, rest = weights_and_rest(items)
    return [{"params": weights, "weight_decay": 0.05, "grad_centralization": True}, {"params": rest, "lr": 0.02},
            {"order_params": list(items.values())}]


def dynamic_groups(items: Items) -> Any:
    weights, rest = weights_and_rest(items)
    return [{"params": rest}, {"params": weights, "lr": [0.05, 0.04, 0.03, 0.02, 0.01]}]


def constant_decay(step: Any) -> float:
    return 0.02


DENSE: dict[str, tuple[ParamsFn, dict[str, Any]]] = {
    "default": (flat, {}),
    "decay-loss-scale-nesterov": (flat, {"weight_decay": 0.1, "loss_scale": 4.0, "use_nesterov": True}),
    "amsgrad": (flat, {"use_amsgrad": True, "weight_decay": 0.01, "learning_rate": 0.05}),
    "offload-eps": (flat, {"use_offload": True, "eps": 1e-3}),
    "list-lr": (flat, {"learning_rate": [0.1, 0.05, 0.02, 0.01, 0.005]}),
    "schedule-dynamic-decay": (flat, {"learning_rate": msadam.CosineDecayLR(0.001, 0.1, 4),
                                      "weight_decay": constant_decay}),
    "groups-order-centralization": (groups, {"learning_rate": 0.01}),
    "groups-dynamic-lr": (dynamic_groups, {"learning_rate": 0.01, "weight_decay": 0.01}),
}


@pytest.mark.parametrize("case", DENSE)
def test_dense_parity(case: str) -> None:
    params_fn, kwargs = DENSE[case]
    twin = Twin(params_fn, **kwargs)
    assert [p.name for p in twin.opt.parameters] == [p.name for p in twin.ref.parameters]
    for _ in range(5):
        twin.step()


SPARSE: dict[str, tuple[dict[str, Any], str | None, bool | None]] = {
    "default": ({}, None, None),
    "lazy": ({"use_lazy": True}, None, None),
    "cpu-fused": ({}, "CPU", None),
    "cpu-fused-lazy": ({"use_lazy": True}, "CPU", None),
    "gpu-unique": ({"weight_decay": 0.1, "loss_scale": 2.0}, "GPU", None),
    "ascend-not-unique-lazy": ({"use_lazy": True}, "Ascend", False),
    "nesterov-decay": ({"use_nesterov": True, "weight_decay": 0.05}, None, None),
}


@pytest.mark.parametrize("case", SPARSE)
def test_sparse_embedding_parity(case: str) -> None:
    kwargs, target, unique = SPARSE[case]
    twin = Twin(embedding=True, learning_rate=0.05, **kwargs)
    if target is not None:
        twin.set("target", target)
    if unique is not None:
        twin.set("unique", unique)
    for _ in range(4):
        twin.step()
    grad = dict(twin.named)["emb.weight"].grad
    assert grad is not None and grad.is_sparse and not grad.is_coalesced()  # the rows reached msadam as they were


def test_names_drive_weight_decay_and_state_names() -> None:
    twin = Twin(weight_decay=0.5)
    names = [p.name for p in twin.opt.parameters]
    assert names == ["fc1.weight", "fc1.bias", "norm.gamma", "norm.beta", "fc2.weight", "fc2.bias"]
    assert "moment1.norm.gamma" in twin.opt.mindspore_state_dict()
    twin.step()
    assert twin.opt.mindspore_name(twin.model.norm.weight) == "norm.gamma"


def test_name_parameters_tags_plain_parameters() -> None:
    model = Net()
    pairs = msadam_torch.name_parameters(model)
    assert [n for n, _ in pairs][2:4] == ["norm.gamma", "norm.beta"]
    opt = msadam_torch.Adam(model.parameters(), weight_decay=0.1)  # plain tensors carry their names
    assert [p.name for p in opt.parameters] == [n for n, _ in pairs]
    unnamed = msadam_torch.Adam(Net(seed=1).parameters())
    assert [p.name for p in unnamed.parameters] == [f"Parameter${k}" for k in range(1, 7)]


@pytest.mark.parametrize("via", ["torch", "mindspore", "torch.save"])
def test_state_dict_round_trip(via: str) -> None:
    twin = Twin(weight_decay=0.01, use_amsgrad=True)
    for _ in range(3):
        twin.step()
    other = Twin(weight_decay=0.01, use_amsgrad=True)  # a fresh optimizer and model
    other.model.load_state_dict(twin.model.state_dict())
    if via == "mindspore":
        other.opt.load_mindspore_state_dict(twin.opt.mindspore_state_dict())
    else:
        state = copy.deepcopy(twin.opt.state_dict())
        if via == "torch.save":
            buffer = io.BytesIO()
            torch.save(state, buffer)
            state = torch.load(io.BytesIO(buffer.getvalue()))
        assert state["mindspore_names"][2] == "norm.gamma"
        assert state["state"][0]["global_step"] == 3
        other.opt.load_state_dict(state)
    assert_same_state(other.opt.mindspore_state_dict(), twin.opt.mindspore_state_dict())
    other.ref, other.ref_params, other.steps = twin.ref, twin.ref_params, twin.steps
    for _ in range(3):  # continuing from the loaded state gives the uninterrupted run's numbers
        other.step()


def test_load_state_dict_checks_before_changing_anything() -> None:
    twin = Twin()
    twin.step()
    before = twin.opt.mindspore_state_dict()
    state = copy.deepcopy(twin.opt.state_dict())
    state["state"][1]["moment1"] = torch.zeros(7)
    with pytest.raises(ValueError, match="shape"):
        twin.opt.load_state_dict(state)
    state = copy.deepcopy(twin.opt.state_dict())
    state["param_groups"][0]["beta1"] = 0.5
    with pytest.raises(ValueError, match="hyper-parameters"):
        twin.opt.load_state_dict(state)
    state = copy.deepcopy(twin.opt.state_dict())
    state["state"][3]["global_step"] = 7
    with pytest.raises(ValueError, match="global step"):
        twin.opt.load_state_dict(state)
    assert_same_state(twin.opt.mindspore_state_dict(), before)


def test_state_replaced_in_place_is_adopted() -> None:
    """ZeroRedundancyOptimizer.load_state_dict writes `optim.state[param]` directly; the next step uses it."""
    twin = Twin()
    twin.step()
    p = twin.model.fc2.bias
    twin.opt.state[p] = {**twin.opt.state[p], "moment1": twin.opt.state[p]["moment1"] * 2}
    twin.ref.moment1[-1].set_data(twin.ref.moment1[-1].asnumpy() * 2)
    twin.step()


class TorchSide(MsadamSide):
    """The validation table's markers as torch tensors: names ride on the tensors (name_parameters' attribute)."""

    name = "msadam_torch"

    def __init__(self) -> None:
        super().__init__("torch")

    def parameter(self, array: np.ndarray, name: str | None) -> Any:
        tensor = nn.Parameter(torch.from_numpy(array.copy()), requires_grad=array.dtype.kind == "f")
        if name is not None:
            setattr(tensor, msadam_torch.NAME_ATTRIBUTE, name)
        return tensor

    def gradient(self, array: np.ndarray) -> Any:
        return torch.from_numpy(array.copy())

    def adam(self, params: Any, **kwargs: Any) -> Any:
        return msadam_torch.Adam(params, **kwargs)


# torch lets a group be empty (ZeroRedundancyOptimizer gives a rank an empty share of a group); MindSpore does not.
EMPTY_GROUP_CASES = {"group_params_empty"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_validation_matches_msadam(case: Any) -> None:
    """Every case of the MindSpore validation table: same exception class, place and results as msadam.Adam."""
    index = CASES.index(case)
    expected = run_case(case, MsadamSide("numpy"), index)
    actual = run_case(case, TorchSide(), index)
    if case.name in EMPTY_GROUP_CASES:
        assert expected["outcome"] == "ValueError" and actual["outcome"] == "ok"
        return
    assert outcomes_match(expected, actual), f"msadam: {expected}; msadam_torch: {actual}"


# -- torch's optimizer contract -------------------------------------------------------------------


def test_none_grad_is_a_zero_gradient_by_default() -> None:
    """MindSpore steps every parameter; one that took no part in the loss gets a zero gradient (decay still applies)."""
    twin = Twin(weight_decay=0.1)
    twin.step()
    twin.step(drop=("fc2.bias", "norm.weight"))
    twin.step()


def test_none_grad_skip_leaves_parameter_and_moments() -> None:
    twin = Twin(weight_decay=0.1, torch_kwargs={"none_grad": "skip"})
    twin.step()
    bias = twin.model.fc2.bias
    before = [bias.detach().clone(), *(twin.opt.state[bias][k].clone() for k in ("moment1", "moment2"))]
    twin.opt.zero_grad()
    loss_of(twin.model, 1).backward()
    bias.grad = None
    twin.opt.step()
    after = [bias, *(twin.opt.state[bias][k] for k in ("moment1", "moment2"))]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert twin.opt.state[bias]["global_step"] == 2  # MindSpore's step count is global


def test_none_grad_error_and_frozen_parameters() -> None:
    model = Net()
    model.fc1.weight.requires_grad_(False)  # frozen: never stepped, whatever none_grad says
    frozen = model.fc1.weight.detach().clone()
    opt = msadam_torch.Adam(model.parameters(), weight_decay=0.5, none_grad="error")
    loss_of(model, 0).backward()
    opt.step()
    assert torch.equal(model.fc1.weight, frozen)
    assert not opt.state[model.fc1.weight]["moment2"].any()
    model.fc2.bias.grad = None
    with pytest.raises(RuntimeError, match="no gradient"):
        opt.step()
    with pytest.raises(ValueError, match="none_grad"):
        msadam_torch.Adam(model.parameters(), none_grad="ignore")


def test_lr_scheduler_drives_a_fixed_learning_rate() -> None:
    twin = Twin(learning_rate=0.1, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(twin.opt, step_size=2, gamma=0.5)
    for _ in range(5):
        twin.ref.learning_rate.set_data(np.asarray(twin.opt.param_groups[0]["lr"], np.float32))
        twin.step()  # also compares the 'learning_rate' Parameters
        scheduler.step()
    assert twin.opt.param_groups[0]["lr"] == pytest.approx(0.025)
    twin.opt.learning_rate.set_data(np.float32(0.5))  # set on the MindSpore side: param_groups follows
    twin.ref.learning_rate.set_data(np.float32(0.5))
    twin.step()
    assert twin.opt.param_groups[0]["lr"] == 0.5


def test_dynamic_learning_rate_is_read_only_in_param_groups() -> None:
    twin = Twin(learning_rate=[0.1, 0.05, 0.02])
    assert twin.opt.param_groups[0]["lr"] == float(np.float32(0.1))
    twin.step()
    assert twin.opt.param_groups[0]["lr"] == float(np.float32(0.05))
    twin.opt.param_groups[0]["lr"] = 0.3
    with pytest.raises(ValueError, match="dynamic"):
        twin.opt.step()
    assert int(twin.opt.global_step.asnumpy()[0]) == 1


def test_fixed_hyper_parameters_are_read_only() -> None:
    twin = Twin()
    twin.opt.param_groups[0]["beta1"] = 0.5
    with pytest.raises(ValueError, match="beta1"):
        twin.opt.step()


def test_groups_sharing_a_learning_rate_must_agree() -> None:
    model = Net()
    opt = msadam_torch.Adam([{"params": [model.fc1.weight]}, {"params": [model.fc2.weight], "weight_decay": 0.1}],
                            learning_rate=0.1)
    loss_of(model, 0).backward()
    opt.param_groups[0]["lr"] = 0.2
    with pytest.raises(ValueError, match="share"):
        opt.step()
    opt.param_groups[1]["lr"] = 0.2
    opt.step()
    assert opt.learning_rate.asnumpy() == np.float32(0.2)


def test_add_param_group_is_not_supported() -> None:
    model = Net()
    opt = msadam_torch.Adam([model.fc1.weight])
    with pytest.raises(NotImplementedError, match=r"mindspore\.nn\.Adam"):
        opt.add_param_group({"params": [model.fc2.weight]})


def test_closure_and_mindspore_call() -> None:
    twin = Twin(embedding=True, use_lazy=True)
    twin.step()

    def closure() -> Any:
        twin.opt.zero_grad()
        loss = loss_of(twin.model, 1, embedding=True)
        loss.backward()
        return loss

    assert torch.is_tensor(twin.opt.step(closure))
    assert twin.opt.state[twin.model.fc1.weight]["global_step"] == 2
    tensors = {twin.names[n]: p for n, p in twin.named}
    grads = tuple(tensors[p.name].grad for p in twin.opt.parameters)
    assert twin.opt(grads) == (True,) * 7  # MindSpore's call, a torch sparse COO gradient included
    twin.ref(tuple(reference_gradient(g) for g in grads))
    twin.ref(tuple(reference_gradient(g) for g in grads))
    twin.check()


def test_torch_style_group_is_mindspore_ungrouped() -> None:
    """One group restating the defaults (as ZeroRedundancyOptimizer passes it) keeps the beta/gamma filter."""

    def restated(items: Items) -> Any:
        values = list(items.values())
        if not isinstance(values[0], tuple):
            return values  # the NumPy side: a plain list
        return [{"params": values, "learning_rate": 0.05, "beta2": 0.99, "weight_decay": 0.3, "none_grad": "zeros"}]

    twin = Twin(restated, learning_rate=0.05, beta2=0.99, weight_decay=0.3)
    assert not twin.opt.is_group
    twin.step()
    twin.step()
    model = Net()
    with pytest.raises(KeyError):  # a setting MindSpore has no per-group form of
        msadam_torch.Adam([{"params": [model.fc1.weight], "beta1": 0.5}], beta1=0.9)


def test_empty_groups() -> None:
    model = Net()
    opt = msadam_torch.Adam([{"params": []}, {"params": [model.fc1.weight], "weight_decay": 0.1}])
    assert len(opt.param_groups) == 2 and opt.is_group
    loss_of(model, 0).backward()
    opt.step()
    empty = msadam_torch.Adam([{"params": []}], learning_rate=0.1)  # a ZeRO rank with no share
    assert empty.core is None and empty.step() is None and empty.state_dict()["state"] == {}
    with pytest.raises(ValueError):
        msadam_torch.Adam([{"params": []}], beta1=2.0)  # the arguments are still checked


def test_import_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import msadam_torch\n"
            "try:\n    msadam_torch.Adam\nexcept ImportError as exc:\n    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "pip install torch==2.13.0" in run.stdout


# -- torch.compile and torch.amp ------------------------------------------------------------------


def _train(step_fn: Callable[..., Any], model: nn.Module, opt: Any, inside: bool, steps: int = 4) -> list[Any]:
    for i in range(steps):
        x, y = batch(i)
        step_fn(model, opt, x, y, inside)
        if not inside:
            opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _step_fn(model: nn.Module, opt: Any, x: Any, y: Any, inside: bool) -> Any:
    opt.zero_grad()
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    if inside:
        opt.step()  # msadam_torch.Adam.step is torch.compiler.disable'd: a graph break, then eager
    return loss


# Dynamo itself reads `.grad` of the (non-leaf) loss when it resumes after the optimizer's graph break
# (torch/_dynamo/variables/builder.py, safe_has_grad); with warnings as errors that internal warning would fail the run.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf Tensor:UserWarning")
# Inductor's first import loads torch.utils.mkldnn, whose ScriptModules use the deprecated torch.jit.script_method.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile(backend: str) -> None:
    torch._dynamo.reset()
    try:
        eager = _train(_step_fn, (m := Net()), msadam_torch.Adam(m.parameters(), weight_decay=0.1), inside=True)
        compiled = torch.compile(_step_fn, backend=backend)
        results = [_train(compiled, (m := Net()), msadam_torch.Adam(m.parameters(), weight_decay=0.1), inside)
                   for inside in (True, False)]
    finally:
        torch._dynamo.reset()
    for inside, outside, reference in zip(*results, eager, strict=True):
        torch.testing.assert_close(inside, outside, rtol=0, atol=0)
        if backend == "aot_eager":  # the same kernels as eager
            torch.testing.assert_close(inside, reference, rtol=0, atol=0)
        else:  # inductor fuses the forward/backward, which may round differently
            torch.testing.assert_close(inside, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("embedding", [False, True], ids=["dense", "sparse"])
def test_grad_scaler_and_loss_scale(embedding: bool) -> None:
    """GradScaler unscales before step (leave loss_scale=1); MindSpore's fixed loss scale divides inside Adam."""
    scale = 1024.0

    def run(mode: str) -> list[Any]:
        model = Net(embedding)
        opt = msadam_torch.Adam(model.parameters(), learning_rate=0.01, weight_decay=0.1,
                                loss_scale=scale if mode == "loss_scale" else 1.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_interval=1000)
        for i in range(4):
            opt.zero_grad()
            loss = loss_of(model, i, embedding)
            if mode == "grad_scaler":
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                (loss * scale if mode == "loss_scale" else loss).backward()
                opt.step()
        return [p.detach().clone() for p in model.parameters()]

    plain = run("plain")
    for mode in ("grad_scaler", "loss_scale"):
        for got, want in zip(run(mode), plain, strict=True):
            # A power-of-two scale multiplies and divides exactly (weight decay too, pre-multiplied by the scale),
            # so here the numbers are identical; another scale would agree only to rounding.
            torch.testing.assert_close(got, want, rtol=0, atol=0)
