"""Hook specifications for msadam plugins (pluggy, project name ``"msadam"``).

A backend distribution exposes a module (or object) under the ``msadam.backends`` entry-point
group that implements these hooks with ``msadam.hookimpl``. The built-in NumPy backend
registers through the same hooks.
"""

from __future__ import annotations

import pluggy

from msadam.backend import BackendSpec
from msadam.benchmarking.baseline import BenchBaseline

hookspec = pluggy.HookspecMarker("msadam")
hookimpl = pluggy.HookimplMarker("msadam")


@hookspec
def msadam_backends() -> list[BackendSpec]:  # type: ignore[empty-body]
    """Return the backends this plugin provides, as a list of [`BackendSpec`][msadam.backend.BackendSpec].

    Must not import the framework: a spec names the backend and carries a ``load`` callable that
    does the import when the backend is first used. Called once per discovery; an exception, or a
    result that is not a list of specs, is reported by ``msadam backends`` and never breaks the
    other plugins. When two specs share a name, the one with the smallest ``priority`` wins.
    See docs/backend-authors.md.
    """


@hookspec
def msadam_bench_baselines() -> list[BenchBaseline]:  # type: ignore[empty-body]
    """Return the frameworks' own optimizers ``msadam bench`` times next to ``msadam.Adam``.

    A list of [`BenchBaseline`][msadam.benchmarking.BenchBaseline]: each names the msadam backend it pairs
    with, a label, and a factory that, given the parameters and gradients as float32 NumPy arrays,
    returns a [`BenchStep`][msadam.benchmarking.BenchStep] (one step; an optional ``sync`` that waits for
    asynchronous work). Must not import the framework: the factory does, when called. Optional:
    a plugin may implement only this hook, to add a baseline for someone else's backend. An
    exception, or a result that is not such a list, is reported by ``msadam bench`` and never hides
    the other plugins' baselines. See docs/backend-authors.md.
    """
