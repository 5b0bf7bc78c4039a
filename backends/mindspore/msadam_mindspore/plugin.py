"""The ``msadam.backends`` entry point of msadam-mindspore: announces the backend without importing MindSpore."""

from __future__ import annotations

from msadam.backend import Backend, BackendSpec
from msadam.hookspecs import hookimpl


def _load() -> Backend:
    from msadam_mindspore.backend import MindSporeBackend  # imports mindspore: only when first used

    return MindSporeBackend()


@hookimpl
def msadam_backends() -> list[BackendSpec]:
    """The MindSpore backend: real ``mindspore.nn.Adam`` steps, the parity oracle.

    Its arrays are ``mindspore.Tensor`` (module ``mindspore.common.tensor``) and
    ``mindspore.Parameter``. MindSpore builds each Parameter's class at run time
    (``Parameter.__new__`` in ``mindspore/common/parameter.py``), and that class reports the module
    ``abc``: it is listed too, and ``owns`` (an ``isinstance`` check) settles any other ``abc`` type.
    """
    return [BackendSpec("mindspore", _load, array_modules=("mindspore", "abc"), distribution="msadam-mindspore")]
