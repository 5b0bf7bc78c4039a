"""Which of MindSpore's three sparse code paths a row-sparse gradient takes.

``Adam.__init__`` forces ``self._is_device = True`` (``adam.py``), so by default even a CPU run
takes the Python scatter-add composite, and as the default target is the host ('CPU'),
``Optimizer._grad_sparse_indices_deduplicate`` merges nothing. Setting ``opt.target = 'CPU'``
explicitly runs ``_set_base_target``, which sets ``_is_device = False``: the fused host kernels.
'GPU' and 'Ascend' keep the composite but de-duplicate indices first when ``opt.unique`` is true.
MindSpore allows those targets only on such hardware; msadam allows any target anywhere, so
Ascend numbers can be reproduced on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass

from msadam.backend import SparsePath

__all__ = ["TARGETS", "SparseStrategy", "check_target", "check_unique"]

TARGETS = ("CPU", "Ascend", "GPU")


def check_target(value: object) -> str:
    """``Optimizer._set_base_target``'s checks (without the hardware restriction)."""
    if not isinstance(value, str):
        raise TypeError(f"For 'Optimizer', the property 'target' must be string, but got {type(value)}")
    if value not in TARGETS:
        raise ValueError(f"For 'Optimizer', the property 'target' must be one of ['CPU', 'Ascend' ,'GPU'], "
                         f"but got {value}")
    return value


def check_unique(value: object) -> bool:
    """``Optimizer.unique``'s setter: a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"For 'Optimizer', the property 'unique' must be bool, but got {type(value)}")
    return value


@dataclass(frozen=True)
class SparseStrategy:
    """The sparse path of an optimizer: its target, whether it was set explicitly, and ``unique``."""

    target: str = "CPU"
    explicit: bool = False
    unique: bool = True

    @property
    def path(self) -> SparsePath:
        """Fused host kernels only after ``target = 'CPU'`` was set; otherwise the composite."""
        return SparsePath.FUSED if self.explicit and self.target == "CPU" else SparsePath.COMPOSITE

    @property
    def deduplicate(self) -> bool:
        """``_grad_sparse_indices_deduplicate``: when the target is not the host and ``unique`` holds."""
        return self.target != "CPU" and self.unique
