"""msadam's pytest plugin (the ``pytest11`` entry point ``msadam``): one test, every installed backend.

A test that asks for the ``msadam_backend`` fixture runs once per msadam backend installed and
loadable in the environment (``msadam.available_backends()``: ``numpy`` first, then ``torch``,
``jax``, ``tensorflow``, ``mindspore``, third-party plugins), with the backend's name as the value:

    def test_my_model_steps_like_mindspore(msadam_backend):
        params = [msadam.Parameter(w, name="w", backend=msadam_backend)]
        ...

``--msadam-backends torch,jax`` narrows the run to those backends (a name that is not installed is
a usage error naming the installed ones, so a typo never passes silently as zero tests);
``$MSADAM_TEST_BACKENDS`` does the same when the option is not given. The plugin imports no
framework: backends load when a parametrized test first uses them.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["ENV_TEST_BACKENDS", "FIXTURE", "OPTION", "selected_backends"]

FIXTURE = "msadam_backend"
OPTION = "--msadam-backends"
ENV_TEST_BACKENDS = "MSADAM_TEST_BACKENDS"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("msadam")
    group.addoption(OPTION, action="store", default=None, metavar="NAMES",
                    help="comma-separated msadam backends for tests using the 'msadam_backend' fixture "
                         f"(default: ${ENV_TEST_BACKENDS}, else every installed backend)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{FIXTURE}: parametrized over the installed msadam backends")


def selected_backends(requested: str | None) -> list[str]:
    """The backends to run: ``requested`` (comma-separated) checked against the installed ones, or all.

    Raises ``pytest.UsageError`` for an empty selection or a name that is not installed.
    """
    import msadam

    installed = msadam.available_backends()
    if requested is None:
        return installed
    names = [name.strip() for name in requested.split(",") if name.strip()]
    if not names:
        raise pytest.UsageError(f"{OPTION} names no backend; installed: {', '.join(installed)}.")
    unknown = [name for name in names if name not in installed]
    if unknown:
        raise pytest.UsageError(f"{OPTION}: {', '.join(unknown)} not installed (or failed to load); "
                                f"installed: {', '.join(installed)}. See 'msadam backends'.")
    return list(dict.fromkeys(names))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE not in metafunc.fixturenames:
        return
    requested = metafunc.config.getoption(OPTION) or os.environ.get(ENV_TEST_BACKENDS) or None
    metafunc.parametrize(FIXTURE, selected_backends(requested))
