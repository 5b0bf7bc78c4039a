"""The MindSpore backend: every step of ``msadam.Adam`` is a step of a real ``mindspore.nn.Adam``.

Native arrays are ``mindspore.Tensor`` (a ``mindspore.Parameter`` is one). :meth:`new_bucket`
re-homes a bucket's parameters into fresh, uniquely named ``mindspore.Parameter`` copies and
allocates the moments (and ``vhat``) as Parameters too; :mod:`msadam_mindspore.driver` builds, on
the first step, a ``mindspore.nn.Adam`` over those Parameters whose ``moment1``/``moment2``/``vhat``
*are* the bucket's arrays, and runs it (dense: ``opt(grads)``; sparse: a graph calling it with a
``RowTensorInner``). Everything is updated in place (``Tensor.copy_``; ``Parameter.set_data``
would swap the storage and detach the compiled graphs), so the arrays msadam's Parameters point at
never change identity.

Runners (one ``nn.Adam`` each) are cached per bucket, in ``bucket.cache``; a *sub-bucket* (the
dense members of a bucket whose other members got sparse gradients this step) comes with an empty
cache, so its runners live in a small least-recently-used table keyed by the identity of its arrays.

Limitations (see also the package README):

* Gradient centralization runs MindSpore's call site with an emulated kernel off Ascend
  (:mod:`msadam_mindspore.runtime`).
* Learning rates, the decision which parameters decay, gradient checks (and the cast of a
  gradient of another dtype) are the core's: MindSpore receives the core's gradients and scalars.
* ``mindspore.nn.Adam``'s kernels take float16 and float32 only (``P.Adam`` infers
  ``{Float16, Float32}``); :meth:`MindSporeBackend.new_bucket` refuses other dtypes up front
  (a ``TypeError`` when ``msadam.Adam`` is built) rather than failing in the middle of a step.
* ``tests/golden/record_trajectories.py`` found that graph-mode runs could leak state between
  scenarios within one process. Here every MindSpore Parameter has a process-unique name and
  every optimizer its own graphs, and all the golden trajectories (55 when this was written:
  dense, sparse, random) replay bit for bit in a single process; msadam's tests nevertheless run
  each sparse scenario on this backend in a process of its own.
* An error raised by MindSpore itself in the middle of a step (none is expected once msadam's
  checks have passed) leaves msadam's ``global_step`` and beta powers advanced: the core moves them
  before it calls a backend.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from msadam.backend import Bucket, SparseGrad, StepHyper
from msadam.tensor import RowTensor
from msadam_mindspore.driver import Runners, fresh_name
from msadam_mindspore.runtime import import_mindspore

ms = import_mindspore()

from mindspore import Parameter, Tensor  # noqa: E402
from mindspore.common.sparse_tensor import RowTensor as MsRowTensor  # noqa: E402
from mindspore.common.sparse_tensor import RowTensorInner  # noqa: E402

__all__ = ["MindSporeBackend", "row_tensor"]

Array = Any

_CACHE_KEY = "msadam_mindspore.runners"
_LOOSE_RUNNERS = 32  # sub-buckets whose runners are kept (least recently used first out)
_buckets = itertools.count()


def row_tensor(grad: object) -> RowTensor | None:
    """A MindSpore ``RowTensor`` / ``RowTensorInner`` as a :class:`msadam.RowTensor` (else ``None``).

    Indices and values stay MindSpore tensors; repeated indices are kept (MindSpore's sparse paths
    depend on them).
    """
    if isinstance(grad, MsRowTensor | RowTensorInner):
        return RowTensor(grad.indices, grad.values, tuple(int(d) for d in grad.dense_shape))
    return None


def _numpy_dtype(dtype: Any) -> np.dtype:
    try:
        return np.dtype(ms.dtype_to_nptype(dtype))
    except Exception:
        if str(dtype).lower() == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        raise


class MindSporeBackend:
    """msadam's Backend protocol on ``mindspore.Tensor``s, stepping a real ``mindspore.nn.Adam``."""

    name = "mindspore"

    def __init__(self) -> None:
        self._lock = threading.RLock()  # MindSpore's PyNative executor is not ours to run concurrently
        self._loose: OrderedDict[tuple[int, ...], tuple[tuple[Array, ...], Runners]] = OrderedDict()
        self._dtypes: dict[Any, np.dtype] = {}

    def version(self) -> str:
        return str(ms.__version__)

    def devices(self) -> list[str]:
        target = str(ms.get_context("device_target"))
        if target == "CPU":
            return ["cpu"]
        return [f"{target.lower()}:{ms.get_context('device_id')}"]

    def owns(self, array: object) -> bool:
        return isinstance(array, Tensor)

    def from_numpy(self, array: np.ndarray) -> Array:
        return Tensor(np.array(array, copy=True, order="C"))

    def to_numpy(self, array: Array) -> np.ndarray:
        return np.asarray(array.asnumpy())

    def shape(self, array: Array) -> tuple[int, ...]:
        return tuple(int(d) for d in array.shape)

    def dtype(self, array: Array) -> np.dtype:
        found = self._dtypes.get(array.dtype)
        if found is None:
            found = self._dtypes[array.dtype] = _numpy_dtype(array.dtype)
        return found

    def cast(self, array: Array, dtype: np.dtype) -> Array:
        dtype = np.dtype(dtype)
        if self.dtype(array) == dtype:
            return array
        return array.astype(ms.pytype_to_dtype(dtype))

    def assign(self, target: Array, value: Array) -> Array:
        if not isinstance(value, Tensor):
            value = self.from_numpy(np.asarray(value))
        with self._lock:
            target.copy_(value)  # in place: compiled graphs holding `target` see the new value
        return target

    def synchronize(self, arrays: Sequence[Array]) -> None:
        """Wait for MindSpore's queued work (its device streams)."""
        ms.runtime.synchronize()

    def new_bucket(self, params: Sequence[Array], use_amsgrad: bool) -> Bucket:
        bucket_id = next(_buckets)
        homes, m, v, vhat = [], [], [], []
        for j, p in enumerate(params):
            if self.dtype(p).name == "bfloat16":
                # MindSpore 2.10 (built against NumPy 1) cannot make a bfloat16 Parameter from NumPy 2 data
                # ("The Numpy bfloat16 data type is not supported now"). Any other dtype is held, and the
                # core refuses the ones MindSpore's kernels do at the first step (msadam.kernel_dtypes).
                raise TypeError("For 'Adam' on the mindspore backend, bfloat16 parameters cannot be held: "
                                "MindSpore 2.10 cannot make a bfloat16 Parameter from NumPy 2 data (and its "
                                "Adam refuses bfloat16 at the first step anyway).")
            host = np.array(self.to_numpy(p), copy=True)
            stem = f"b{bucket_id}.p{j}"
            homes.append(Parameter(Tensor(host), name=fresh_name(stem)))
            m.append(Parameter(Tensor(np.zeros_like(host)), name=fresh_name(f"moment1.{stem}")))
            v.append(Parameter(Tensor(np.zeros_like(host)), name=fresh_name(f"moment2.{stem}")))
            if use_amsgrad:
                vhat.append(Parameter(Tensor(np.zeros_like(host)), name=fresh_name(f"vhat.{stem}")))
        return Bucket(homes, m, v, vhat if use_amsgrad else None, {_CACHE_KEY: Runners()})

    def _runners(self, bucket: Bucket, arrays: tuple[Array, ...]) -> Runners:
        """The bucket's runners; for a bucket new_bucket did not make (a sub-bucket), the LRU table's."""
        own = bucket.cache.get(_CACHE_KEY)
        if isinstance(own, Runners):
            return own
        key = tuple(id(a) for a in arrays)
        entry = self._loose.get(key)
        if entry is None or not all(a is b for a, b in zip(entry[0], arrays, strict=True)):
            entry = (arrays, Runners())
        self._loose[key] = entry
        self._loose.move_to_end(key)
        while len(self._loose) > _LOOSE_RUNNERS:
            self._loose.popitem(last=False)
        return entry[1]

    def _params(self, arrays: Sequence[Array]) -> list[Parameter]:
        for a in arrays:
            if not isinstance(a, Parameter):
                raise TypeError(f"The MindSpore backend steps mindspore.Parameter arrays (from new_bucket), "
                                f"got {type(a).__name__}.")
        return list(arrays)

    def dense_step(self, bucket: Bucket, grads: Sequence[Array], hyper: StepHyper) -> None:
        if not bucket.params:
            return
        params, m, v = self._params(bucket.params), self._params(bucket.m), self._params(bucket.v)
        vhat = self._params(bucket.vhat) if bucket.vhat is not None else None
        grads = [g if isinstance(g, Tensor) else self.from_numpy(np.asarray(g)) for g in grads]
        with self._lock:
            runners = self._runners(bucket, (*params, *m, *v, *(vhat or ())))
            runners.get("dense", (params, m, v, vhat), hyper).dense(grads, hyper)

    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        params = self._params([bucket.params[index], bucket.m[index], bucket.v[index]])
        indices = grad.indices if isinstance(grad.indices, Tensor) else self.from_numpy(np.asarray(grad.indices))
        if indices.dtype != ms.int32:  # RowTensor indices are int32 in MindSpore's sparse kernels
            indices = indices.astype(ms.int32)
        values = grad.values if isinstance(grad.values, Tensor) else self.from_numpy(np.asarray(grad.values))
        with self._lock:
            runners = self._runners(bucket, tuple(params))
            kind = ("sparse", index)
            runner = runners.get(kind, ([params[0]], [params[1]], [params[2]], None), hyper, grad)
            runner.sparse(indices, values, hyper)

    def as_row_tensor(self, grad: object) -> RowTensor | None:
        """MindSpore's own ``RowTensor`` / ``RowTensorInner`` as a :class:`msadam.RowTensor` (:func:`row_tensor`)."""
        return row_tensor(grad)

    def __repr__(self) -> str:
        return f"MindSporeBackend(mindspore={ms.__version__}, device_target={ms.get_context('device_target')})"
