"""``ms.train``: the loss scale managers and checkpoint functions of ``mindspore.train``."""

from msadam_compat.train import loss_scale_manager, serialization
from msadam_compat.train.loss_scale_manager import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager
from msadam_compat.train.serialization import load_checkpoint, load_param_into_net, save_checkpoint

__all__ = [
    "DynamicLossScaleManager",
    "FixedLossScaleManager",
    "LossScaleManager",
    "load_checkpoint",
    "load_param_into_net",
    "loss_scale_manager",
    "save_checkpoint",
    "serialization",
]
