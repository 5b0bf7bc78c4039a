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
import functools
import importlib
import os
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pluggy

from msadam import hookspecs
from msadam.backend import Backend, BackendSpec

__all__ = [
    "BackendStatus",
    "available_backends",
    "backend_choice",
    "backend_for_array",
    "backend_status",
    "current_backend",
    "get_backend",
    "load_backend",
    "plugin_manager",
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

# Where a backend choice came from (the second element of :func:`backend_choice`), besides a path.
SOURCE_CONTEXT = "use_backend"
SOURCE_GLOBAL = "set_backend"
SOURCE_ENV = f"${ENV_BACKEND}"
SOURCE_DEFAULT = "default"


def _protocol_members() -> list[str]:
    """The attributes and methods :class:`Backend` declares (to tell a plugin author what is missing)."""
    names = set(getattr(Backend, "__annotations__", {}))
    names.update(name for name, value in vars(Backend).items() if not name.startswith("_") and callable(value))
    return sorted(names)


@dataclass(frozen=True)
class BackendStatus:
    """What ``msadam backends`` reports for one backend (or one plugin that failed before announcing any).

    ``plugin`` is the plugin's name in the plugin manager (``"<entry point> (<module>)"`` for an
    entry point), ``distribution`` the installed distribution that provides it, when known.
    """

    name: str
    plugin: str
    ok: bool
    version: str | None = None
    devices: tuple[str, ...] = ()
    error: str | None = None
    distribution: str | None = None


# What a plugin may raise without taking msadam down: any Exception, and SystemExit (a plugin that calls
# sys.exit() while being imported, announced or loaded fails alone). KeyboardInterrupt still stops everything.
PLUGIN_ERRORS = (Exception, SystemExit)


def _describe(exc: BaseException) -> str:
    """``"TypeName: message"`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_backend(name: str, backend: object) -> Backend:
    """``backend`` if it implements :class:`Backend` under ``name``, else ``TypeError`` saying why not."""
    missing = [member for member in _protocol_members() if not hasattr(backend, member)]
    if missing or not isinstance(backend, Backend):
        raise TypeError(
            f"load() returned {type(backend).__name__}, which does not implement msadam.backend.Backend "
            f"(missing: {', '.join(missing) or '?'})."
        )
    if backend.name != name:
        raise TypeError(f"load() returned a backend named {backend.name!r}, but the spec names it {name!r}.")
    backend.version()  # what `msadam backends` reports must work too (devices() may be costly)
    return backend


def _valid_specs(result: object) -> list[BackendSpec] | str:
    """The specs a ``msadam_backends`` implementation returned, or what is wrong with them."""
    if not isinstance(result, list | tuple):
        return f"{type(result).__name__}, not a list of msadam.backend.BackendSpec"
    for spec in result:
        if not isinstance(spec, BackendSpec):
            return f"{spec!r}, which is not a msadam.backend.BackendSpec"
        if not isinstance(spec.name, str) or not spec.name:
            return f"a BackendSpec with an invalid name {spec.name!r}"
    return list(result)


class _Registry:
    """Plugin manager, discovered specs, loaded backends and load failures (built once)."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("msadam")
        self.manager.add_hookspecs(hookspecs)
        self.plugin_errors: dict[str, str] = {}  # plugin -> why it could not be registered
        self.plugin_dist: dict[str, str | None] = {}  # plugin -> the distribution providing it
        self.specs: dict[str, BackendSpec] = {}
        self.spec_plugin: dict[str, str] = {}
        self.loaded: dict[str, Backend] = {}
        self.load_errors: dict[str, str] = {}
        self._load_exceptions: dict[str, BaseException] = {}  # chained to the ValueError, for debugging
        self._load_lock = threading.RLock()
        for module_name in BUILTIN_PLUGINS:
            self._register(module_name, functools.partial(importlib.import_module, module_name), "msadam")
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist.name if entry_point.dist is not None else None
            self._register(f"{entry_point.name} ({entry_point.value})", entry_point.load, dist)
        self._collect_specs()

    def _register(self, label: str, load: Callable[[], object], distribution: str | None) -> None:
        try:
            plugin = load()
            if self.manager.is_registered(plugin):
                return  # e.g. the built-in NumPy module, also declared as an entry point
            self.manager.register(plugin, name=label)
            self.plugin_dist[label] = distribution
            callers = self.manager.get_hookcallers(plugin) or []
            if not any(caller.has_spec() for caller in callers):  # hooks of a newer msadam are ignored
                self.manager.unregister(plugin)
                unknown = ", ".join(sorted(caller.name for caller in callers))
                raise TypeError(
                    "implements no msadam hook (is msadam_backends decorated with msadam.hookspecs.hookimpl?)"
                    + (f"; unknown hooks: {unknown}" if unknown else "")
                )
        except PLUGIN_ERRORS as exc:  # a broken plugin must never break the others
            self.plugin_dist[label] = distribution
            self.plugin_errors[label] = _describe(exc)

    def _collect_specs(self) -> None:
        # Each implementation is called on its own so that one raising hook cannot hide the others.
        for impl in self.manager.hook.msadam_backends.get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                continue
            try:
                result = impl.function()
            except PLUGIN_ERRORS as exc:
                self.plugin_errors[impl.plugin_name] = f"msadam_backends raised {_describe(exc)}"
                continue
            specs = _valid_specs(result)
            if isinstance(specs, str):
                self.plugin_errors[impl.plugin_name] = f"msadam_backends returned {specs}"
                continue
            for spec in specs:  # the smallest priority wins; on a tie, the first registered
                if spec.name not in self.specs or spec.priority < self.specs[spec.name].priority:
                    self.specs[spec.name] = spec
                    self.spec_plugin[spec.name] = impl.plugin_name

    def load(self, name: str) -> Backend:
        with self._load_lock:
            if name in self.loaded:
                return self.loaded[name]
            if name not in self.specs:
                raise ValueError(
                    f"Unknown msadam backend {name!r}. Installed backends: {', '.join(self.available())}."
                    + self._failure_summary()
                )
            if name not in self.load_errors:
                try:
                    self.loaded[name] = _check_backend(name, self.specs[name].load())
                    return self.loaded[name]
                except PLUGIN_ERRORS as exc:
                    self.load_errors[name] = _describe(exc)
                    self._load_exceptions[name] = exc
            raise ValueError(
                f"msadam backend {name!r} is installed but cannot be used: {self.load_errors[name]}"
            ) from self._load_exceptions.get(name)

    def available(self) -> list[str]:
        names = []
        for name in self.ordered_names():
            with contextlib.suppress(ValueError):
                self.load(name)
                names.append(name)
        return names

    def ordered_names(self) -> list[str]:
        return sorted(self.specs, key=lambda n: (n != DEFAULT_BACKEND, n))

    def distribution(self, name: str) -> str | None:
        plugin = self.spec_plugin[name]
        return self.specs[name].distribution or self.plugin_dist.get(plugin)

    def _failure_summary(self) -> str:
        broken = {**self.plugin_errors, **self.load_errors}
        if not broken:
            return ""
        return " Not usable: " + "; ".join(f"{k} ({v})" for k, v in sorted(broken.items())) + "."


_lock = threading.RLock()
_building = False
_registry: _Registry | None = None
_global_choice: str | None = None
_context_choice: contextvars.ContextVar[str | None] = contextvars.ContextVar("msadam_backend", default=None)


def _get() -> _Registry:
    global _registry, _building
    if _registry is None:
        with _lock:
            if _building:  # a plugin queried the registry while being imported
                raise RuntimeError("msadam's backends cannot be queried while plugins are being discovered.")
            if _registry is None:
                _building = True
                try:
                    _registry = _Registry()
                finally:
                    _building = False
    return _registry


def reset() -> None:
    """Forget discovered plugins, loaded backends and the :func:`set_backend` choice. For tests."""
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
    """One entry per discovered backend, and per plugin that failed before announcing any.

    Loads every backend (importing its framework) to report its version and devices; never raises
    for a broken plugin or backend.
    """
    registry = _get()
    statuses = []
    for name in registry.ordered_names():
        plugin, dist = registry.spec_plugin[name], registry.distribution(name)
        try:
            backend = registry.load(name)
            version, devices = str(backend.version()), tuple(map(str, backend.devices()))
        except ValueError:
            error = registry.load_errors.get(name)
            statuses.append(BackendStatus(name, plugin, False, error=error, distribution=dist))
        except PLUGIN_ERRORS as exc:  # version() or devices() failed: report it, never raise
            statuses.append(BackendStatus(name, plugin, False, error=_describe(exc), distribution=dist))
        else:
            statuses.append(BackendStatus(name, plugin, True, version, devices, distribution=dist))
    for plugin, error in sorted(registry.plugin_errors.items()):
        dist = registry.plugin_dist.get(plugin)
        statuses.append(BackendStatus(f"<{plugin}>", plugin, False, error=error, distribution=dist))
    return statuses


def load_backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the installed ones if it is unknown or broken."""
    if not isinstance(name, str):
        raise TypeError(f"A backend name must be str, but got {type(name).__name__}.")
    return _get().load(name)


def _configured_choice() -> tuple[str, str] | None:
    env = os.environ.get(ENV_BACKEND)
    if env:
        return env, SOURCE_ENV
    config_path = os.environ.get(ENV_CONFIG)
    path = Path(config_path) if config_path else Path.cwd() / CONFIG_FILE
    if not path.is_file():
        if config_path:
            raise ValueError(f"${ENV_CONFIG} names {config_path!r}, which is not a file.")
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"Cannot read msadam configuration {str(path)!r}: {exc}") from exc
    tool = table.get("tool", {})
    section = tool.get("msadam", {}) if isinstance(tool, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{path}: [tool.msadam] must be a table.")
    choice = section.get("backend")
    if choice is None:
        return None
    if not isinstance(choice, str) or not choice:
        raise ValueError(f"{path}: [tool.msadam] backend must be a non-empty string, got {choice!r}.")
    return choice, str(path)


def backend_choice() -> tuple[str, str]:
    """The backend new parameters take and where that choice comes from.

    The source is ``"use_backend"``, ``"set_backend"``, ``"$MSADAM_BACKEND"``, the path of the
    configuration file, or ``"default"``. ``ValueError`` if the configuration file cannot be read.
    """
    for choice, source in ((_context_choice.get(), SOURCE_CONTEXT), (_global_choice, SOURCE_GLOBAL)):
        if choice is not None:
            return choice, source
    return _configured_choice() or (DEFAULT_BACKEND, SOURCE_DEFAULT)


def get_backend() -> str:
    """The name of the backend new parameters take, by the precedence in this module's docstring."""
    return backend_choice()[0]


def current_backend() -> Backend:
    """The :class:`Backend` object :func:`get_backend` names (the error says which setting chose it)."""
    name, source = backend_choice()
    try:
        return load_backend(name)
    except ValueError as exc:
        if source in (SOURCE_CONTEXT, SOURCE_GLOBAL, SOURCE_DEFAULT):
            raise
        raise ValueError(f"{exc} (backend {name!r} chosen by {source})") from None


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
            # A backend that cannot load, or whose owns() fails, does not own the array: another backend of
            # the same framework may (a broken plugin never takes the arrays of a working one).
            try:
                backend = registry.load(name)
                if backend.owns(array):
                    return backend
            except PLUGIN_ERRORS:
                continue
    return None
