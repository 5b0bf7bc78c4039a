"""msadam: ``mindspore.nn.Adam`` reproduced faithfully on a plugin registry of array backends.

>>> import numpy as np, msadam
>>> w = msadam.Parameter(np.ones((2, 2), np.float32), name="w")
>>> opt = msadam.Adam([w], learning_rate=0.1)
>>> opt((np.full((2, 2), 0.5, np.float32),))
(True,)
"""

from msadam.optimizer import Adam
from msadam.registry import available_backends, get_backend, set_backend, use_backend
from msadam.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)
from msadam.tensor import Parameter, RowTensor, Tensor
from msadam.validation import MindSporeQuirkWarning

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "CosineDecayLR",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "MindSporeQuirkWarning",
    "NaturalExpDecayLR",
    "Parameter",
    "PolynomialDecayLR",
    "RowTensor",
    "Tensor",
    "WarmUpLR",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
]
