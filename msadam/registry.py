"""The backend registry: plugin discovery (pluggy + entry points) and backend selection.

Discovery is lazy and idempotent: the plugin manager is built on first use, every module under
the ``msadam.backends`` entry-point group is registered (a module that fails to import is
recorded, never fatal), and each backend's framework is imported only when that backend is used.

Selection, highest first: :func:`use_backend` context, :func:`set_backend`, the
``MSADAM_BACKEND`` environment variable, ``[tool.msadam] backend = "..."`` in the TOML file named
by ``MSADAM_CONFIG`` (or ``msadam.toml`` in the working directory), then ``"numpy"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pluggy

from msadam import hookspecs
from msadam.backend import Backend, BackendSpec

__all__ = [
    "BackendStatus",
    "available_backends",
    "backend_for_array",
    "backend_status",
    "current_backend",
    "get_backend",
    "load_backend",
    "reset",
    "set_backend",
    "use_backend",
]

ENTRY_POINT_GROUP = "msadam.backends"
BUILTIN_PLUGINS = ("msadam.backends.numpy_backend",)
DEFAULT_BACKEND = "numpy"
ENV_BACKEND = "MSADAM_BACKEND"
ENV_CONFIG = "MSADAM_CONFIG"
CONFIG_FILE = "msadam.toml"


@dataclass(frozen=True)
class BackendStatus:
    """What ``msadam backends`` reports for one backend."""

    name: str
    plugin: str
    ok: bool
    version: str | None = None
    devices: tuple[str, ...] = ()
    error: str | None = None


class _Registry:
    """Plugin manager, discovered specs, loaded backends and load failures (built once)."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("msadam")
        self.manager.add_hookspecs(hookspecs)
        self.plugin_errors: dict[str, str] = {}  # plugin -> why it could not be registered
        self.specs: dict[str, BackendSpec] = {}
        self.spec_plugin: dict[str, str] = {}
        self.loaded: dict[str, Backend] = {}
        self.load_errors: dict[str, str] = {}
        for module_name in BUILTIN_PLUGINS:
            self._register(module_name, lambda m=module_name: importlib.import_module(m))
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            self._register(f"{entry_point.name} ({entry_point.value})", entry_point.load)
        self._collect_specs()

    def _register(self, label: str, load: object) -> None:
        try:
            plugin = load()  # type: ignore[operator]
            if not self.manager.is_registered(plugin):
                self.manager.register(plugin, name=label)
        except Exception as exc:  # a broken plugin must never break the others
            self.plugin_errors[label] = f"{type(exc).__name__}: {exc}"

    def _collect_specs(self) -> None:
        # Each implementation is called on its own so that one raising hook cannot hide the others.
        for impl in self.manager.hook.msadam_backends.get_hookimpls():
            try:
                specs = list(impl.function())
            except Exception as exc:
                self.plugin_errors[impl.plugin_name] = f"msadam_backends raised {type(exc).__name__}: {exc}"
                continue
            for spec in specs:
                if spec.name not in self.specs or spec.priority < self.specs[spec.name].priority:
                    self.specs[spec.name] = spec
                    self.spec_plugin[spec.name] = impl.plugin_name

    def load(self, name: str) -> Backend:
        if name in self.loaded:
            return self.loaded[name]
        if name not in self.specs:
            raise ValueError(
                f"Unknown msadam backend {name!r}. Installed backends: {', '.join(self.available())}."
                + self._failure_summary()
            )
        if name in self.load_errors:
            raise ValueError(f"msadam backend {name!r} is installed but cannot be used: {self.load_errors[name]}")
        try:
            backend = self.specs[name].load()
        except Exception as exc:
            self.load_errors[name] = f"{type(exc).__name__}: {exc}"
            raise ValueError(
                f"msadam backend {name!r} is installed but cannot be used: {self.load_errors[name]}"
            ) from exc
        self.loaded[name] = backend
        return backend

    def available(self) -> list[str]:
        names = []
        for name in sorted(self.specs, key=lambda n: (n != DEFAULT_BACKEND, n)):
            with contextlib.suppress(ValueError):
                self.load(name)
                names.append(name)
        return names

    def _failure_summary(self) -> str:
        broken = {**self.plugin_errors, **self.load_errors}
        if not broken:
            return ""
        return " Not usable: " + "; ".join(f"{k} ({v})" for k, v in sorted(broken.items())) + "."


