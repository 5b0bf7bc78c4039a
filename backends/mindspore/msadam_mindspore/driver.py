"""One real ``mindspore.nn.Adam`` driven step by step with msadam's numbers.

An :class:`AdamRunner` owns a ``mindspore.nn.Adam`` built over the Parameters of a bucket (or of
one parameter, for a sparse step) and makes MindSpore compute exactly the step msadam's core
describes in a :class:`~msadam.backend.StepHyper`. Line numbers below are those of the installed
MindSpore 2.10.0 (``mindspore/nn/optim/adam.py`` and ``mindspore/nn/optim/optimizer.py``).

**State.** ``Adam.__init__`` clones its moments (``adam.py`` 726-729:
``self.moment1 = self._parameters.clone(prefix="moment1", init='zeros')``, the same for ``moment2``
and, with AMSGrad, ``vhat``). Right after construction, before anything is compiled, the runner
replaces those three ``ParameterTuple`` attributes by the bucket's own Parameters, so
``Adam.construct`` (``adam.py`` 805-806, 820) hands the bucket's arrays to its kernels, which
update them in place: ``bucket.m[i]`` *is* MindSpore's ``moment1`` entry, and msadam's
``opt.state_dict()`` reads MindSpore's state with no copy in either direction.

**Learning rate.** Built with a fixed ``learning_rate`` (a Parameter,
``optimizer.py`` 536-537), which is overwritten with ``hyper.lr`` before every step: msadam's core
computes fixed, per-step and schedule learning rates (and ``_ConvertToCell``'s ``lr + 1.0 - 1.0``)
itself and checks them against MindSpore elsewhere. The per-step scalars (learning rate, beta
powers, a dynamic weight decay) are written in place by one compiled graph of ``ops.assign``
(:class:`_ScalarWrite`), one call a step: ``Parameter.set_data`` (``mindspore/common/parameter.py``
821-868) swaps the storage, so a graph compiled before would keep reading the old one, and
``Tensor.copy_`` in PyNative mode grows the process by about 650 bytes a call in MindSpore 2.10
(measured: 686 B/call over 20,000 calls, while the ``ops.assign`` graph stays flat), which the
soak (``benchmarks/soak.py``) caught as 4.5 KB a step.

**Kernels.** Chosen by ``Adam.__init__`` from the flags the runner passes (``adam.py`` 731-748):
``P.Adam(use_locking, use_nesterov)`` (dense, lazy or not: ``_run_opt_with_one_number`` /
``_run_lazy_opt_with_one_number``, lines 413-420 / 215-221), ``ApplyAdamWithAmsgradV2`` with
``hyper.use_amsgrad`` (lines 426-434; it has no Nesterov form), and ``P.AdamNoUpdateParam`` plus
``assign_add`` with ``hyper.use_offload`` (lines 439-444; ``construct`` then skips centralization,
line 808). The offload kernel's numbers differ from ``P.Adam``'s in the last bits (up to 3.4e-7
relative over the golden ``offload*`` trajectories), which is why the runner asks for it.

**Beta powers.** ``Adam.construct`` advances them itself (``adam.py`` 815-818:
``beta1_power = self.beta1_power * self.beta1``, float32). ``hyper`` carries the powers already
advanced; before each step the runner writes into MindSpore's ``beta1_power``/``beta2_power`` a
float32 ``p`` with ``float32(p * beta) == hyper.beta*_power`` (the previous power: remembered from
the last step, or recovered by a search of neighbouring float32 values after ``load_state_dict``),
and after the step checks that MindSpore's advanced values equal ``hyper``'s bit for bit.

**Loss scale and weight decay**, applied *by MindSpore* in its order (``adam.py`` 807-810:
``decay_weight`` -> ``gradients_centralization`` -> ``scale_grad``):

* ``loss_scale = 1 / float(hyper.grad_scale)``; MindSpore keeps
  ``reciprocal_scale = Tensor(1.0 / loss_scale, float32)`` (``optimizer.py`` 282), which rounds
  back to ``hyper.grad_scale`` exactly — checked after construction.
* a static decay: ``weight_decay = float(hyper.weight_decay) / loss_scale``; MindSpore multiplies
  by ``loss_scale`` in double precision (``optimizer.py`` 496) and stores ``Tensor(x, float32)``
  (``optimizer.py`` 259), which equals ``hyper.weight_decay`` exactly — checked after
  construction (the argument is nudged by one double ulp at a time if ever it does not).
* a decay that changes between steps (msadam's dynamic weight decay) makes the runner's owner
  build a runner in MindSpore's dynamic mode: a ``Cell`` weight decay, which MindSpore wraps in
  ``_WrappedWeightDecay`` (``optimizer.py`` 985-994: ``weight_decay(global_step) * loss_scale``,
  a float32 product). The Cell returns a Parameter set each step to a float32 ``x`` with
  ``float32(x * float32(loss_scale)) == hyper.weight_decay``.

Parameters are always passed as one group (``[{"params": ..., "weight_decay": ...,
"grad_centralization": ...}]``): grouped, MindSpore decays every parameter of a group whose decay
is positive or a Cell (``optimizer.py`` 251-252) and centralizes only grouped gradients
(``optimizer.py`` 434-435) — msadam's core has already applied its own name filter (``beta`` /
``gamma``, ``optimizer.py`` 267-268) when it put the parameter in a decaying bucket.

**Sparse paths** (:class:`~msadam.backend.SparsePath`), chosen as MindSpore chooses them:

* ``COMPOSITE`` without de-duplication: nothing is set. ``Adam.__init__`` forces
  ``self._is_device = True`` (``adam.py`` 736 / 742), so ``_run_opt_with_sparse`` /
  ``_run_lazy_opt_with_sparse`` take their Python scatter-add branch (``adam.py`` 369-405 /
  154-176); ``opt.unique = False`` keeps
  ``_grad_sparse_indices_deduplicate`` (``optimizer.py`` 485-489) from merging indices on a
  GPU/Ascend device.
* ``FUSED``: ``opt.target = 'CPU'`` (``adam.py`` 822-828 -> ``_set_base_target``,
  ``optimizer.py`` 482: ``_is_device = False``): ``FusedSparseAdam`` / ``FusedSparseLazyAdam``
  (``adam.py`` 747 / 738, called at lines 366-368 / 151-153).
* ``COMPOSITE`` with de-duplication (a 'GPU'/'Ascend' target with ``opt.unique``): on such a
  device, the public ``opt.target``; on a CPU machine ``_set_base_target`` refuses those targets
  (``optimizer.py`` 470-472), so the runner sets exactly the two attributes it would have set,
  ``_target`` and ``_is_device = True``, and MindSpore's own ``P.Unique`` + ``UnsortedSegmentSum``
  (``optimizer.py`` 934-941) runs unchanged.

A sparse step is a small Cell whose ``construct`` (compiled as a graph with ``@jit``: PyNative
rejects a ``RowTensor`` argument) builds ``RowTensorInner(indices, values, dense_shape)`` and
calls the optimizer, as the golden recorder (``tests/golden/record_trajectories.py``, now
``msadam.parity.oracle``) does. The recorder switches the whole context to ``GRAPH_MODE``; a
``@jit`` construct compiles the same graph without touching the user's context, and reproduces the
recorded sparse trajectories bit for bit (in either context mode).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from msadam.backend import SparseGrad, SparsePath, StepHyper
from msadam_mindspore.runtime import import_mindspore

ms = import_mindspore()

from mindspore import Parameter, ParameterTuple, Tensor, jit, nn, ops  # noqa: E402
from mindspore.common.sparse_tensor import RowTensorInner  # noqa: E402

__all__ = ["DYNAMIC", "AdamRunner", "Config", "Runners", "factor_for", "fresh_name", "static_decay_argument"]

Array = Any

DYNAMIC = "dynamic"  # Config.decay of a runner whose weight decay changes between steps

_names = itertools.count()


def fresh_name(stem: str) -> str:
    """A process-unique MindSpore Parameter name (no two optimizers or graphs ever share one)."""
    return f"msadam{next(_names)}.{stem}"


@dataclass(frozen=True)
class Config:
    """What one ``mindspore.nn.Adam`` is constructed with; anything else is set per step."""

    beta1: float
    beta2: float
    eps: float
    use_nesterov: bool
    use_amsgrad: bool
    use_locking: bool
    centralize: bool
    grad_scale: float | None
    use_offload: bool = False
    decay: float | str | None = None  # None, the static (loss-scaled) float32 value, or DYNAMIC
    path: SparsePath | None = None  # None: a dense runner
    lazy: bool = False
    deduplicate: bool = False

    @classmethod
    def of(cls, hyper: StepHyper, sparse: SparseGrad | None = None) -> Config:
        """The configuration ``hyper`` asks for (``decay`` left to :class:`Runners`)."""
        return cls(
            float(hyper.beta1), float(hyper.beta2), float(hyper.eps), bool(hyper.use_nesterov),
            bool(hyper.use_amsgrad), bool(hyper.use_locking), bool(hyper.centralize),
            None if hyper.grad_scale is None else float(hyper.grad_scale),
            use_offload=bool(getattr(hyper, "use_offload", False)),  # an msadam without the field: False
            path=None if sparse is None else sparse.path,
            lazy=False if sparse is None else bool(sparse.lazy),
            deduplicate=False if sparse is None else bool(sparse.deduplicate),
        )

    @property
    def loss_scale(self) -> float:
        """``nn.Adam``'s ``loss_scale``: ``1 / grad_scale`` (``1.0`` without one)."""
        return 1.0 if self.grad_scale is None else 1.0 / self.grad_scale


