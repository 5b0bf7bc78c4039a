"""Shared fixtures: every backend-dependent test runs once per installed backend."""

from __future__ import annotations

import os
import tempfile

import pytest

# MindSpore writes rank_0/ into the working directory when a graph compile fails; keep it out.
os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp(prefix="msadam-ms-om-"))
os.environ.setdefault("GLOG_v", "3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        import msadam

        metafunc.parametrize("backend_name", msadam.available_backends())
