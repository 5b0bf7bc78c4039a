"""The NumPy reference backend, registered through the same hook as any third-party backend.

A bucket's parameters, moments and (AMSGrad) ``vhat`` live in one flat buffer each, and the lists
in :class:`~msadam.backend.Bucket` are views into them, so one dense step is a handful of
whole-buffer NumPy operations whatever the number of tensors. If a parameter's array was replaced
since (``Parameter.set_data``), the step falls back to one kernel call per tensor.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from msadam.backend import Backend, BackendSpec, Bucket, SparseGrad, SparsePath, StepHyper
from msadam.backends import numpy_kernels as kernels
from msadam.hookspecs import hookimpl

__all__ = ["NumpyBackend", "msadam_backends"]


def _flat_views(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    views, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        views.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return views


class NumpyBackend:
    """MindSpore's Adam on NumPy arrays: the reference implementation."""

    name = "numpy"

    def version(self) -> str:
        return np.__version__

    def devices(self) -> list[str]:
        return ["cpu"]

    def owns(self, array: object) -> bool:
        return isinstance(array, np.ndarray)

    def from_numpy(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def to_numpy(self, array: np.ndarray) -> np.ndarray:
        return array

    def synchronize(self, arrays: Sequence[np.ndarray]) -> None:
        """Nothing to wait for: NumPy computes synchronously."""

    def shape(self, array: np.ndarray) -> tuple[int, ...]:
        return tuple(array.shape)

    def dtype(self, array: np.ndarray) -> np.dtype:
        return array.dtype

    def cast(self, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return array if array.dtype == dtype else array.astype(dtype)

    def new_bucket(self, params: Sequence[np.ndarray], use_amsgrad: bool) -> Bucket:
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1:
            raise ValueError(f"A bucket holds one dtype, got {sorted(map(str, dtypes))}.")
        shapes = [p.shape for p in params]
        flat_params = np.concatenate([p.reshape(-1) for p in params]) if params else np.zeros(0)
        zeros = np.zeros_like(flat_params)
        buffers: dict[str, Any] = {"w": flat_params, "m": zeros, "v": zeros.copy()}
        if use_amsgrad:
            buffers["vhat"] = zeros.copy()
        views = {key: _flat_views(buf, shapes) for key, buf in buffers.items()}
        bounds = np.cumsum([0] + [p.size for p in params])
        cache = {
            "flat": buffers,
            "param_views": list(views["w"]),
            "centralizable": [i for i, shape in enumerate(shapes) if kernels.centralizes(shape)],
            "bounds": bounds,
            # Each tensor's scalar-loop elements (see numpy_kernels.SIMD_WIDTH), as flat buffer indices.
            "tail": np.concatenate([kernels.scalar_tail(0)] + [
                start + kernels.scalar_tail(int(stop - start)) for start, stop in itertools.pairwise(bounds)
            ]),
        }
        return Bucket(views["w"], views["m"], views["v"], views.get("vhat"), cache)

    def assign(self, target: np.ndarray, value: np.ndarray) -> np.ndarray:
        np.copyto(target, value, casting="unsafe")
        return target

    def _is_flat(self, bucket: Bucket) -> bool:
        views = bucket.cache.get("param_views")
        return views is not None and len(views) == len(bucket.params) and all(
            map(operator.is_, bucket.params, views)
        )

    # IEEE arithmetic, silently, as MindSpore's kernels: inf / inf is NaN, not a RuntimeWarning (which a
    # warnings filter set to 'error' would turn into a failed step on non-finite gradients).
    @np.errstate(all="ignore")
    def dense_step(self, bucket: Bucket, grads: Sequence[np.ndarray], hyper: StepHyper) -> None:
        if not self._is_flat(bucket):
            for i, g in enumerate(grads):
                vhat = bucket.vhat[i] if bucket.vhat is not None else None
                w = bucket.params[i]
                kernels.adam(w, bucket.m[i], bucket.v[i], vhat, kernels.preprocess(g, w, hyper), hyper)
            return
        flat = bucket.cache["flat"]
        g = np.concatenate(grads, axis=None)
        if hyper.weight_decay is not None:
            g = flat["w"] * hyper.weight_decay.astype(g.dtype) + g
        if hyper.centralize:
            bounds = bucket.cache["bounds"]
            for i in bucket.cache["centralizable"]:
                rows = g[bounds[i] : bounds[i + 1]].reshape(bucket.params[i].shape)
                rows[...] = kernels.centralize(rows)
        if hyper.grad_scale is not None:
            g *= hyper.grad_scale.astype(g.dtype)
        kernels.adam(flat["w"], flat["m"], flat["v"], flat.get("vhat"), g, hyper, bucket.cache["tail"])

    @np.errstate(all="ignore")
    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        w, m, v = bucket.params[index], bucket.m[index], bucket.v[index]
        indices = np.asarray(grad.indices).astype(np.int64, copy=False)
        values = kernels.preprocess(np.asarray(grad.values), w[indices], hyper)
        if grad.deduplicate:
            indices, values = kernels.merge_duplicates(indices, values)
        kernel = kernels.fused_sparse if grad.path is SparsePath.FUSED else kernels.composite_sparse
        kernel(w, m, v, indices, values, grad.lazy, hyper)


_BACKEND: Backend | None = None


def _load() -> Backend:
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = NumpyBackend()
    return _BACKEND


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The NumPy reference backend."""
    return [BackendSpec("numpy", _load, array_modules=("numpy",), distribution="msadam")]