def _float32_neighbours(x: np.float32, reach: int = 4) -> Iterator[np.float32]:
    """``x``, then the float32 values 1, 2, ..., ``reach`` ulps above and below it."""
    yield x
    up = down = x
    for _ in range(reach):
        up = np.nextafter(up, np.float32(np.inf))
        down = np.nextafter(down, np.float32(-np.inf))
        yield up
        yield down


def factor_for(product: np.float32, multiplier: np.float32) -> np.float32 | None:
    """A float32 ``x`` with ``float32(x * multiplier) == product`` (MindSpore's float32 ``Mul``), or ``None``."""
    product, multiplier = np.float32(product), np.float32(multiplier)
    if multiplier == 1:
        return product
    guess = np.float32(np.float64(product) / np.float64(multiplier))
    for x in _float32_neighbours(guess):
        if np.float32(x * multiplier) == product:
            return x
    return None


def static_decay_argument(value: np.float32, loss_scale: float) -> float:
    """The ``weight_decay`` argument with ``float32(weight_decay * loss_scale) == value``.

    ``Optimizer._preprocess_weight_decay`` multiplies by ``loss_scale`` in double precision
    (``optimizer.py`` 496) and the group's decay is kept as ``Tensor(x, float32)`` (line 259).
    """
    value = np.float32(value)
    weight_decay = float(value) / loss_scale
    for _ in range(16):
        got = np.float32(weight_decay * loss_scale)
        if got == value:
            return weight_decay
        weight_decay = math.nextafter(weight_decay, math.inf if got < value else -math.inf)
    raise RuntimeError(f"No weight_decay argument makes MindSpore store {value!r} with loss_scale {loss_scale!r}.")


