"""The JAX backend: MindSpore's Adam on ``jax.Array`` (any device, sharded or not).

JAX arrays are immutable, so a step returns new arrays and the core re-points its Parameters at
them (:class:`~msadam.backend.Bucket` lists are updated). The old parameter and state buffers are
*donated* to the step, which lets XLA write the new values in place: after ``opt(grads)``, an
array previously read from ``param.data`` is deleted (as with any donating JAX step); read
``param.data`` again, or ``param.asnumpy()``. The arrays a user handed in are never donated:
:meth:`JaxBackend.new_bucket` and :meth:`JaxBackend.assign` take copies, placed like the originals
(same device or sharding).

New arrays made from NumPy values land on JAX's default device. 64-bit dtypes exist only with
``jax_enable_x64``: without it a float64 value is refused (``TypeError``) rather than silently
narrowed, and 64-bit integers (indices) are narrowed to 32 bits when they fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from msadam.backend import Bucket, SparseGrad, SparsePath, StepHyper
from msadam.tensor import RowTensor
from msadam_jax import kernels, steps
from msadam_jax.names import is_row_sparse, row_tensor
from msadam_jax.rounding import fma_mode

__all__ = ["JaxBackend"]

Array = Any


def _x64() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def _representable(array: np.ndarray) -> np.ndarray:
    """``array`` in a dtype JAX holds without ``jax_enable_x64`` (only narrowing that loses nothing)."""
    if _x64() or array.dtype.itemsize < 8 or array.dtype.kind not in "iufc":
        return array
    if array.dtype.kind in "iu":
        narrow = np.dtype(array.dtype.kind + "4")
        info = np.iinfo(narrow)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise OverflowError(f"The values of this {array.dtype} array do not fit in {narrow}, and JAX holds "
                                "64-bit integers only with jax_enable_x64.")
        return array.astype(narrow)
    raise TypeError(f"JAX holds {array.dtype} only with jax_enable_x64 "
                    "(jax.config.update('jax_enable_x64', True)); msadam does not narrow it silently.")


def _copy_like(value: Array, like: Array) -> Array:
    """A copy of ``value`` (never the same buffer) placed like ``like`` (device or sharding)."""
    return jax.device_put(value, like.sharding, may_alias=False)


def _platform(arrays: Sequence[Array]) -> str | None:
    return next(iter(arrays[0].devices())).platform if arrays else None


class JaxBackend:
    """MindSpore's Adam on ``jax.Array``s (see the module docstring)."""

    name = "jax"

    def version(self) -> str:
        return str(jax.__version__)

    def devices(self) -> list[str]:
        return [f"{d.platform}:{d.id}" for d in jax.devices()]

    def owns(self, array: object) -> bool:
        return isinstance(array, jax.Array)

    def from_numpy(self, array: np.ndarray) -> Array:
        # device_put of a private copy: jnp.array(...) would compile a small program per new shape.
        return jax.device_put(np.array(_representable(np.asarray(array)), copy=True))

    def all_finite(self, arrays: Sequence[Array]) -> bool:
        """Whether every element of every array is finite, read back once (``msadam_compat.amp.all_finite``)."""
        checks = [jnp.isfinite(a).all() for a in arrays]
        return bool(jnp.stack(checks).all()) if checks else True

    def to_numpy(self, array: Array) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self, arrays: Sequence[Array]) -> None:
        """Block until these arrays are computed (JAX dispatches asynchronously)."""
        jax.block_until_ready(list(arrays))

    def shape(self, array: Array) -> tuple[int, ...]:
        return array.shape  # a tuple of ints already (called per tensor per step)

    def dtype(self, array: Array) -> np.dtype:
        return array.dtype  # a NumPy dtype already

    def cast(self, array: Array, dtype: np.dtype) -> Array:
        dtype = np.dtype(dtype)
        if array.dtype == dtype:
            return array
        if dtype.itemsize == 8 and not _x64():
            raise TypeError(f"JAX holds {dtype} only with jax_enable_x64.")
        return array.astype(dtype)

    def assign(self, target: Array, value: Array) -> Array:
        return _copy_like(value, target)

    def new_bucket(self, params: Sequence[Array], use_amsgrad: bool) -> Bucket:
        for p in params:
            if not isinstance(p, jax.Array):
                raise TypeError(f"A JAX parameter must be a jax.Array, got {type(p).__name__}.")
        copies = [_copy_like(p, p) for p in params]  # the user's arrays are never donated

        def zeros() -> list[Array]:
            return [jnp.zeros_like(p) for p in copies]

        # The rounding mode is settled (and $MSADAM_JAX_FMA checked) now, not in the middle of a step.
        cache = {"fma": fma_mode(_platform(copies))}
        return Bucket(copies, zeros(), zeros(), zeros() if use_amsgrad else None, cache)

    def _config(self, bucket: Bucket, hyper: StepHyper) -> kernels.Config:
        mode = bucket.cache.get("fma") or fma_mode(_platform(bucket.params))
        return kernels.Config(hyper.use_nesterov, hyper.use_amsgrad, hyper.centralize, mode)

    def dense_step(self, bucket: Bucket, grads: Sequence[Array], hyper: StepHyper) -> None:
        if not bucket.params:
            return
        steps.dense_step(bucket.params, bucket.m, bucket.v, bucket.vhat if hyper.use_amsgrad else None,
                         grads, kernels.scalars(hyper), self._config(bucket, hyper),
                         _platform(bucket.params) or "cpu")

    def as_row_tensor(self, grad: object) -> RowTensor | None:
        """A row-sparse ``jax.experimental.sparse.BCOO`` as a RowTensor (:func:`msadam_jax.names.row_tensor`)."""
        return row_tensor(grad) if is_row_sparse(grad) and not isinstance(grad, RowTensor) else None

    def sparse_step(self, bucket: Bucket, index: int, grad: SparseGrad, hyper: StepHyper) -> None:
        cfg = kernels.SparseConfig(hyper.use_nesterov, grad.lazy, grad.path is SparsePath.COMPOSITE,
                                   grad.deduplicate)
        bucket.params[index], bucket.m[index], bucket.v[index] = steps.sparse_step(
            bucket.params[index], bucket.m[index], bucket.v[index], grad.indices, grad.values,
            kernels.scalars(hyper), cfg)

    def __repr__(self) -> str:
        return f"JaxBackend(default_device={jax.devices()[0]})"
