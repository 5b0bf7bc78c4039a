"""Importing MindSpore the way every process needs it, and the one kernel its CPU build lacks.

Nothing here imports MindSpore at module level: :func:`prepare_environment` only sets environment
variables, :func:`import_mindspore` imports it. Three start-up pitfalls of MindSpore 2.10 on a
CPU machine (the same ones ``tests/golden/record_trajectories.py`` handles):

* **Logging.** Unless ``GLOG_v`` is set before the import, MindSpore's C++ side writes warnings to
  stderr; ``GLOG_v=3`` (errors only) is the default here.
* **Stray files.** A failed graph compile writes ``rank_0/`` (its ``om`` dump) into the working
  directory unless ``MS_OM_PATH`` names another folder; the default here is a per-user folder in
  the system's temporary directory.
* **NumPy 2.** MindSpore 2.10 is built against NumPy 1: the first tensor operation after the
  import raises ``SystemError`` (after NumPy prints a long notice) and every later one works. One
  throwaway ``Tensor(...).reshape(())`` absorbs it, its notice kept off stderr.

Gradient centralization (``Optimizer.gradients_centralization``) calls the module global ``op_gc``
of ``mindspore/nn/optim/optimizer.py`` (line 845: ``op_gc = inner.Centralization()``; called at
lines 883 and 899), a kernel that exists only on Ascend: on CPU and GPU, MindSpore's own optimizer
fails to compile a centralized group. :func:`install_centralization` replaces that global with
:class:`msadam_mindspore.centralization.Centralization`, the same formula
(``g - mean(g, axes 1..ndim-1)``) in portable ops. The call site, and so the order decay ->
centralization -> loss scale, stays MindSpore's (``Adam.construct``, ``mindspore/nn/optim/adam.py``
lines 807-810). This is an *emulation* of Ascend's kernel, the only part of a step here that is not
MindSpore's own code; it is the golden recorder's ``_Centralization`` (whose order its
``check_centralization_order`` proves), and the golden ``grad-centralization`` trajectory, recorded
with it, is reproduced bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from types import ModuleType

import numpy as np

__all__ = ["import_mindspore", "install_centralization", "prepare_environment"]

_LOCK = threading.Lock()
_ready = False


def prepare_environment() -> None:
    """``GLOG_v=3`` and ``MS_OM_PATH`` (a per-user temporary folder), unless already set."""
    os.environ.setdefault("GLOG_v", "3")
    if "MS_OM_PATH" not in os.environ:
        uid = getattr(os, "getuid", lambda: 0)()
        folder = os.path.join(tempfile.gettempdir(), f"msadam-mindspore-om-{uid}")
        os.makedirs(folder, exist_ok=True)
        os.environ["MS_OM_PATH"] = folder


def import_mindspore() -> ModuleType:
    """``mindspore``, imported after :func:`prepare_environment`, with the NumPy-2 workaround done
    and :func:`install_centralization` applied (once per process)."""
    global _ready
    prepare_environment()
    import mindspore

    with _LOCK:
        if not _ready:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemError):
                mindspore.Tensor(np.ones(1, np.float32)).reshape(())
            install_centralization()
            _ready = True
    return mindspore


def install_centralization(force: bool = False) -> bool:
    """Replace ``mindspore.nn.optim.optimizer.op_gc`` by the emulation; ``True`` if it is in place.

    On Ascend, whose ``Centralization`` kernel exists, nothing is replaced unless ``force``.
    Idempotent: an emulation already in place is left alone.
    """
    import mindspore
    from mindspore.nn.optim import optimizer

    from msadam_mindspore.centralization import Centralization

    if isinstance(optimizer.op_gc, Centralization):
        return True
    if mindspore.get_context("device_target") == "Ascend" and not force:
        return False
    optimizer.op_gc = Centralization()
    return True