class _DecayOf(nn.Cell):
    """A dynamic weight decay (a Cell of the step, ``optimizer.py`` 497-499) returning a Parameter we set."""

    def __init__(self, value: Parameter) -> None:
        super().__init__(auto_prefix=False)
        self.value = value

    def construct(self, global_step: Any) -> Any:
        return self.value


class _SparseCall(nn.Cell):
    """``opt((RowTensorInner(indices, values, dense_shape),))`` as a graph (PyNative rejects a RowTensor)."""

    def __init__(self, opt: nn.Adam, dense_shape: tuple[int, ...]) -> None:
        super().__init__(auto_prefix=False)  # keep the Parameters' names
        self.opt = opt
        self.dense_shape = dense_shape

    @jit
    def construct(self, indices: Any, values: Any) -> Any:
        return self.opt((RowTensorInner(indices, values, self.dense_shape),))


class _ScalarWrite(nn.Cell):
    """``ops.assign(targets[i], values[i])`` for each 0-d Parameter of ``targets``, as one compiled graph.

    In place (a compiled optimizer keeps reading the same storage) and flat in memory, unlike
    PyNative ``Tensor.copy_`` (module docstring).
    """

    def __init__(self, targets: Sequence[Parameter]) -> None:
        super().__init__(auto_prefix=False)  # keep the Parameters' names
        self.targets = ParameterTuple(list(targets))

    @jit
    def construct(self, values: Any) -> Any:
        for i in range(len(self.targets)):
            ops.assign(self.targets[i], values[i])
        return values


def _scalar(x: Any) -> Tensor:
    return Tensor(np.asarray(x, np.float32))


def _read(param: Any) -> np.float32:
    return np.float32(np.asarray(param.asnumpy()).reshape(()))


