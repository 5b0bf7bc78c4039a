"""Hook specifications for msadam plugins (pluggy, project name ``"msadam"``).

A backend distribution exposes a module (or object) under the ``msadam.backends`` entry-point
group that implements these hooks with ``msadam.hookimpl``. The built-in NumPy backend
registers through the same hooks.
"""

from __future__ import annotations

import pluggy

from msadam.backend import BackendSpec

hookspec = pluggy.HookspecMarker("msadam")
hookimpl = pluggy.HookimplMarker("msadam")


@hookspec
def msadam_backends() -> list[BackendSpec]:  # type: ignore[empty-body]
    """Return the backends this plugin provides.

    Must not import the framework: a :class:`~msadam.backend.BackendSpec` names the backend and
    carries a ``load`` callable that does the import when the backend is first used.
    """
