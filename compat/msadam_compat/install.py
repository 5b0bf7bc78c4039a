"""``msadam_compat.install()``: let an unmodified ``import mindspore`` resolve to this package.

A MindSpore training script ported to another framework can keep its ``import mindspore as ms``
and ``from mindspore import nn`` lines: after [`install`][msadam_compat.install.install], those names are this package's
modules (``mindspore`` is [`msadam_compat`][msadam_compat], ``mindspore.nn`` is ``msadam_compat.nn``, ...).
Modules MindSpore has but this package does not (``mindspore.ops``, ``mindspore.dataset``, ...)
fail to import with a message saying so, instead of being looked for elsewhere.

It refuses (``RuntimeError``) when the real MindSpore is installed, so that a script never runs
on the stand-in by accident; ``install(force=True)`` shadows it anyway, provided the real one has
not been imported yet in this process.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

__all__ = ["ALIASES", "install", "installed", "uninstall"]

ALIASES: dict[str, str] = {
    "mindspore": "msadam_compat",
    "mindspore.nn": "msadam_compat.nn",
    "mindspore.nn.dynamic_lr": "msadam_compat.nn.dynamic_lr",
    "mindspore.nn.learning_rate_schedule": "msadam.schedules",
    "mindspore.amp": "msadam_compat.amp",
    "mindspore.train": "msadam_compat.train",
    "mindspore.train.serialization": "msadam_compat.train.serialization",
    "mindspore.train.loss_scale_manager": "msadam_compat.train.loss_scale_manager",
    "mindspore.common": "msadam_compat.common",
    "mindspore.common.dtype": "msadam_compat.dtype",
}
"""``mindspore`` module name -> the ``msadam_compat`` module that stands in for it."""


class _MissingModule(importlib.abc.MetaPathFinder):
    """Answers every other ``mindspore.*`` import with a clear ``ModuleNotFoundError``."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith("mindspore.") and fullname not in ALIASES:
            covered = ", ".join(sorted(ALIASES))
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: 'mindspore' is msadam_compat here (msadam_compat.install()), which "
                f"stands in only for what a script touches around its optimizer: {covered}.", name=fullname)
        return None


_finder = _MissingModule()


def installed() -> bool:
    """Whether ``import mindspore`` currently resolves to this package."""
    return sys.modules.get("mindspore") is importlib.import_module("msadam_compat")


def _real_mindspore_present() -> bool:
    module = sys.modules.get("mindspore")
    if module is not None:
        return not installed()
    return importlib.util.find_spec("mindspore") is not None


def install(force: bool = False) -> None:
    """Make ``import mindspore`` (and the submodules in [`ALIASES`][msadam_compat.install.ALIASES]) resolve to
    msadam_compat.

    Idempotent. Raises ``RuntimeError`` if the real MindSpore is installed (unless ``force``),
    and always if it has already been imported in this process (its modules are in use).
    """
    if not isinstance(force, bool):
        raise TypeError(f"install(force=...) must be a bool, but got {type(force).__name__}.")
    if installed():
        return
    if "mindspore" in sys.modules:
        raise RuntimeError("The real MindSpore is already imported in this process; msadam_compat.install() must run "
                           "before any 'import mindspore' to stand in for it.")
    if not force and _real_mindspore_present():
        raise RuntimeError("The real MindSpore is installed, so msadam_compat.install() refuses to shadow it: "
                           "'import mindspore' would silently stop meaning MindSpore. Use "
                           "'import msadam_compat as ms' directly, or msadam_compat.install(force=True).")
    modules = {alias: importlib.import_module(target) for alias, target in ALIASES.items()}
    sys.modules.update(modules)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo [`install`][msadam_compat.install.install]: ``import mindspore`` finds the real one again (if any)."""
    for alias, target in ALIASES.items():
        if sys.modules.get(alias) is sys.modules.get(target):
            del sys.modules[alias]
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
