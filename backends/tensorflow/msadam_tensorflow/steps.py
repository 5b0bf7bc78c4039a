"""Compiled steps on ``tf.Variable``s: one XLA computation per bucket (dense), op by op (sparse).

The dense step reads every variable of a bucket, runs :func:`msadam_tensorflow.kernels.dense_update`
and assigns the results, all in one ``tf.function(jit_compile=True)``; hyper-parameters are scalar
tensors, so each bucket's function is traced once and reused at every step. The sparse step runs op
by op (see :func:`sparse_step_eager`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from msadam_tensorflow.kernels import Config, Scalars, SparseConfig, dense_update, sparse_step

__all__ = ["compiled_dense", "dense_step", "sparse_step_eager"]


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


def dense_step(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
               grads: Sequence[Any], s: Scalars, cfg: Config) -> None:
    """One dense step of a bucket of variables, in place (:func:`compiled_dense`)."""
    compiled_dense(params, m, v, vhat, cfg)(list(grads), s)


def sparse_step_eager(w: Any, m: Any, v: Any, indices: Any, values: Any, s: Scalars, cfg: SparseConfig) -> None:
    """One row-sparse step of one table, in place, op by op.

    Eagerly, not in a ``tf.function``: Grappler's graph rewrites change the last bit of the
    scatter-add composites (measured: 3% of the elements of ``v``), and op-by-op execution is the
    kernels' own arithmetic. A dozen ops on the touched rows: the cost stays proportional to them.
    """
    sparse_step(w, m, v, indices, values, s, cfg)