_lock = threading.Lock()
_registry: _Registry | None = None
_global_choice: str | None = None
_context_choice: contextvars.ContextVar[str | None] = contextvars.ContextVar("msadam_backend", default=None)


def _get() -> _Registry:
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = _Registry()
    return _registry


def reset() -> None:
    """Forget discovered plugins and loaded backends (rediscovered on next use). For tests."""
    global _registry, _global_choice
    with _lock:
        _registry = None
        _global_choice = None


def plugin_manager() -> pluggy.PluginManager:
    """The (lazily built) pluggy plugin manager."""
    return _get().manager


def available_backends() -> list[str]:
    """Names of the installed backends that import and load, ``"numpy"`` first."""
    return _get().available()


def backend_status() -> list[BackendStatus]:
    """One entry per discovered backend, and per plugin that failed before announcing any."""
    registry = _get()
    statuses = []
    for name in sorted(registry.specs, key=lambda n: (n != DEFAULT_BACKEND, n)):
        plugin = registry.spec_plugin[name]
        try:
            backend = registry.load(name)
            statuses.append(
                BackendStatus(name, plugin, True, backend.version(), tuple(backend.devices()))
            )
        except ValueError:
            statuses.append(BackendStatus(name, plugin, False, error=registry.load_errors.get(name)))
    for plugin, error in sorted(registry.plugin_errors.items()):
        statuses.append(BackendStatus(f"<{plugin}>", plugin, False, error=error))
    return statuses


def load_backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the installed ones if it is unknown or broken."""
    if not isinstance(name, str):
        raise TypeError(f"A backend name must be str, but got {type(name).__name__}.")
    return _get().load(name)


def _configured_choice() -> tuple[str, str] | None:
    env = os.environ.get(ENV_BACKEND)
    if env:
        return env, f"${ENV_BACKEND}"
    config_path = os.environ.get(ENV_CONFIG)
    path = Path(config_path) if config_path else Path.cwd() / CONFIG_FILE
    if not path.is_file():
        if config_path:
            raise ValueError(f"${ENV_CONFIG} names {config_path!r}, which is not a file.")
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"Cannot read msadam configuration {str(path)!r}: {exc}") from exc
    choice = table.get("tool", {}).get("msadam", {}).get("backend")
    if choice is None:
        return None
    if not isinstance(choice, str):
        raise ValueError(f"{path}: [tool.msadam] backend must be a string, got {choice!r}.")
    return choice, str(path)


def get_backend() -> str:
    """The name of the backend new parameters take, by the precedence in this module's docstring."""
    for choice in (_context_choice.get(), _global_choice):
        if choice is not None:
            return choice
    configured = _configured_choice()
    return configured[0] if configured else DEFAULT_BACKEND


def current_backend() -> Backend:
    """The :class:`Backend` object :func:`get_backend` names."""
    return load_backend(get_backend())


def set_backend(name: str | None) -> None:
    """Choose the backend for the whole process (``None`` returns to configuration)."""
    global _global_choice
    if name is not None:
        load_backend(name)  # validate before changing anything
    _global_choice = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """``with msadam.use_backend("torch"): ...`` — the backend inside the block (this context only)."""
    backend = load_backend(name)
    token = _context_choice.set(name)
    try:
        yield backend
    finally:
        _context_choice.reset(token)


def backend_for_array(array: object) -> Backend | None:
    """The backend owning a native array, or ``None`` for host values (NumPy, Python numbers).

    Found by the array type's top-level module, so no framework is imported to answer.
    """
    module = type(array).__module__.partition(".")[0]
    if module in ("numpy", "builtins", "msadam"):
        return None
    registry = _get()
    for name, spec in registry.specs.items():
        if module in spec.array_modules:
            backend = registry.load(name)
            if backend.owns(array):
                return backend
    return None
