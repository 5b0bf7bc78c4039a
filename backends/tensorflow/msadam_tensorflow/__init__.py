"""msadam-tensorflow: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for TensorFlow and Keras.

``msadam_tensorflow.Adam`` is a Keras 3 optimizer (TensorFlow backend); the ``tensorflow`` msadam
backend (:mod:`msadam_tensorflow.plugin`) runs ``msadam.Adam`` on ``tf.Variable`` parameters.
Importing this package does not import TensorFlow: the names below load on first use, and fail
then, clearly, when TensorFlow (or Keras) is not installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"Adam": "msadam_tensorflow.keras_optimizer", "mindspore_name": "msadam_tensorflow.keras_optimizer",
         "row_tensor": "msadam_tensorflow.sparse"}

__all__ = ["Adam", "__version__", "mindspore_name", "row_tensor"]

INSTALL_HINT = 'pip install "msadam-tensorflow[cpu]"  (or: pip install tensorflow-cpu)'


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'msadam_tensorflow' has no attribute {name!r}")
    for package in ("tensorflow", "keras"):
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise ImportError(f"msadam_tensorflow.{name} needs {package}, which is not installed (or failed to "
                              f"import: {exc}). Install it first: {INSTALL_HINT}.") from exc
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
