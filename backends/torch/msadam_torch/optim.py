"""``msadam_torch.Adam``: ``mindspore.nn.Adam`` (signature, checks, state, numbers) as a ``torch.optim.Optimizer``.

Each torch parameter is wrapped in an :class:`msadam.Parameter` (no copy: the torch backend updates
the user's tensors in place) and one core :class:`msadam.Adam` does the work — validation, groups,
learning rates, step counting, beta powers. This module adapts it to torch: ``.grad`` (sparse COO
gradients become :class:`msadam.RowTensor` objects, never coalesced), ``param_groups``, ``state``,
``state_dict()``, closures, LR schedulers, ZeroRedundancyOptimizer. See docs/torch.md.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

import numpy as np
import torch

import msadam
from msadam_torch.kernels import coo_to_row_parts
from msadam_torch.names import NAME_ATTRIBUTE, NameMap, mindspore_names, name_parameters, renamer

__all__ = ["NAME_ATTRIBUTE", "Adam", "mindspore_names", "name_parameters"]

NoneGrad = Literal["zeros", "skip", "error"]
_MINDSPORE_GROUP_KEYS = frozenset({"params", "lr", "weight_decay", "grad_centralization", "order_params"})
_STATE_SCALARS = ("global_step", "beta1_power", "beta2_power")
# MindSpore attributes of the core optimizer that read through (opt.global_step, opt.moment1, ...);
# ``target`` and ``unique`` (the sparse path) are also set through.
_CORE_ATTRIBUTES = frozenset({
    "parameters", "moment1", "moment2", "vhat", "global_step", "beta1_power", "beta2_power", "learning_rate",
    "get_lr", "get_weight_decay", "is_group", "is_group_lr", "dynamic_lr", "dynamic_weight_decay", "use_lazy",
    "use_offload", "use_nesterov", "use_amsgrad", "use_locking", "loss_scale", "beta1", "beta2", "eps",
    "parameters_and_state", "target", "unique",
})
_CORE_SETTABLE = frozenset({"target", "unique"})


# -- conversions --------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """The same object, or equal plain values of one type (sequences item by item; never array comparisons)."""
    if a is b or type(a) is not type(b):
        return a is b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return isinstance(a, bool | int | float | str) and bool(a == b)


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], torch.Tensor)


def _is_iterable(value: Any) -> TypeGuard[Iterable[Any]]:
    return isinstance(value, Iterable) and not isinstance(value, torch.Tensor | str | Mapping)


def to_gradient(grad: Any) -> Any:
    """A torch gradient as msadam takes it: sparse COO -> :class:`msadam.RowTensor` (rows kept as they are).

    An uncoalesced ``nn.Embedding(sparse=True)`` gradient has one row per lookup; MindSpore's sparse
    paths depend on repeated indices, so nothing is merged here. COO tensors that are not row-sparse
    (``sparse_dim() != 1``) and other sparse layouts are made dense.
    """
    if not isinstance(grad, torch.Tensor) or grad.layout == torch.strided:
        return grad
    if grad.layout == torch.sparse_coo and grad.sparse_dim() == 1:
        return msadam.RowTensor(*coo_to_row_parts(grad), tuple(grad.shape))
    return grad.to_dense()


class _Converter:
    """Turns torch ``params`` (tensors, ``(name, tensor)`` pairs, group dicts) into msadam's."""

    def __init__(self, rename: Callable[[str], str], args: dict[str, Any]) -> None:
        self.rename, self.args = rename, args
        self.wrapped: dict[int, tuple[torch.Tensor, msadam.Parameter]] = {}
        self.torch_names: dict[int, str] = {}
        self.groups: list[dict[str, Any]] = []  # the torch param groups (MindSpore settings, converted params)
        self.grouped = False  # params were group dicts

    def param(self, item: Any) -> Any:
        """A tensor or pair -> its msadam.Parameter (one per tensor); anything else is left for the core to reject."""
        name = None
        if _is_pair(item):
            self.torch_names.setdefault(id(item[1]), item[0])
            name, item = self.rename(item[0]), item[1]
        if not isinstance(item, torch.Tensor):
            return item
        if id(item) not in self.wrapped:
            name = name if name is not None else getattr(item, NAME_ATTRIBUTE, None)
            self.wrapped[id(item)] = (item, msadam.Parameter(item, name=name))
        return self.wrapped[id(item)][1]

    def convert(self, params: Any) -> Any:
        if isinstance(params, torch.Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {torch.typename(params)}")
        if params is None or not _is_iterable(params):
            return params  # the core raises MindSpore's ValueError / TypeError
        items = list(params)
        if items and all(isinstance(item, dict) for item in items):
            return self._convert_groups(items)
        converted = [self.param(item) for item in items]
        self.groups = [{"params": converted}]
        return converted

    def _convert_groups(self, items: list[dict[str, Any]]) -> Any:
        self.grouped = True
        converted = []
        for item in items:
            group = dict(item)
            names = list(group.pop("param_names", None) or [])
            for key in [k for k in group if k not in _MINDSPORE_GROUP_KEYS and k in self.args]:
                if _same(group[key], self.args[key]):
                    del group[key]  # a default restated (torch's add_param_group, ZeroRedundancyOptimizer)
            members = group.get("params")
            if _is_iterable(members):
                members = list(members)
                if names and len(names) == len(members):
                    members = [m if _is_pair(m) else (n, m) for n, m in zip(names, members, strict=True)]
                group["params"] = [self.param(m) for m in members]
            order = group.get("order_params")
            if _is_iterable(order) and hasattr(order, "__len__"):  # a generator stays one: MindSpore takes len()
                group["order_params"] = [self.param(m) for m in order]
            converted.append(group)
        self.groups = [g for g in converted if "order_params" not in g]
        # torch: `[{'params': ps}]` is `ps`. One group that sets nothing of its own is MindSpore's ungrouped list
        # (ZeroRedundancyOptimizer hands its local optimizer such a group for a flat parameter list).
        if len(converted) == 1 and isinstance(converted[0].get("params"), list):
            group = converted[0]
            own = set(group) - {"params"}
            if not own - {"weight_decay", "grad_centralization"} and \
                    _same(group.get("weight_decay", self.args["weight_decay"]), self.args["weight_decay"]) and \
                    group.get("grad_centralization", False) is False:
                return group["params"]
        # An empty group is fine in torch (ZeRO gives a rank an empty share); MindSpore rejects it, so it is
        # kept in param_groups but not handed to the core.
        return [g for g in converted if not (isinstance(g.get("params"), list) and not g["params"])]


@dataclass
class _LRSlot:
    """How ``param_groups[i]['lr']`` maps to MindSpore: a fixed rate's Parameter, a dynamic rate, or nothing."""

    kind: Literal["fixed", "dynamic", "none"]
    index: int = -1  # a core parameter of the group
    param: msadam.Parameter | None = None  # the fixed rate's float32 Parameter (shared by groups without 'lr')
    shown: Any = None  # the value last written to param_groups[i]['lr']
    synced: float | None = None  # the Parameter's value at the last sync


class Adam(torch.optim.Optimizer):
    r"""``mindspore.nn.Adam`` as a ``torch.optim.Optimizer``, with MindSpore's numbers (see docs/torch.md).

    Args:
        params: ``model.parameters()``, ``model.named_parameters()`` (names drive the ``beta``/``gamma``
            weight-decay filter and the state names), or MindSpore group dicts (``params``, ``lr``,
            ``weight_decay``, ``grad_centralization``, ``order_params``) of tensors or ``(name, tensor)``
            pairs. Unnamed tensors get MindSpore's generated names unless
            [`name_parameters`][msadam_torch.names.name_parameters] named them.
        learning_rate: as ``mindspore.nn.Adam`` — like every argument below but ``name_map`` and
            ``none_grad`` (same checks, same exception classes): a number, a 0-d or 1-D ``msadam.Tensor``,
            a list (step *i* takes element *i*) or a ``msadam.LearningRateSchedule``.
        beta1: the first moment's decay rate, in (0, 1).
        beta2: the second moment's decay rate, in (0, 1).
        eps: added to ``sqrt(v)`` before the bias correction, as MindSpore adds it.
        use_locking: take a lock around each step.
        use_nesterov: Nesterov momentum (ignored with ``use_amsgrad``, as in MindSpore).
        weight_decay: a number ``>= 0`` or a schedule of the step; without groups, names containing
            ``beta`` or ``gamma`` take none.
        loss_scale: gradients are divided by it (an ``int`` becomes a ``float``; must be ``> 0``).
        use_amsgrad: AMSGrad (keeps ``vhat``).
        name_map: renames the names of ``(name, tensor)`` pairs: a mapping or a callable, e.g.
            ``msadam_torch.mindspore_names(model)`` (``LayerNorm.weight`` -> ``gamma``).
        none_grad: a ``.grad`` that is None is ``'zeros'`` (default: a zero gradient, as MindSpore gives a
            parameter that took no part in the loss), ``'skip'`` (parameter and moments untouched, as torch
            does) or ``'error'``. Tensors with ``requires_grad=False`` and no gradient are always skipped.
        **kwargs: ``use_lazy`` and ``use_offload``, MindSpore's keyword arguments (and nothing else).

    ``step()`` reads ``.grad``; ``opt(gradients)`` takes a tuple in ``opt.parameters`` order, as MindSpore.
    """

    def __init__(self, params: Any, learning_rate: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, use_locking: bool = False, use_nesterov: bool = False, weight_decay: Any = 0.0,
                 loss_scale: float = 1.0, use_amsgrad: bool = False, *, name_map: NameMap = None,
                 none_grad: NoneGrad = "zeros", **kwargs: Any) -> None:
        if none_grad not in ("zeros", "skip", "error"):
            raise ValueError(f"none_grad must be 'zeros', 'skip' or 'error', but got {none_grad!r}.")
        hyper = {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "eps": eps,
                 "use_locking": use_locking, "use_nesterov": use_nesterov, "weight_decay": weight_decay,
                 "loss_scale": loss_scale, "use_amsgrad": use_amsgrad}
        converter = _Converter(renamer(name_map), {**hyper, **kwargs, "name_map": name_map, "none_grad": none_grad})
        items = converter.convert(params)
        self._core: msadam.Adam | None = None
        if converter.grouped and isinstance(items, list) and not items:
            # Every group is empty (a ZeroRedundancyOptimizer rank with no share): check the arguments anyway.
            msadam.Adam([msadam.Parameter(np.zeros(1, np.float32), name="unused", backend="numpy")], **hyper, **kwargs)
        else:
            self._core = msadam.Adam(items, **hyper, **kwargs)
        self.none_grad: NoneGrad = none_grad
        self._lock = threading.Lock()
        by_param = {id(p): t for t, p in converter.wrapped.values()}
        self._tensors = [by_param[id(p)] for p in (self._core.parameters if self._core is not None else ())]
        for p, tensor in zip(self._core.parameters if self._core is not None else (), self._tensors, strict=True):
            if p.data is not tensor:
                raise RuntimeError(f"The {p.backend!r} msadam backend copied parameter '{p.name}'; msadam_torch needs "
                                   "the torch backend, which updates the tensors in place.")
        self._index = {id(t): i for i, t in enumerate(self._tensors)}
        wide = {"beta1": beta1, "beta2": beta2, "eps": eps, "use_locking": use_locking, "use_nesterov": use_nesterov,
                "loss_scale": loss_scale, "use_amsgrad": use_amsgrad, "use_lazy": kwargs.get("use_lazy", False),
                "use_offload": kwargs.get("use_offload", False)}
        named = bool(converter.wrapped) and all(id(t) in converter.torch_names for t, _ in converter.wrapped.values())
        self._fixed: list[dict[str, Any]] = []  # per group: the settings param_groups shows but cannot change
        self._lr_slots: list[_LRSlot] = []
        groups = []
        for group in converter.groups:
            tensors = [by_param[id(p)] for p in group["params"]]
            self._fixed.append({"weight_decay": group.get("weight_decay", weight_decay),
                                "grad_centralization": group.get("grad_centralization", False), **wide})
            self._lr_slots.append(self._lr_slot(tensors, group.get("lr", learning_rate)))
            groups.append({"params": tensors, "lr": self._lr_slots[-1].shown, **self._fixed[-1]})
            if named:  # as torch.optim does for named_parameters()
                groups[-1]["param_names"] = [converter.torch_names[id(t)] for t in tensors]
        self._initialized = False
        super().__init__(groups, {"lr": self._lr_slots[0].shown, "weight_decay": weight_decay,
                                  "grad_centralization": False, **wide})
        self._initialized = True
        self._publish()

    def _lr_slot(self, tensors: list[torch.Tensor], given: Any) -> _LRSlot:
        if self._core is None or not tensors:  # an empty group: nothing to drive; 'lr' only shows the given value
            fixed = isinstance(given, int | float) or (isinstance(given, msadam.Tensor) and given.ndim == 0)
            return _LRSlot("none", shown=float(np.asarray(given)) if fixed else None)
        index = self._index[id(tensors[0])]
        source = self._core.get_lr_parameter(self._core.parameters[index])
        if isinstance(source, msadam.Parameter) and source.ndim == 0:
            value = float(source.asnumpy())
            return _LRSlot("fixed", index, source, float(given) if isinstance(given, int | float) else value, value)
        return _LRSlot("dynamic", index)

    # -- torch.optim.Optimizer ------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Only during construction: ``mindspore.nn.Adam`` cannot add parameters to a built optimizer."""
        if not getattr(self, "_initialized", False):
            super().add_param_group(param_group)
            return
        raise NotImplementedError(
            "msadam_torch.Adam cannot add a parameter group after construction: mindspore.nn.Adam fixes its "
            "parameters when it is built (global_step and the beta powers are shared by all of them). Build a new "
            "optimizer with every group and carry the state over with "
            "new.load_mindspore_state_dict(old.mindspore_state_dict(), strict=False)."
        )

    @torch.compiler.disable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One MindSpore Adam step from the parameters' ``.grad``; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._core is None:
            return loss
        grads, skipped = [], []
        for i, tensor in enumerate(self._tensors):
            grad = tensor.grad
            if grad is None:
                if self.none_grad == "error" and tensor.requires_grad:
                    raise RuntimeError(f"Parameter '{self._core.parameters[i].name}' has no gradient (.grad is "
                                       "None); msadam_torch.Adam was built with none_grad='error'.")
                if self.none_grad == "skip" or not tensor.requires_grad:
                    skipped.append(i)
                grad = torch.zeros_like(tensor)
            grads.append(to_gradient(grad))
        self._run(tuple(grads), skipped)
        return loss

    @torch.compiler.disable
    def __call__(self, gradients: Any) -> tuple[bool, ...]:
        """One step, MindSpore style: ``gradients`` is a tuple in the order of ``opt.parameters``."""
        if self._core is None:
            return ()
        if isinstance(gradients, tuple):
            gradients = tuple(to_gradient(g) for g in gradients)
        return self._run(gradients, [])

    def _run(self, gradients: Any, skipped: list[int]) -> tuple[bool, ...]:
        core = self._core
        assert core is not None
        with self._lock if core.use_locking else contextlib.nullcontext(), torch.no_grad():
            self._prepare()
            owners = [core.parameters, core.moment1, core.moment2, *([core.vhat] if core.use_amsgrad else [])]
            saved = [(owner[i].data, owner[i].data.clone()) for i in skipped for owner in owners]
            result = core(gradients)
            for array, copy in saved:
                array.copy_(copy)
            self._publish()
        return result

    # -- keeping param_groups and state in step with the core -----------------------------------

    def _prepare(self, loaded: bool = False) -> None:
        """Before a step: refuse changed fixed settings, adopt state and learning rates set on the torch side."""
        for i, (group, fixed) in enumerate(zip(self.param_groups, self._fixed, strict=True)):
            for key, expected in fixed.items():
                if key in group and not _same(group[key], expected):
                    raise ValueError(f"param_groups[{i}][{key!r}] was changed from {expected!r} to {group[key]!r}; "
                                     "msadam_torch.Adam fixes its hyper-parameters at construction, as MindSpore "
                                     "does (only a fixed learning rate may change, through 'lr').")
        staged = self._stage_states((i, self.state.get(t)) for i, t in enumerate(self._tensors))
        if self._core is not None and staged:
            targets = {p.name: p for p in self._core.parameters_and_state()}
            for name, value in staged.items():
                if isinstance(value, torch.Tensor):
                    targets[name].data.copy_(value)  # in place: the backend's buckets keep their arrays
                else:
                    targets[name].set_data(value)
        self._sync_lrs(loaded)

    def _stage_states(self, states: Iterable[tuple[int, Any]]) -> dict[str, Any]:
        """Check per-parameter torch states; returns ``{MindSpore name: value}`` for what differs from the core."""
        core = self._core
        staged: dict[str, Any] = {}
        if core is None:
            return staged
        fields = [("moment1", core.moment1), ("moment2", core.moment2), ("vhat", core.vhat)][:3 if core.use_amsgrad
                                                                                             else 2]
        scalars: tuple[Any, ...] | None = None
        for index, state in states:
            state, name = state or {}, core.parameters[index].name
            missing = [k for k, _ in fields if not isinstance(state.get(k), torch.Tensor)]
            missing += [k for k in _STATE_SCALARS if k not in state]
            if missing:
                raise KeyError(f"The optimizer state of parameter '{name}' lacks {missing}: msadam_torch.Adam keeps "
                               "MindSpore's state for every parameter (load a state_dict() of msadam_torch.Adam).")
            for key, owners in fields:
                if state[key] is not owners[index].data:
                    if tuple(state[key].shape) != owners[index].shape:
                        raise ValueError(f"State '{key}' of parameter '{name}' has shape {tuple(state[key].shape)}, "
                                         f"expected {owners[index].shape}.")
                    staged[owners[index].name] = state[key]
            found = tuple(state[k] for k in _STATE_SCALARS)
            if scalars is not None and found != scalars:
                raise ValueError(f"Parameter states disagree on {_STATE_SCALARS}: {scalars} and {found} "
                                 f"(at '{name}'); MindSpore keeps one global step for the optimizer.")
            scalars = found
        current = (core.global_step.asnumpy()[0], core.beta1_power.asnumpy(), core.beta2_power.asnumpy())
        if scalars is not None and any(float(a) != float(b) for a, b in zip(scalars, current, strict=True)):
            staged.update(global_step=np.array([int(scalars[0])], np.int32), beta1_power=np.float32(scalars[1]),
                          beta2_power=np.float32(scalars[2]))
        return staged

    def _sync_lrs(self, loaded: bool) -> None:
        """``param_groups[i]['lr']`` <-> MindSpore's learning-rate Parameters (fixed rates only)."""
        shared: dict[int, list[tuple[int, float, bool]]] = {}  # a Parameter -> (group, lr, changed) of its groups
        for i, (group, slot) in enumerate(zip(self.param_groups, self._lr_slots, strict=True)):
            value = group.get("lr")
            if slot.kind == "dynamic" and not loaded and not _same(value, slot.shown):
                raise ValueError(f"param_groups[{i}]['lr'] was set to {value!r}, but the group's learning rate is "
                                 "dynamic (a list, 1-D Tensor or LearningRateSchedule) and cannot be set.")
            if slot.kind == "fixed" and slot.param is not None:
                shared.setdefault(id(slot.param), []).append((i, float(value or 0.0), not _same(value, slot.shown)))
        wanted: dict[int, float] = {}
        for key, entries in shared.items():
            if any(changed for _, _, changed in entries):
                if len({lr for _, lr, _ in entries}) > 1:
                    raise ValueError(f"param_groups {[i for i, _, _ in entries]} share one MindSpore learning rate but "
                                     f"were set to {[lr for _, lr, _ in entries]}: set them alike, or give each group "
                                     "its own 'lr' at construction.")
                wanted[key] = entries[0][1]
        for group, slot in zip(self.param_groups, self._lr_slots, strict=True):
            if slot.kind != "fixed" or slot.param is None:
                continue
            if id(slot.param) in wanted:
                slot.param.set_data(np.asarray(wanted[id(slot.param)], np.float32))
                group["lr"] = slot.shown = wanted[id(slot.param)]
            elif float(slot.param.asnumpy()) != slot.synced:  # set on the MindSpore side (opt.learning_rate)
                group["lr"] = slot.shown = float(slot.param.asnumpy())
            slot.synced = float(slot.param.asnumpy())

    def _publish(self) -> None:
        """After a step: point ``state`` at the core's live moments, update the scalars and dynamic ``lr``."""
        core = self._core
        if core is None:
            return
        scalars = {"global_step": int(core.global_step.asnumpy()[0]),
                   "beta1_power": float(core.beta1_power.asnumpy()), "beta2_power": float(core.beta2_power.asnumpy())}
        for i, tensor in enumerate(self._tensors):
            state = self.state[tensor]
            state["moment1"], state["moment2"] = core.moment1[i].data, core.moment2[i].data
            if core.use_amsgrad:
                state["vhat"] = core.vhat[i].data
            state.update(scalars)
        if any(slot.kind == "dynamic" for slot in self._lr_slots):
            try:
                lrs = core.get_lr()
            except (RuntimeError, ValueError):  # a 1-D rate used up, or a 2-D one: the next step fails, as in MindSpore
                return
            for group, slot in zip(self.param_groups, self._lr_slots, strict=True):
                if slot.kind == "dynamic":
                    group["lr"] = slot.shown = float(np.asarray(lrs[slot.index] if isinstance(lrs, tuple) else lrs))

    # -- state dicts ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """torch's format. Per parameter: ``moment1``, ``moment2`` (``vhat``), ``global_step``, ``beta1_power``,
        ``beta2_power``; ``'mindspore_names'`` gives each parameter index its MindSpore name."""
        state = super().state_dict()
        names = {id(t): p.name for t, p in zip(self._tensors, self._core.parameters if self._core else (), strict=True)}
        state["mindspore_names"] = [names.get(id(t)) for g in self.param_groups for t in g["params"]]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a [`state_dict`][msadam_torch.optim.Adam.state_dict]; everything is checked before anything changes."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved_groups, self.param_groups, strict=True)):
            raise ValueError("loaded state dict has other parameter groups (number or sizes) than the optimizer's")
        for i, (saved, fixed) in enumerate(zip(saved_groups, self._fixed, strict=True)):
            changed = {k: saved[k] for k in fixed if k in saved and not _same(saved[k], fixed[k])}
            if changed:
                raise ValueError(f"The saved param_groups[{i}] has other hyper-parameters {changed}; msadam_torch.Adam "
                                 "fixes them at construction (build the optimizer with the saved ones).")
        ids = (i for g in saved_groups for i in g["params"])
        tensors = (t for g in self.param_groups for t in g["params"])
        self._stage_states((self._index[id(t)], state_dict["state"].get(i)) for i, t in zip(ids, tensors, strict=True))
        super().load_state_dict(state_dict)
        with torch.no_grad():
            self._prepare(loaded=True)
            self._publish()

    def mindspore_state_dict(self) -> dict[str, np.ndarray]:
        """The state under MindSpore's checkpoint names (``global_step``, the parameters, ``beta1_power``,
        ``beta2_power``, ``moment1.<name>``, ``moment2.<name>``, ..., ``learning_rate``), as NumPy copies."""
        if self._core is None:
            return {}
        with torch.no_grad():
            self._prepare()
        return self._core.state_dict()

    def load_mindspore_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> None:
        """Load MindSpore-named state: a MindSpore checkpoint's dict, or a
        [`mindspore_state_dict`][msadam_torch.optim.Adam.mindspore_state_dict]."""
        if self._core is None:
            return
        with torch.no_grad():
            self._prepare()
            self._core.load_state_dict(state_dict, strict)
            self._sync_lrs(loaded=True)
            self._publish()

    # -- MindSpore's surface --------------------------------------------------------------------

    @property
    def core(self) -> msadam.Adam | None:
        """The [`msadam.Adam`][msadam.Adam] doing the work (None on a ZeRO rank that holds no parameters)."""
        return self._core

    def mindspore_name(self, tensor: torch.Tensor) -> str:
        """The MindSpore name of one of the optimizer's tensors."""
        assert self._core is not None
        return self._core.parameters[self._index[id(tensor)]].name

    def get_lr_parameter(self, param: Any) -> Any:
        """As MindSpore's, for tensors of this optimizer (one, or a list), or msadam Parameters."""
        core = self._core
        if core is None:
            raise ValueError("This optimizer holds no parameters.")

        def wrap(p: Any) -> Any:
            if not isinstance(p, torch.Tensor):
                return p
            index = self._index.get(id(p))  # a foreign tensor: a new Parameter, which the core reports as not in it
            return core.parameters[index] if index is not None else msadam.Parameter(p, getattr(p, NAME_ATTRIBUTE,
                                                                                                  None))

        return core.get_lr_parameter([wrap(p) for p in param] if isinstance(param, list) else wrap(param))

    def __getattr__(self, name: str) -> Any:
        core = self.__dict__.get("_core")
        if name in _CORE_ATTRIBUTES and core is not None:
            return getattr(core, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CORE_SETTABLE:  # the sparse path (opt.target = 'CPU'); a ZeRO rank with no share ignores it
            if self.__dict__.get("_core") is not None:
                setattr(self.__dict__["_core"], name, value)
            return
        super().__setattr__(name, value)
