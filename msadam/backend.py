"""The backend interface: what an array framework must provide to run MindSpore's Adam.

The core (validation, grouping, learning rates, step counting, beta powers, sparse-path choice)
never touches a framework. It hands a backend *buckets* of parameters that share their
hyper-parameters and a :class:`StepHyper` per step; the backend owns arrays and kernels.

A third-party backend implements :class:`Backend` and registers a :class:`BackendSpec` through
the ``msadam_backends`` hook (see ``msadam/hookspecs.py`` and docs/backend-authors.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "BackendSpec", "Bucket", "SparseGrad", "SparsePath", "StepHyper"]

Array = Any  # a native array of one backend


@dataclass(frozen=True)
class StepHyper:
    """Everything a kernel needs for one step of one bucket, as float32 host scalars.

    With ``g`` the gradient and ``w`` the parameter, one step is (MindSpore's order):

    - ``g += weight_decay * w`` (when ``weight_decay`` is not None; already multiplied by the loss scale)
    - ``g = g - mean(g, axes 1..ndim-1)`` (when ``centralize`` and ``ndim >= 2`` and ``shape[1] % 16 == 0``)
    - ``g *= grad_scale`` (when ``grad_scale`` is not None: ``1 / loss_scale``)
    - ``lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)``
    - ``m = beta1*m + (1-beta1)*g``; ``v = beta2*v + (1-beta2)*g*g``
    - amsgrad: ``vhat = max(vhat, v)``, the denominator uses ``vhat`` (and Nesterov is ignored)
    - nesterov: ``w -= lr_t * (beta1*m + (1-beta1)*g) / (sqrt(v) + eps)``; else ``w -= lr_t * m / (sqrt(v) + eps)``
    """

    lr: np.float32
    beta1: np.float32
    beta2: np.float32
    eps: np.float32
    beta1_power: np.float32  # already advanced for this step
    beta2_power: np.float32
    weight_decay: np.float32 | None
    centralize: bool
    grad_scale: np.float32 | None
    use_nesterov: bool
    use_amsgrad: bool
    use_locking: bool = False
    # MindSpore's offload kernel (AdamNoUpdateParam); advisory: its numbers are the dense kernel's
    # within float32 rounding, and only a backend that runs MindSpore itself reads it.
    use_offload: bool = False

    @property
    def lr_t(self) -> np.float32:
        """The bias-corrected step size ``lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` (float32)."""
        one = np.float32(1.0)
        return np.float32(self.lr * np.sqrt(one - self.beta2_power) / (one - self.beta1_power))

    @property
    def lr_t64(self) -> np.float64:
        """``lr * sqrt(1 - beta2_power) / (1 - beta1_power)`` in double from the float32 values: the step size
        of MindSpore's float64 ``ApplyAdamWithAmsgradV2`` kernel, which widens its scalars first."""
        one = np.float64(1.0)
        lr, b1p, b2p = np.float64(self.lr), np.float64(self.beta1_power), np.float64(self.beta2_power)
        return np.float64(lr * np.sqrt(one - b2p) / (one - b1p))


class SparsePath(enum.Enum):
    """MindSpore's three code paths for a row-sparse gradient (``adam.py``, ``optimizer.py``).

    ``COMPOSITE``: the Python scatter-add composite (``_run_opt_with_sparse`` /
    ``_run_lazy_opt_with_sparse`` with ``target`` true). Repeated indices are *not* merged:
    ``v`` adds per-occurrence squares, lazy scatter-updates ``m``/``v`` (the last occurrence wins).

    ``FUSED``: the host kernels ``FusedSparseAdam`` / ``FusedSparseLazyAdam``; repeated indices
    are merged (values summed) before the dense (all rows) or lazy (touched rows) formula.
    """

    COMPOSITE = "composite"
    FUSED = "fused"


@dataclass(frozen=True)
class SparseGrad:
    """A validated row-sparse gradient: ``indices`` (int, 1-D) and ``values`` (rows), native arrays."""

    indices: Array
    values: Array
    lazy: bool
    path: SparsePath
    deduplicate: bool = False  # merge repeated indices first ('GPU'/'Ascend' target with opt.unique)


@dataclass
class Bucket:
    """Parameters sharing hyper-parameters, with their optimizer state, as native arrays.

    ``params``, ``m``, ``v`` (and ``vhat`` with AMSGrad) are parallel lists. A backend may
    replace their elements (immutable arrays) or update them in place. ``cache`` is the backend's
    own (e.g. flat buffers the lists are views of).
    """

    params: list[Array]
    m: list[Array]
    v: list[Array]
    vhat: list[Array] | None
    cache: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What msadam needs from an array framework. Small on purpose; see docs/backend-authors.md.

    Optional (looked up with ``getattr``, so not part of the protocol check): ``as_row_tensor(grad)``
    returns the framework's own row-sparse gradient type (``tf.IndexedSlices``, a torch sparse COO
    tensor) as a [`msadam.RowTensor`][msadam.RowTensor], or ``None`` for anything else, so ``opt(grads)`` takes it
    along MindSpore's sparse paths as it is. ``synchronize(arrays)`` returns once the pending
    (asynchronous) work writing these native arrays has finished, cheaply (no copy to the host);
    ``msadam bench`` uses it to time whole steps, and without it reads the last array with
    ``to_numpy``. ``allocator_memory(reset)`` returns ``(bytes in use, peak bytes in use)`` of the
    framework's allocator for new arrays, the peak counted since the last call with ``reset=True``
    (which restarts it), or ``None`` when the framework keeps no such statistics (``msadam bench``
    then relies on the process's resident memory alone). ``adopt(array)`` returns the native array
    a [`msadam.Parameter`][msadam.Parameter] built from ``array`` should hold, for arrays the backend owns through
    a wrapper (a Keras 3 variable is the ``tf.Variable`` it wraps, updated in place); without it the
    Parameter holds ``array`` itself.
    """

    name: str

    def version(self) -> str:
        """The framework's version string."""
        ...

    def devices(self) -> list[str]:
        """Devices arrays can live on (for ``msadam backends``)."""
        ...

    def owns(self, array: object) -> bool:
        """Whether ``array`` is a native array of this backend."""
        ...

    def from_numpy(self, array: np.ndarray) -> Array:
        """A new native array (a copy) with the value and dtype of ``array``."""
        ...

    def to_numpy(self, array: Array) -> np.ndarray:
        """The value of a native array as NumPy (may share memory; callers copy when they keep it)."""
        ...

    def shape(self, array: Array) -> tuple[int, ...]:
        """The array's shape, as a tuple of ints."""
        ...

    def dtype(self, array: Array) -> np.dtype:
        """The array's dtype, as a NumPy dtype (bfloat16 may be reported by name via ml_dtypes)."""
        ...

    def cast(self, array: Array, dtype: np.dtype) -> Array:
        """``array`` converted to ``dtype`` (the same object when it already has it)."""
        ...

    def assign(self, target: Array, value: Array) -> Array:
        """Give ``target`` the value of ``value`` (same shape and dtype); returns the array to keep.

        Mutable arrays are written in place (so views into a bucket's buffers stay valid);
        immutable ones return ``value``.
        """
        ...

    def new_bucket(self, params: Sequence[Array], use_amsgrad: bool) -> Bucket:
        """Allocate zeroed state for ``params``; may re-home ``params`` (e.g. into a flat buffer)."""
        ...

    def dense_step(self, bucket: Bucket, grads: Sequence[Array], hyper: StepHyper) -> None:
        """One dense step of every parameter of ``bucket`` (``grads`` parallel to ``bucket.params``)."""
        ...

    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        """One row-sparse step of ``bucket.params[index]`` along ``grad.path`` (see
        [`SparsePath`][msadam.backend.SparsePath])."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """How a plugin announces a backend, without importing its framework.

    ``load`` imports the framework and returns the [`Backend`][msadam.backend.Backend]; it is called only when the
    backend is first used. ``array_modules`` are top-level module names whose array types this
    backend owns (``("torch",)``), so a native array's backend is found without importing anything.
    """

    name: str
    load: Callable[[], Backend]
    array_modules: tuple[str, ...] = ()
    distribution: str | None = None
    priority: int = field(default=100)
