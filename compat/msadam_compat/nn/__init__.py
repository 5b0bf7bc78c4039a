"""``ms.nn``: the optimizer, learning-rate schedules, ``dynamic_lr`` and loss-scale update cells of ``mindspore.nn``."""

from msadam.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)
from msadam_compat.nn import dynamic_lr
from msadam_compat.nn.dynamic_lr import (
    cosine_decay_lr,
    exponential_decay_lr,
    inverse_decay_lr,
    natural_exp_decay_lr,
    piecewise_constant_lr,
    polynomial_decay_lr,
    warmup_lr,
)
from msadam_compat.nn.loss_scale import DynamicLossScaleUpdateCell, FixedLossScaleUpdateCell
from msadam_compat.nn.optimizer import Adam

__all__ = [
    "Adam",
    "CosineDecayLR",
    "DynamicLossScaleUpdateCell",
    "ExponentialDecayLR",
    "FixedLossScaleUpdateCell",
    "InverseDecayLR",
    "LearningRateSchedule",
    "NaturalExpDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
    "cosine_decay_lr",
    "dynamic_lr",
    "exponential_decay_lr",
    "inverse_decay_lr",
    "natural_exp_decay_lr",
    "piecewise_constant_lr",
    "polynomial_decay_lr",
    "warmup_lr",
]
