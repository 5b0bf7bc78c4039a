"""Optimizer state under MindSpore's checkpoint names, and all-or-nothing loading.

The names and their order are those of ``mindspore.nn.Adam(...).parameters_dict()``:
``global_step`` (int32, shape (1,)), the fixed learning-rate Parameters, the parameters,
``beta1_power``, ``beta2_power`` (float32, shape ()), ``moment1.<name>``, ``moment2.<name>``,
``vhat.<name>`` (AMSGrad only), then the dynamic learning-rate Parameters. (A fixed rate is a
Parameter attribute of the optimizer Cell, set right after ``global_step``; a dynamic one lives in
an ``_IteratorLearningRate`` sub-cell — as does a fixed group rate beside dynamic ones, in a
``_ConvertToCell`` — whose Parameters a Cell lists after its own: mindspore/nn/optim/optimizer.py
``_preprocess_single_lr``, ``_init_group_params``. Names: ``learning_rate_group_<i>`` /
``learning_rate``; none for a schedule.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from msadam.learning_rates import FixedLR, IteratorLR
from msadam.tensor import Parameter, Tensor

if TYPE_CHECKING:
    from msadam.optimizer import Adam

__all__ = ["in_sub_cell", "learning_rate_parameters", "load_state_dict", "ordered_parameters", "state_dict"]


def in_sub_cell(source: object) -> bool:
    """Whether MindSpore keeps this learning rate's Parameter in a sub-cell (listed after the optimizer's own):
    a 1-D rate (``_IteratorLearningRate``) or a fixed group rate beside dynamic ones (``_ConvertToCell``)."""
    return isinstance(source, IteratorLR) or (isinstance(source, FixedLR) and source.converted)


def learning_rate_parameters(opt: Adam, sub_cell: bool) -> list[Parameter]:
    """The learning-rate Parameters MindSpore keeps in sub-cells (``sub_cell``) or on the optimizer itself."""
    found: dict[int, Parameter] = {}
    # Without group rates MindSpore keeps the default rate (optimizer.py: `self.learning_rate = ...`) even
    # when no parameter uses it (every group's params a one-shot iterator, groups._is_one_shot).
    for source in opt._layout.lrs if opt.is_group_lr else [opt._layout.default_lr]:
        if isinstance(source, FixedLR | IteratorLR) and in_sub_cell(source) == sub_cell:
            found.setdefault(id(source.learning_rate), source.learning_rate)
    return list(found.values())


def ordered_parameters(opt: Adam) -> list[Parameter]:
    """Every Parameter of the optimizer, in MindSpore's ``parameters_dict()`` order."""
    return [
        opt.global_step, *learning_rate_parameters(opt, sub_cell=False), *opt.parameters, opt.beta1_power,
        opt.beta2_power, *opt.moment1, *opt.moment2, *opt.vhat, *learning_rate_parameters(opt, sub_cell=True),
    ]


def state_dict(opt: Adam) -> dict[str, np.ndarray]:
    """``{checkpoint name: NumPy copy}``."""
    return {param.name: param.asnumpy() for param in ordered_parameters(opt)}


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, Parameter | Tensor):
        return value.asnumpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # e.g. a framework tensor that does not convert
        raise TypeError(f"State entry {name!r} cannot be converted to an array: {exc}") from exc


def load_state_dict(opt: Adam, values: dict[str, Any], strict: bool = True) -> None:
    """Load ``values`` into the optimizer; every entry is checked before anything is written.

    ``strict``: missing or unexpected names are a ``KeyError``. A shape mismatch is a
    ``ValueError``; values are cast to each Parameter's dtype.
    """
    if not isinstance(values, dict):
        raise TypeError(f"load_state_dict expects a dict of name -> array, but got {type(values).__name__}.")
    targets = {param.name: param for param in ordered_parameters(opt)}
    if strict:
        missing = sorted(set(targets) - set(values))
        unexpected = sorted(set(values) - set(targets))
        if missing or unexpected:
            raise KeyError(f"State dict mismatch: missing {missing}, unexpected {unexpected}.")
    staged = []
    for name, value in values.items():
        if name not in targets:
            continue
        array = _as_numpy(name, value)
        param = targets[name]
        if tuple(array.shape) != param.shape:
            raise ValueError(f"State entry {name!r} has shape {tuple(array.shape)}, expected {param.shape}.")
        staged.append((param, array.astype(param.dtype)))
    for param, array in staged:
        param.set_data(array)