class AdamRunner:
    """A ``mindspore.nn.Adam`` over ``params`` whose moment Parameters are ``m``/``v``/``vhat`` (see module)."""

    def __init__(self, params: Sequence[Parameter], m: Sequence[Parameter], v: Sequence[Parameter],
                 vhat: Sequence[Parameter] | None, cfg: Config) -> None:
        self.arrays = (*params, *m, *v, *(vhat or ()))
        self.cfg = cfg
        loss_scale = cfg.loss_scale
        group: dict[str, Any] = {"params": list(params), "grad_centralization": cfg.centralize}
        self.decay_value: Parameter | None = None
        if cfg.decay == DYNAMIC:
            self.decay_value = Parameter(_scalar(0.0), name=fresh_name("weight_decay"), requires_grad=False)
            group["weight_decay"] = _DecayOf(self.decay_value)
        elif cfg.decay is not None:
            group["weight_decay"] = static_decay_argument(np.float32(cfg.decay), loss_scale)
        kwargs = {"use_lazy": True} if cfg.lazy else {"use_offload": True} if cfg.use_offload else {}
        opt = nn.Adam([group], learning_rate=0.0, beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps,
                      use_locking=cfg.use_locking, use_nesterov=cfg.use_nesterov, loss_scale=loss_scale,
                      use_amsgrad=cfg.use_amsgrad, **kwargs)
        # The bucket's state becomes the optimizer's (adam.py 726-729), before anything is compiled.
        opt.moment1 = ParameterTuple(list(m))
        opt.moment2 = ParameterTuple(list(v))
        if cfg.use_amsgrad:
            if vhat is None:
                raise ValueError("An AMSGrad step needs the bucket's vhat.")
            opt.vhat = ParameterTuple(list(vhat))
        if cfg.path is not None:
            self._set_sparse_path(opt, cfg)
        self.opt = opt
        self.call = _SparseCall(opt, tuple(int(d) for d in params[0].shape)) if cfg.path is not None else None
        scalars = [opt.learning_rate, opt.beta1_power, opt.beta2_power]
        self.write = _ScalarWrite(scalars if self.decay_value is None else [*scalars, self.decay_value])
        self.decay_scale = np.float32(1.0)
        self._check_construction(len(params))
        self.previous: tuple[np.float32, np.float32] | None = None  # MindSpore's powers after the last step

    @staticmethod
    def _set_sparse_path(opt: nn.Adam, cfg: Config) -> None:
        if cfg.path is SparsePath.FUSED:
            if cfg.deduplicate:
                raise ValueError("MindSpore's fused sparse kernels run only with the 'CPU' target, which never "
                                 "de-duplicates indices (optimizer.py 487).")
            opt.target = "CPU"  # adam.py 822-828 -> optimizer.py 482: _is_device = False
        elif cfg.deduplicate:
            device = ms.get_context("device_target")
            if device in ("GPU", "Ascend"):
                opt.target = device
            else:  # _set_base_target refuses these on a CPU machine (optimizer.py 470-472): set what it sets
                opt._target = "GPU"
                opt._is_device = True
        opt.unique = cfg.deduplicate

    def _check_construction(self, n: int) -> None:
        """MindSpore holds exactly the scalars msadam asked for (module docstring), or this raises."""
        opt, cfg = self.opt, self.cfg
        problems = []
        if bool(opt.need_scale) != (cfg.grad_scale is not None):
            problems.append(f"need_scale={opt.need_scale}")
        if cfg.grad_scale is not None and _read(opt.reciprocal_scale) != np.float32(cfg.grad_scale):
            problems.append(f"reciprocal_scale={_read(opt.reciprocal_scale)!r} != {np.float32(cfg.grad_scale)!r}")
        if cfg.decay is None:
            if opt.exec_weight_decay:
                problems.append("weight decay is on")
        else:
            if tuple(opt.decay_flags) != (True,) * n:
                problems.append(f"decay_flags={opt.decay_flags}")
            if cfg.decay == DYNAMIC:
                self.decay_scale = _read(opt.weight_decay[0].loss_scale)  # _WrappedWeightDecay (optimizer.py 991)
            elif _read(opt.weight_decay[0]) != np.float32(cfg.decay):
                problems.append(f"weight_decay={_read(opt.weight_decay[0])!r} != {np.float32(cfg.decay)!r}")
        if bool(opt.use_offload) != cfg.use_offload or bool(opt.use_lazy) != cfg.lazy:
            problems.append(f"use_offload={opt.use_offload} use_lazy={opt.use_lazy}")
        if tuple(opt.grad_centralization_flags) != (cfg.centralize,) * n:
            problems.append(f"grad_centralization_flags={opt.grad_centralization_flags}")
        if cfg.path is not None:
            if bool(opt._is_device) != (cfg.path is SparsePath.COMPOSITE):
                problems.append(f"_is_device={opt._is_device}")
            if (opt._target != "CPU" and opt.unique) != cfg.deduplicate:
                problems.append(f"target={opt._target} unique={opt.unique}")
        if problems:
            raise RuntimeError(f"mindspore.nn.Adam was not configured as msadam asked ({cfg}): {'; '.join(problems)}")

    def holds(self, arrays: Sequence[Array]) -> bool:
        """Whether this runner steps exactly these arrays (the same objects)."""
        return len(arrays) == len(self.arrays) and all(a is b for a, b in zip(arrays, self.arrays, strict=True))

    def _previous_power(self, power: np.float32, beta: np.float32, last: np.float32 | None) -> np.float32:
        if last is not None and np.float32(last * beta) == power:
            return last
        found = np.float32(1.0) if power == beta else factor_for(power, beta)
        if found is None:
            raise ValueError(f"No float32 beta power p gives float32(p * {beta!r}) == {power!r}, so MindSpore's "
                             "optimizer cannot reach this state (was it loaded from a hand-made state dict?).")
        return found

    def _prepare(self, hyper: StepHyper) -> None:
        """Write this step's learning rate, previous beta powers and dynamic decay into MindSpore (one call)."""
        last1, last2 = self.previous if self.previous is not None else (None, None)
        values = [np.float32(hyper.lr), self._previous_power(hyper.beta1_power, hyper.beta1, last1),
                  self._previous_power(hyper.beta2_power, hyper.beta2, last2)]
        if self.decay_value is not None:
            x = factor_for(np.float32(hyper.weight_decay), self.decay_scale)
            if x is None:
                raise ValueError(f"MindSpore's dynamic weight decay (a float32 product with {self.decay_scale!r}) "
                                 f"cannot equal {hyper.weight_decay!r}.")
            values.append(x)
        self.write(Tensor(np.asarray(values, np.float32)))  # computed first: a refusal writes nothing

    def _finish(self, hyper: StepHyper) -> None:
        powers = (_read(self.opt.beta1_power), _read(self.opt.beta2_power))
        if powers != (hyper.beta1_power, hyper.beta2_power):
            self.previous = None
            raise RuntimeError(f"MindSpore advanced its beta powers to {powers}, msadam to "
                               f"{(hyper.beta1_power, hyper.beta2_power)}.")
        self.previous = powers

    def dense(self, grads: Sequence[Array], hyper: StepHyper) -> None:
        """One ``opt(gradients)`` with dense gradients (PyNative; ``Adam.construct`` is ``@jit``, adam.py 802)."""
        self._prepare(hyper)
        self.opt(tuple(grads))
        self._finish(hyper)

    def sparse(self, indices: Array, values: Array, hyper: StepHyper) -> None:
        """One ``opt((RowTensorInner(indices, values, shape),))`` of the runner's single parameter."""
        assert self.call is not None
        self._prepare(hyper)
        self.call(indices, values)
        self._finish(hyper)


