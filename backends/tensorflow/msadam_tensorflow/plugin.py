"""The ``msadam.backends`` entry point of msadam-tensorflow: announces the backend without importing TensorFlow."""

from __future__ import annotations

from msadam.backend import Backend, BackendSpec
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_tensorflow.backend import TensorflowBackend  # imports TensorFlow: only when first used

    return TensorflowBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The TensorFlow backend (``tf.Variable`` parameters, ``tf.Tensor`` gradients)."""
    return [BackendSpec("tensorflow", _load, array_modules=("tensorflow",), distribution="msadam-tensorflow")]
