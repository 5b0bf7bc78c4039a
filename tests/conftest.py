"""Shared fixtures: every backend-dependent test runs once per installed backend (msadam's pytest plugin)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from types import ModuleType

import numpy as np
import pytest

# MindSpore writes rank_0/ into the working directory when a graph compile fails; keep it out.
os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp(prefix="msadam-ms-om-"))
os.environ.setdefault("GLOG_v", "3")
# TensorFlow's C++ start-up notices go to stderr whatever the log level, unless oneDNN's is off too;
# the CLI tests check that msadam itself writes nothing there (our kernels give the same bits either way).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture
def backend_name(msadam_backend: str) -> str:
    """The backend under test: msadam's own pytest plugin (``msadam.pytest_plugin``) parametrizes
    ``msadam_backend`` over the installed backends, or those ``--msadam-backends`` names."""
    return msadam_backend


@pytest.fixture(scope="session")
def mindspore() -> ModuleType:
    """Real MindSpore in this process (the oracle), imported quietly, or skip.

    MindSpore 2.10 is built against NumPy 1: under NumPy 2 the first ``reshape`` of a process raises
    ``SystemError``, so one throwaway reshape absorbs it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = pytest.importorskip("mindspore")
    with contextlib.suppress(SystemError):
        module.Tensor(np.ones(1, np.float32)).reshape(())
    return module
