"""``import msadam_compat as ms``: the MindSpore 2.10 surface a training script touches around its optimizer.

Module for module as MindSpore lays it out — ``ms.nn.Adam``, ``ms.Tensor``, ``ms.Parameter``,
``ms.ParameterTuple``, the ``ms.nn`` schedules and ``ms.nn.dynamic_lr``, ``ms.amp`` and the loss
scale managers, ``ms.save_checkpoint`` / ``ms.load_checkpoint`` / ``ms.load_param_into_net``
(MindSpore's ``.ckpt`` and safetensors files) — with MindSpore's signatures, checks and numbers,
over any msadam backend. [`install`][msadam_compat.install.install] lets an unmodified ``import mindspore`` resolve here
when MindSpore itself is absent.

Example:
    >>> import numpy as np, msadam_compat as ms
    >>> w = ms.Parameter(ms.Tensor(np.ones((2, 2)), ms.float32), name="w")
    >>> opt = ms.nn.Adam([w], learning_rate=ms.nn.cosine_decay_lr(0.0, 0.1, 4, 2, 2))
    >>> opt((np.full((2, 2), 0.5, np.float32),))
    (True,)
"""

from __future__ import annotations

from msadam_compat import amp, dtype, names, nn, train
from msadam_compat.common import Parameter, ParameterTuple, Tensor
from msadam_compat.dtype import (
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    float_,
    int8,
    int16,
    int32,
    int64,
    int_,
    uint8,
)
from msadam_compat.install import install, installed, uninstall
from msadam_compat.train.loss_scale_manager import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager
from msadam_compat.train.serialization import load_checkpoint, load_param_into_net, save_checkpoint

__version__ = "0.1.0"
MINDSPORE_VERSION = "2.10.0"
"""The MindSpore release whose behaviour this package reproduces (and is tested against)."""

__all__ = [
    "MINDSPORE_VERSION",
    "DynamicLossScaleManager",
    "FixedLossScaleManager",
    "LossScaleManager",
    "Parameter",
    "ParameterTuple",
    "Tensor",
    "amp",
    "bfloat16",
    "bool_",
    "dtype",
    "float16",
    "float32",
    "float64",
    "float_",
    "install",
    "installed",
    "int8",
    "int16",
    "int32",
    "int64",
    "int_",
    "load_checkpoint",
    "load_param_into_net",
    "names",
    "nn",
    "save_checkpoint",
    "train",
    "uint8",
    "uninstall",
]
