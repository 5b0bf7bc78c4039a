"""msadam-tensorflow: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for TensorFlow and Keras.

``msadam_tensorflow.Adam`` is a Keras 3 optimizer (TensorFlow backend); the ``tensorflow`` msadam
backend (:mod:`msadam_tensorflow.plugin`) runs ``msadam.Adam`` on ``tf.Variable`` parameters.
Importing this package does not import TensorFlow: the names below load on first use, and fail
then, clearly, when TensorFlow (or Keras) is not installed.
"""

from __future__ import annotations

from msadam.lazy import lazy_names
from msadam_tensorflow.names import mindspore_name

__version__ = "0.1.0"

_NEEDS = ("tensorflow", "keras")
_LAZY = {"Adam": ("msadam_tensorflow.keras_optimizer", _NEEDS),
         "MindSporeLearningRate": ("msadam_tensorflow.learning_rate", _NEEDS),
         "row_tensor": ("msadam_tensorflow.sparse", _NEEDS)}

__all__ = ["Adam", "MindSporeLearningRate", "__version__", "mindspore_name", "row_tensor"]

INSTALL_HINT = 'pip install "msadam-tensorflow[cpu]"  (or: pip install tensorflow-cpu)'


__getattr__, __dir__ = lazy_names("msadam_tensorflow", globals(), _LAZY, INSTALL_HINT)
