"""Lazy public names for backend packages: importable without their framework, clear errors on use.

A backend package (``msadam_jax``, ``msadam_tensorflow``) must import without its framework
(``msadam backends`` reports what is missing) and fail clearly only when a name that needs the
framework is used — the array-api-compat / Keras 3 convention. :func:`lazy_names` builds the
package's module-level ``__getattr__`` and ``__dir__`` (PEP 562) from a table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, namespace: dict[str, Any], table: Mapping[str, tuple[str, tuple[str, ...]]],
               hint: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table[name] = (module, packages it needs)``.

    The first access imports the needed packages (an ``ImportError`` naming the missing one and
    ``hint`` if one is absent), then the module, and caches the value in ``namespace`` (the
    package's ``globals()``).
    """

    def __getattr__(name: str) -> Any:
        entry = table.get(name)
        if entry is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, needs = entry
        for needed in needs:
            try:
                importlib.import_module(needed)
            except ImportError as exc:
                raise ImportError(f"{package}.{name} needs {needed}, which is not installed (or failed to import: "
                                  f"{exc}). Install it first: {hint}.") from exc
        value = getattr(importlib.import_module(module_name), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
