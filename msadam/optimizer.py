"""``msadam.Adam``: ``mindspore.nn.Adam`` (2.10) with its signature, checks, state and numbers.

The core owns validation, grouping, learning rates, step counting and the float32 beta powers;
the parameters' backend owns arrays and kernels (see :mod:`msadam.backend`).
"""

from __future__ import annotations

import dataclasses
import operator
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from msadam import groups, registry, state, validation
from msadam.backend import Backend, Bucket, SparseGrad, SparsePath, StepHyper
from msadam.gradients import CheckedSparse, Prescaled, check_gradients
from msadam.kernel_dtypes import check_step_dtypes
from msadam.learning_rates import DynamicWeightDecay, FixedLR, LRSource, ScheduleLR, UncallableLR
from msadam.sparse import SparseStrategy, check_target, check_unique
from msadam.tensor import Parameter, Tensor

__all__ = ["Adam"]


@dataclass
class _BucketPlan:
    """Members of one bucket (indices into ``opt.parameters``) and what they share."""

    members: list[int]
    lr: LRSource
    weight_decay: float | DynamicWeightDecay | None  # None: this bucket does not decay
    centralize: bool
    bucket: Bucket


def _host_scalar(value: Any, dtype: type, shape: tuple[int, ...], name: str) -> Parameter:
    return Parameter(np.full(shape, value, dtype=dtype), name=name, backend="numpy")


