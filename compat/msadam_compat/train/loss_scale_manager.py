"""``mindspore.train.loss_scale_manager`` (also ``mindspore.amp``'s and ``mindspore``'s): loss scale managers.

A manager holds the loss scale of a mixed-precision training loop in Python numbers and hands the
training step an update cell ([`msadam_compat.nn.loss_scale`][msadam_compat.nn.loss_scale]). Arguments, checks (and what
is *not* checked), update rules and return values are MindSpore 2.10's, line for line.
"""

from __future__ import annotations

from typing import Any

from msadam_compat._number_checks import check_positive_int
from msadam_compat.nn.loss_scale import DynamicLossScaleUpdateCell, FixedLossScaleUpdateCell

__all__ = ["DynamicLossScaleManager", "FixedLossScaleManager", "LossScaleManager"]


class LossScaleManager:
    """``mindspore.amp.LossScaleManager``: the base class; its three methods do nothing and return ``None``."""

    def get_loss_scale(self) -> Any:
        """The current loss scale (``None`` here)."""

    def update_loss_scale(self, overflow: Any) -> None:
        """Update the loss scale from ``overflow`` (nothing here)."""

    def get_update_cell(self) -> Any:
        """The update cell a training step calls (``None`` here)."""


class FixedLossScaleManager(LossScaleManager):
    """``mindspore.amp.FixedLossScaleManager(loss_scale=128.0, drop_overflow_update=True)``.

    The only check is ``loss_scale < 1`` → ``ValueError`` (loss_scale_manager.py line 64: no type
    check, so a ``str`` fails with Python's own ``TypeError`` from the comparison, and
    ``drop_overflow_update`` is kept as given). ``get_update_cell()`` is ``None`` when
    ``drop_overflow_update`` is false, else a
    [`FixedLossScaleUpdateCell`][msadam_compat.nn.loss_scale.FixedLossScaleUpdateCell] of ``loss_scale``.
    """

    def __init__(self, loss_scale: float = 128.0, drop_overflow_update: bool = True) -> None:
        if loss_scale < 1:
            raise ValueError(f"The argument 'loss_scale' must be >= 1, but got {loss_scale}")
        self._loss_scale = loss_scale
        self._drop_overflow_update = drop_overflow_update

    def get_loss_scale(self) -> Any:
        """``loss_scale``, as given."""
        return self._loss_scale

    def get_drop_overflow_update(self) -> Any:
        """``drop_overflow_update``, as given: whether a step with overflow skips the optimizer."""
        return self._drop_overflow_update

    def update_loss_scale(self, overflow: Any) -> None:
        """Does nothing: the scale is fixed."""

    def get_update_cell(self) -> FixedLossScaleUpdateCell | None:
        """``None`` if not ``drop_overflow_update`` (line 107), else ``FixedLossScaleUpdateCell(loss_scale)``."""
        if not self._drop_overflow_update:
            return None
        return FixedLossScaleUpdateCell(self._loss_scale)


class DynamicLossScaleManager(LossScaleManager):
    r"""``mindspore.amp.DynamicLossScaleManager(init_loss_scale=2**24, scale_factor=2, scale_window=2000)``.

    Checks, in order (line 131): ``init_loss_scale < 1.0`` → ``ValueError``; ``scale_window`` a
    positive ``int`` (``TypeError``/``ValueError``, "For 'DynamicLossScaleManager', ...");
    ``scale_factor <= 0`` → ``ValueError`` (any positive number passes, e.g. ``1.5``).

    ``update_loss_scale(overflow)`` in Python arithmetic (line 163), with ``cur_iter`` from 1:

    ```text
    overflow:  s = max(s * (1 / f), 1);  last = cur;  bad = bad + 1
    else:      s = s * f if (cur - last) % w == 0;  bad = 0
    ```

    then ``RuntimeError`` once ``bad`` exceeds ``bad_step_max`` (1000) consecutive overflows, and
    ``cur += 1``. Note ``s * (1 / f)`` (not ``s / f``) and that ``max(..., 1)`` may return the
    ``int`` 1; an ``int`` scale stays ``int`` while it only grows. ``get_update_cell()`` is a
    [`DynamicLossScaleUpdateCell`][msadam_compat.nn.loss_scale.DynamicLossScaleUpdateCell] of the *current* scale.
    """

    def __init__(self, init_loss_scale: float = 2**24, scale_factor: int = 2, scale_window: int = 2000) -> None:
        if init_loss_scale < 1.0:
            raise ValueError(f"The argument 'init_loss_scale' must be > 1, but got {init_loss_scale}")
        self.loss_scale = init_loss_scale
        check_positive_int(scale_window, "scale_window", self.__class__.__name__)
        self.scale_window = scale_window
        if scale_factor <= 0:
            raise ValueError(f"The argument 'scale_factor' must be > 0, but got {scale_factor}")
        self.scale_factor = scale_factor
        self.increase_ratio = scale_factor
        self.decrease_ratio = 1 / scale_factor
        self.cur_iter = 1
        self.last_overflow_iter = 0
        self.bad_step_max = 1000
        self.bad_step = 0

    def get_loss_scale(self) -> Any:
        """The current loss scale (a Python number)."""
        return self.loss_scale

    def update_loss_scale(self, overflow: Any) -> None:
        """Decrease the scale on ``overflow``, increase it after ``scale_window`` clean steps (class docstring)."""
        if overflow:
            self.loss_scale = max(self.loss_scale * self.decrease_ratio, 1)
            self.last_overflow_iter = self.cur_iter
            self.bad_step += 1
        else:
            if (self.cur_iter - self.last_overflow_iter) % self.scale_window == 0:
                self.loss_scale *= self.increase_ratio
            self.bad_step = 0

        if self.bad_step > self.bad_step_max:
            # loss_scale_manager.py line 173: the message is a tuple of three arguments, as MindSpore raises it.
            raise RuntimeError("Dynamic loss scale Continuous overflow ", self.bad_step,
                               " times, has exceeded maximum threshold.")

        self.cur_iter += 1

    def get_drop_overflow_update(self) -> bool:
        """Always ``True``: a step with overflow never updates the weights."""
        return True

    def get_update_cell(self) -> DynamicLossScaleUpdateCell:
        """``DynamicLossScaleUpdateCell(loss_scale, scale_factor, scale_window)`` with the current ``loss_scale``."""
        return DynamicLossScaleUpdateCell(self.loss_scale, self.scale_factor, self.scale_window)
