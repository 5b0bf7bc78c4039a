"""msadam's pytest plugin (``pytest11`` entry point): the ``msadam_backend`` fixture and ``--msadam-backends``.

Each test runs an inner pytest session in a subprocess (``pytester.runpytest_subprocess``), so the
plugin is loaded as a user's pytest loads it: through its entry point.
"""

from __future__ import annotations

import re

import pytest

import msadam

pytest_plugins = ["pytester"]

USER_TEST = """
import numpy as np
import msadam

def test_a_step_moves_the_parameter(msadam_backend):
    param = msadam.Parameter(np.ones(3, np.float32), name="w", backend=msadam_backend)
    msadam.Adam([param], learning_rate=0.1)((np.ones(3, np.float32),))
    assert np.all(param.asnumpy() < 1.0)
    print("RAN", msadam_backend)
"""


def _ran(result: pytest.RunResult) -> list[str]:
    """The backends the inner test printed (``-s``: after the file name on pytest's progress line)."""
    return sorted(re.findall(r"RAN (\S+)", "\n".join(result.outlines)))


def test_the_fixture_runs_a_test_on_every_installed_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(msadam.available_backends()))
    assert _ran(result) == sorted(msadam.available_backends())


def test_the_option_narrows_the_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess("-s", "--msadam-backends", "numpy", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert _ran(result) == ["numpy"]


def test_the_environment_variable_narrows_the_backends(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADAM_TEST_BACKENDS", "numpy")
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    assert _ran(result) == ["numpy"]


@pytest.mark.parametrize("names", ["nope", "numpy,nope", " , "])
def test_a_backend_that_is_not_installed_is_an_error_not_zero_tests(pytester: pytest.Pytester, names: str) -> None:
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess("--msadam-backends", names, "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--msadam-backends*installed: numpy*"])


def test_tests_without_the_fixture_are_not_parametrized(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("--msadam-backends", "numpy", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