class Adam:
    r"""Adam, exactly as ``mindspore.nn.Adam`` computes it.

    ```text
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    lr_t = learning_rate * sqrt(1 - beta2_power) / (1 - beta1_power)
    w = w - lr_t * m / (sqrt(v) + eps)
    ```

    ``eps`` is added to ``sqrt(v)`` *before* the bias correction (unlike ``torch.optim.Adam`` and
    ``optax.adam``). ``beta1_power``/``beta2_power`` are float32 running products, not ``beta**t``.

    Args: as ``mindspore.nn.Adam``; ``**kwargs`` accepts only ``use_lazy`` and ``use_offload``.
    Calling the optimizer with a tuple of gradients (in the order of ``opt.parameters``) performs
    one step and returns a tuple of ``True``.
    """

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        use_locking: bool = False,
        use_nesterov: bool = False,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        use_amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        # Optimizer.__init__: params, then loss_scale, then learning rate, groups and weight decay.
        items = groups.check_params(params)
        if isinstance(loss_scale, int):
            loss_scale = float(loss_scale)  # optimizer.py: an int (bool included) becomes a float
        validation.check_value_type("loss_scale", loss_scale, (float,), "Adam")
        self.loss_scale = validation.check_positive_float("loss_scale", loss_scale, "Adam")
        layout = groups.parse_params(items, learning_rate, weight_decay, self.loss_scale)
        # Adam.__init__'s own checks come after the base class's.
        flags = {"use_locking": use_locking, "use_nesterov": use_nesterov, "use_amsgrad": use_amsgrad,
                 "use_lazy": kwargs.get("use_lazy", False), "use_offload": kwargs.get("use_offload", False)}
        validation.check_adam_args(beta1, beta2, eps, flags, kwargs)
        self._check_no_repeats(layout.params)
        self._backend = self._common_backend(layout.params)
        self._layout = layout
        self.beta1, self.beta2, self.eps = np.float32(beta1), np.float32(beta2), np.float32(eps)
        self.use_locking, self.use_nesterov, self.use_amsgrad = use_locking, use_nesterov, use_amsgrad
        self.use_lazy, self.use_offload = flags["use_lazy"], flags["use_offload"]
        self.is_group, self.is_group_lr, self.dynamic_lr = layout.is_group, layout.is_group_lr, layout.dynamic_lr
        self.dynamic_weight_decay = any(isinstance(w, DynamicWeightDecay) for w in layout.weight_decays) or \
            isinstance(layout.default_weight_decay, DynamicWeightDecay)
        self._sparse = SparseStrategy(unique=not any(p.unique for p in layout.params))
        self.parameters = tuple(layout.params)
        self.global_step = _host_scalar(0, np.int32, (1,), "global_step")
        self.beta1_power = _host_scalar(1.0, np.float32, (), "beta1_power")
        self.beta2_power = _host_scalar(1.0, np.float32, (), "beta2_power")
        # Offload skips centralization: `if not self.use_offload: gradients_centralization(...)` (adam.py).
        self._centralize_flags = [f and not self.use_offload for f in layout.centralize_flags]
        self._plans = self._build_buckets()
        # Shapes never change (set_data checks them) and set_data casts to the dtype: read them once.
        self._shapes_and_dtypes = [(p.shape, p.dtype) for p in self.parameters]
        self.moment1 = self._state_parameters("moment1", "m")
        self.moment2 = self._state_parameters("moment2", "v")
        self.vhat = self._state_parameters("vhat", "vhat") if use_amsgrad else ()
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------------

    @staticmethod
    def _check_no_repeats(params: list[Parameter]) -> None:
        """One Parameter listed twice (ungrouped): ``moment1 = parameters.clone(...)`` repeats a name (adam.py)."""
        seen: set[int] = set()
        for param in params:
            if id(param) in seen:
                raise ValueError(f"The value {param} , its name 'moment1.{param.name}' already exists. "
                                 "Please set a unique name for the parameter.")
            seen.add(id(param))

    @staticmethod
    def _common_backend(params: list[Parameter]) -> Backend:
        backends = {p.backend for p in params}
        if len(backends) > 1:
            raise TypeError(f"For 'Adam', all parameters must live on one backend, but got {sorted(backends)}.")
        if not params:  # every group's params was a one-shot iterator (groups._is_one_shot): MindSpore builds it
            return registry.current_backend()
        return params[0]._backend

    def _build_buckets(self) -> list[_BucketPlan]:
        """Bucket parameters that share learning rate, weight decay, flags and dtype."""
        layout = self._layout
        keyed: dict[tuple[Any, ...], tuple[LRSource, Any, bool, list[int]]] = {}
        for i, param in enumerate(layout.params):
            decay = layout.weight_decays[i] if layout.decay_flags[i] else None
            centralize = self._centralize_flags[i]
            key = (id(layout.lrs[i]), id(decay) if isinstance(decay, DynamicWeightDecay) else decay,
                   centralize, str(param.dtype))
            keyed.setdefault(key, (layout.lrs[i], decay, centralize, []))[3].append(i)
        plans = []
        for lr, decay, centralize, members in keyed.values():
            bucket = self._backend.new_bucket([layout.params[i].data for i in members], self.use_amsgrad)
            for j, i in enumerate(members):
                layout.params[i]._data = bucket.params[j]  # the backend may re-home (flat buffers)
            plans.append(_BucketPlan(members, lr, decay, centralize, bucket))
        return plans

    def _state_parameters(self, prefix: str, field: str) -> tuple[Parameter, ...]:
        by_index: dict[int, Parameter] = {}
        for plan in self._plans:
            arrays = getattr(plan.bucket, field)
            for j, i in enumerate(plan.members):
                by_index[i] = Parameter._wrap(self._backend, arrays[j], f"{prefix}.{self.parameters[i].name}")
        return tuple(by_index[i] for i in range(len(self.parameters)))

    # -- MindSpore's properties and getters ---------------------------------------------------

    @property
    def target(self) -> str:
        """'CPU', 'GPU' or 'Ascend': which of MindSpore's sparse paths runs (see ``msadam.sparse``)."""
        return self._sparse.target

    @target.setter
    def target(self, value: str) -> None:
        self._sparse = SparseStrategy(check_target(value), True, self._sparse.unique)

    @property
    def unique(self) -> bool:
        """Whether repeated sparse indices are merged on a 'GPU'/'Ascend' target (default ``True``)."""
        return self._sparse.unique

    @unique.setter
    def unique(self, value: bool) -> None:
        self._sparse = SparseStrategy(self._sparse.target, self._sparse.explicit, check_unique(value))

    @property
    def learning_rate(self) -> Any:
        """As MindSpore: a Parameter (fixed), an object holding the vector (1-D), the schedule, or per parameter."""
        if self.is_group_lr:
            return tuple(self._public_lr(lr) for lr in self._layout.lrs)
        return self._public_lr(self._layout.default_lr)

    def _public_lr(self, source: LRSource) -> Any:
        if isinstance(source, ScheduleLR):
            return source.schedule
        if isinstance(source, UncallableLR):
            return source.learning_rate
        if isinstance(source, FixedLR) and not (self.is_group_lr and self.dynamic_lr):
            return source.learning_rate
        return source  # MindSpore's _ConvertToCell / _IteratorLearningRate: `.learning_rate` is the Parameter

    def get_lr(self) -> Any:
        """The learning rate of the current step (a Parameter when fixed, else a Tensor; a tuple per parameter)."""
        if not self.dynamic_lr:
            lrs = self.learning_rate
            return lrs
        step = self.global_step.asnumpy()
        if self.is_group_lr:
            return tuple(Tensor(lr(step)) for lr in self._layout.lrs)
        return Tensor(self._layout.default_lr(step))

    def get_lr_parameter(self, param: Parameter | list[Parameter]) -> Any:
        """The learning-rate Parameter (or schedule) of ``param``; a list for a list."""
        if isinstance(param, Parameter):
            param_list = [param]
        elif isinstance(param, list):
            param_list = param
        else:
            raise TypeError(f"For 'get_lr_parameter', the 'param' must be 'Parameter' or 'list' type, "
                            f"but got {type(param)}.")
        ids = [id(p) for p in self.parameters]
        found = []
        for p in param_list:
            validation.check_value_type("parameter", p, (Parameter,), "Adam")
            if id(p) not in ids:
                raise ValueError(f"For 'get_lr_parameter', the parameter {p.name} is not in optimizer, please "
                                 "check whether the argument 'param' is correct.")
            source = self._layout.lrs[ids.index(id(p))]
            found.append(source.schedule if isinstance(source, ScheduleLR) else source.learning_rate)
        return found if isinstance(param, list) else found[0]

    def get_weight_decay(self) -> Any:
        """The weight decay of the current step, already multiplied by ``loss_scale`` (a tuple when grouped)."""
        step = self.global_step.asnumpy()

        def value(decay: float | DynamicWeightDecay) -> Tensor:
            return Tensor(decay(step) if isinstance(decay, DynamicWeightDecay) else np.float32(decay))

        if self.is_group:
            return tuple(value(d) for d in self._layout.weight_decays)
        return value(self._layout.default_weight_decay)

    # -- one step -----------------------------------------------------------------------------

    def __call__(self, gradients: Any) -> tuple[bool, ...]:
        if self.use_locking:
            with self._lock:
                return self._step(gradients)
        return self._step(gradients)

    def _step(self, gradients: Any) -> tuple[bool, ...]:
        not_sparse = "AMSGrad has no sparse kernel" if self.use_amsgrad else (
            "use_offload has no sparse kernel" if self.use_offload else None)
        grad_scale = None if self.loss_scale == 1.0 else np.float32(1.0 / self.loss_scale)
        checked = check_gradients(self._backend, self.parameters, gradients, not_sparse, self._shapes_and_dtypes,
                                  self._layout.decay_flags, grad_scale, self._centralize_flags)
        check_step_dtypes(self.parameters, self._shapes_and_dtypes, checked, self.use_amsgrad, self.use_offload,
                          fused=self._sparse.path is SparsePath.FUSED)
        # Everything that can fail is read before any state changes: learning rates and dynamic decay
        # are read at the current global step (Optimizer.get_lr / get_weight_decay, before assignadd).
        step = self.global_step.asnumpy()
        lrs = {id(plan.lr): plan.lr(step) for plan in self._plans}
        decays = {id(plan): self._decay_value(plan.weight_decay, step) for plan in self._plans}
        # From here on only the backend's kernels can fail, and only for reasons no check can foresee
        # (out of memory, a device error, a backend bug): every input was validated above. The step
        # counters are restored if one does; the arrays are not (see _abandon_step).
        counters = [p.data.copy() for p in (self.global_step, self.beta1_power, self.beta2_power)]
        self.global_step.data[...] += 1
        beta1_power = np.float32(self.beta1_power.data * self.beta1)
        beta2_power = np.float32(self.beta2_power.data * self.beta2)
        self.beta1_power.data[...] = beta1_power
        self.beta2_power.data[...] = beta2_power
        self._sync_into_buckets()
        stepped = 0  # buckets whose kernels returned
        try:
            for plan in self._plans:
                hyper = StepHyper(
                    lrs[id(plan.lr)], self.beta1, self.beta2, self.eps, beta1_power, beta2_power,
                    decays[id(plan)], plan.centralize, grad_scale, self.use_nesterov, self.use_amsgrad,
                    self.use_locking, self.use_offload,
                )
                self._step_bucket(plan, [checked[i] for i in plan.members], hyper)
                stepped += 1
        except BaseException as exc:
            self._abandon_step(counters, stepped, exc)
            raise
        finally:
            self._sync_from_buckets()  # the Parameters always point at the arrays the backend holds
        return (True,) * len(self.parameters)

    def _abandon_step(self, counters: list[np.ndarray], stepped: int, exc: BaseException) -> None:
        """A kernel failed mid-step: put ``global_step`` and the beta powers back, and say what moved.

        Undoing the arrays would take a copy of every parameter and moment before each step (as much
        memory again, and the copy would cost about as much as the step itself), and in-place
        backends (NumPy, torch, TensorFlow, MindSpore) write a bucket's arrays as they go. So the
        buckets stepped before the failure keep their update, and the failing one may be partly
        updated; the exception's note names them. Input errors never get here: they are raised
        before anything is written.
        """
        for param, value in zip((self.global_step, self.beta1_power, self.beta2_power), counters, strict=True):
            param.data[...] = value
        names = [[self.parameters[i].name for i in plan.members] for plan in self._plans]
        done = [name for group in names[:stepped] for name in group]
        exc.add_note(
            f"msadam: this step of Adam failed inside the {self._backend.name!r} backend's kernel. global_step and "
            f"the beta powers were restored; parameters already updated: {done or 'none'}; possibly partly "
            f"updated: {names[stepped] if stepped < len(names) else 'none'} (with their moments). Load a "
            "state_dict() taken before the step to retry it."
        )

    @staticmethod
    def _decay_value(decay: float | DynamicWeightDecay | None, step: np.ndarray) -> np.float32 | None:
        if decay is None:
            return None
        return decay(step) if isinstance(decay, DynamicWeightDecay) else np.float32(decay)

    def _arrays(self) -> Iterator[tuple[list[Any], tuple[Parameter, ...], list[int]]]:
        for plan in self._plans:
            fields = [(plan.bucket.params, self.parameters), (plan.bucket.m, self.moment1),
                      (plan.bucket.v, self.moment2)]
            if plan.bucket.vhat is not None:
                fields.append((plan.bucket.vhat, self.vhat))
            for arrays, owners in fields:
                yield arrays, owners, plan.members

    def _sync_into_buckets(self) -> None:
        """Adopt arrays a user replaced (``Parameter.set_data`` on an immutable backend) since the last step."""
        for arrays, owners, members in self._arrays():
            current = [owners[i]._data for i in members]
            if not all(map(operator.is_, current, arrays)):
                arrays[:] = current

    def _sync_from_buckets(self) -> None:
        """Point the Parameters at the arrays a backend returned (immutable arrays are replaced)."""
        for arrays, owners, members in self._arrays():
            if all(map(operator.is_, (owners[i]._data for i in members), arrays)):
                continue  # updated in place: nothing to re-point
            for j, i in enumerate(members):
                owners[i]._data = arrays[j]

    def _step_bucket(self, plan: _BucketPlan, grads: list[Any], hyper: StepHyper) -> None:
        bucket = plan.bucket
        kinds = [type(g) for g in grads]
        if CheckedSparse not in kinds and Prescaled not in kinds:
            self._backend.dense_step(bucket, grads, hyper)
        else:
            dense = [j for j, kind in enumerate(kinds) if kind not in (CheckedSparse, Prescaled)]
            if dense:
                self._dense_subset(bucket, dense, [grads[j] for j in dense], hyper)
            prescaled = [j for j, kind in enumerate(kinds) if kind is Prescaled]
            if prescaled:
                self._dense_subset(bucket, prescaled, [grads[j].array for j in prescaled],
                                   dataclasses.replace(hyper, grad_scale=None))
            for j in (j for j, kind in enumerate(kinds) if kind is CheckedSparse):
                g = grads[j]
                sparse_grad = SparseGrad(g.indices, g.values, self.use_lazy, self._sparse.path,
                                         self._sparse.deduplicate)
                self._backend.sparse_step(bucket, j, sparse_grad, hyper)

    def _dense_subset(self, bucket: Bucket, members: list[int], grads: list[Any], hyper: StepHyper) -> None:
        """A dense step of some members of a bucket (the others got sparse gradients this step)."""
        part = Bucket([bucket.params[j] for j in members], [bucket.m[j] for j in members],
                      [bucket.v[j] for j in members],
                      [bucket.vhat[j] for j in members] if bucket.vhat is not None else None)
        self._backend.dense_step(part, grads, hyper)
        for k, j in enumerate(members):
            bucket.params[j], bucket.m[j], bucket.v[j] = part.params[k], part.m[k], part.v[k]
            if bucket.vhat is not None and part.vhat is not None:
                bucket.vhat[j] = part.vhat[k]

    # -- state --------------------------------------------------------------------------------

    def parameters_and_state(self) -> list[Parameter]:
        """Every Parameter the optimizer holds, in MindSpore's ``parameters_dict()`` order."""
        return state.ordered_parameters(self)

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{name: array}`` with MindSpore checkpoint names (copies, host NumPy arrays)."""
        return state.state_dict(self)

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> None:
        """Load a [`state_dict`][msadam.Adam.state_dict] (or a MindSpore checkpoint's dict); all-or-nothing."""
        state.load_state_dict(self, state_dict, strict)

    def __repr__(self) -> str:
        return (f"Adam(backend={self._backend.name!r}, parameters={len(self.parameters)}, "
                f"global_step={int(self.global_step.data[0])})")
