"""Compiled steps on ``tf.Variable``s: one kernel per bucket (dense), op by op (sparse).

The dense float32 step of CPU variables is the compiled op of :mod:`msadam_tensorflow.native` where
it is available (one pass over memory, in place; :func:`native_dense`). Otherwise (another dtype or
device, gradient centralization, ``MSADAM_TF_NATIVE=0``, no C++ compiler) it reads every variable of
a bucket, runs :func:`msadam_tensorflow.kernels.dense_update` and assigns the results, all in one
``tf.function(jit_compile=True)``; hyper-parameters are scalar tensors, so each bucket's function is
traced once and reused at every step. Both give the NumPy reference's bits on ordinary values; at
the edges only the op does (TensorFlow runs XLA's code with subnormals flushed to zero). The sparse
step runs op by op (see :func:`sparse_step_eager`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from msadam.backends.numpy_kernels import centralizes
from msadam_tensorflow import native
from msadam_tensorflow.kernels import Config, Scalars, SparseConfig, dense_update, sparse_step

__all__ = ["apply_dense", "compiled_dense", "dense_step", "native_dense", "sparse_step_eager"]


def _dense(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
           grads: Sequence[Any], s: Scalars, cfg: Config) -> None:
    for i, w in enumerate(params):
        new = dense_update(w.read_value(), m[i].read_value(), v[i].read_value(),
                           vhat[i].read_value() if vhat is not None else None, grads[i], s, cfg)
        w.assign(new[0])
        m[i].assign(new[1])
        v[i].assign(new[2])
        if vhat is not None:
            vhat[i].assign(new[3])


_CACHE_SIZE = 64  # compiled dense steps kept (one per bucket and configuration, partial buckets included)
_COMPILED: collections.OrderedDict[Any, Any] = collections.OrderedDict()


def _compile(params: list[Any], m: list[Any], v: list[Any], vhat: list[Any] | None, cfg: Config) -> Any:
    def step(grads: list[Any], s: Scalars) -> None:
        _dense(params, m, v, vhat, grads, s, cfg)

    return tf.function(step, jit_compile=True)


def compiled_dense(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
                   cfg: Config) -> Any:
    """The XLA-compiled dense step of these variables, taking ``(grads, scalars)``.

    The variables are captured, not arguments (calling a function with hundreds of variable
    arguments costs milliseconds), so each set of variables has its own function, kept in a small
    LRU cache keyed by the variables' references: a bucket, or the part of it that got dense
    gradients while others got sparse ones, compiles once.
    """
    ws, ms, vs = list(params), list(m), list(v)
    vhats = None if vhat is None else list(vhat)
    key = (cfg, *(tuple(x.ref() for x in group) for group in (ws, ms, vs, vhats or [])))
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = _compile(ws, ms, vs, vhats, cfg)
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return found


def native_dense(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
                 grads: Sequence[Any], s: Scalars, cfg: Config) -> bool:
    """The dense step by the compiled op (:func:`msadam_tensorflow.native.dense_step`), in place.

    ``grads`` raw (preprocessed by the op), ``vhat`` read only with ``cfg.amsgrad``. Returns False,
    having done nothing, where the op does not apply: a gradient that centralization changes, a
    variable that is not a float32 CPU ``tf.Variable``, inside ``jit_compile``, the op unavailable or
    disabled. Eagerly or in a plain ``tf.function``.
    """
    if cfg.centralize and any(centralizes(tuple(g.shape)) for g in grads):
        return False
    return native.dense_step(params, m, v, vhat if cfg.amsgrad else None, grads, s, cfg.nesterov and not cfg.amsgrad)


def apply_dense(w: Any, m: Any, v: Any, vhat: Any | None, g: Any, s: Scalars, cfg: Config) -> bool:
    """:func:`native_dense` of one variable (for an optimizer that steps variable by variable).

    ``w``, ``m``, ``v`` (``vhat``) are ``tf.Variable``s (a Keras variable's ``.value``), ``g`` its
    raw gradient; True when the op stepped it, False (nothing done) to ask for another path.
    """
    return native_dense([w], [m], [v], None if vhat is None else [vhat], [g], s, cfg)


def dense_step(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
               grads: Sequence[Any], s: Scalars, cfg: Config) -> None:
    """One dense step of a bucket of variables, in place: :func:`native_dense`, else :func:`compiled_dense`."""
    if not native_dense(params, m, v, vhat, grads, s, cfg):
        compiled_dense(params, m, v, vhat, cfg)(list(grads), s)


def sparse_step_eager(w: Any, m: Any, v: Any, indices: Any, values: Any, s: Scalars, cfg: SparseConfig) -> None:
    """One row-sparse step of one table, in place, op by op.

    Eagerly: the row count changes from step to step, and a dozen ops on the touched rows cost less
    than a retrace; the cost stays proportional to those rows. (The same kernels run in graphs and
    under XLA inside ``msadam_tensorflow.Adam``, with the same bits: every product is rounded apart.)
    """
    sparse_step(w, m, v, indices, values, s, cfg)