class Runners:
    """The runners of one bucket (or of one set of arrays), by kind and configuration.

    A kind is ``"dense"`` or ``("sparse", index)``. Per kind the weight decay starts *static* (its
    first value); the first step with another value switches that kind to :data:`DYNAMIC` for good.
    """

    def __init__(self) -> None:
        self.by_config: dict[tuple[Any, Config], AdamRunner] = {}
        self.decay_modes: dict[tuple[Any, Config], float | str] = {}

    def get(self, kind: Any, arrays: tuple[Sequence[Array], Sequence[Array], Sequence[Array], Sequence[Array] | None],
            hyper: StepHyper, sparse: SparseGrad | None = None) -> AdamRunner:
        base = Config.of(hyper, sparse)
        cfg = base
        if hyper.weight_decay is not None:
            value = float(np.float32(hyper.weight_decay))
            mode = self.decay_modes.setdefault((kind, base), value)
            if mode != DYNAMIC and mode != value:
                self.by_config.pop((kind, replace(base, decay=mode)), None)
                mode = self.decay_modes[(kind, base)] = DYNAMIC
            cfg = replace(base, decay=mode)
        params, m, v, vhat = arrays
        flat = (*params, *m, *v, *(vhat if cfg.use_amsgrad and vhat is not None else ()))
        runner = self.by_config.get((kind, cfg))
        if runner is None or not runner.holds(flat):
            runner = AdamRunner(params, m, v, vhat if cfg.use_amsgrad else None, cfg)
            self.by_config[(kind, cfg)] = runner
        return runner
