"""``ms.nn.Adam``: :class:`msadam.Adam` with the Cell methods a script calls on an optimizer.

In MindSpore an optimizer is a ``Cell``: ``opt.parameters_dict()`` lists every Parameter it holds
(the network's parameters and its own state, in checkpoint order), and ``ms.save_checkpoint(opt,
...)`` / ``ms.load_param_into_net(opt, ...)`` work on it. Those methods are here; the numbers,
checks and state are msadam's (see :class:`msadam.Adam`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import msadam
from msadam.state import learning_rate_parameters, ordered_parameters

__all__ = ["Adam"]


class Adam(msadam.Adam):
    __doc__ = msadam.Adam.__doc__

    def construct(self, gradients: Any) -> tuple[bool, ...]:
        """One step, as ``opt(gradients)`` (MindSpore's Cell entry point)."""
        return self(gradients)

    def parameters_and_names(self, name_prefix: str = "",
                             expand: bool = True) -> Iterator[tuple[str, msadam.Parameter]]:
        """``(name, Parameter)`` for every Parameter, in ``mindspore.nn.Adam.parameters_dict()`` order.

        As in MindSpore, a learning rate held in a sub-cell (a dynamic one, or a fixed group rate
        beside dynamic ones) is named by its cell's attribute path: ``learning_rate.learning_rate``,
        or ``learning_rate.<i>.learning_rate`` in a group's ``CellList``.
        """
        in_cells = learning_rate_parameters(self, sub_cell=True)
        dynamic_index = {id(param): index for index, param in enumerate(in_cells)}
        for param in ordered_parameters(self):
            name = param.name
            if id(param) in dynamic_index:
                name = f"learning_rate.{dynamic_index[id(param)]}.learning_rate" if self.is_group_lr \
                    else "learning_rate.learning_rate"
            yield (f"{name_prefix}.{name}" if name_prefix else name), param

    def parameters_dict(self, recurse: bool = True) -> OrderedDict[str, msadam.Parameter]:
        """``{name: Parameter}``: ``global_step``, a fixed learning rate, the parameters, the beta powers,
        ``moment1.*``, ``moment2.*``, ``vhat.*`` and a dynamic learning rate, as MindSpore orders them."""
        return OrderedDict((param.name, param) for param in ordered_parameters(self))

    def get_parameters(self, expand: bool = True) -> Iterator[msadam.Parameter]:
        """Every Parameter, in [`parameters_dict`][msadam_compat.nn.optimizer.Adam.parameters_dict] order."""
        yield from ordered_parameters(self)

    def trainable_params(self, recurse: bool = True) -> list[msadam.Parameter]:
        """The Parameters with ``requires_grad``, in
        [`parameters_dict`][msadam_compat.nn.optimizer.Adam.parameters_dict] order.

        As in MindSpore, that is the optimizer's state as well as the network's parameters: its
        ``global_step``, learning rates and moments are created with ``requires_grad=True``.
        """
        return [p for p in ordered_parameters(self) if p.requires_grad]
