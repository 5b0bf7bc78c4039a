"""msadam-tensorflow: MindSpore's Adam (``mindspore.nn.Adam``, with its numbers) for TensorFlow.

The ``tensorflow`` msadam backend (:mod:`msadam_tensorflow.plugin`) runs ``msadam.Adam`` on
``tf.Variable`` parameters, updated in place. Importing this package does not import TensorFlow.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

INSTALL_HINT = 'pip install "msadam-tensorflow[cpu]"  (or: pip install tensorflow-cpu)'
