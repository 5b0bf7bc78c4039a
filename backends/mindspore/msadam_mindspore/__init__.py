"""msadam-mindspore: real ``mindspore.nn.Adam`` behind msadam's Backend protocol (the parity oracle).

``msadam.use_backend("mindspore")`` or ``msadam.Parameter(..., backend="mindspore")`` runs every
step of ``msadam.Adam`` through MindSpore's own optimizer, so its numbers *are* MindSpore's. See
:mod:`msadam_mindspore.backend` for how the Backend protocol is mapped onto ``mindspore.nn.Adam``.
Importing this package does not import MindSpore: the names below load on first use, and fail
then, clearly, when MindSpore is not installed.

>>> import msadam, numpy as np                                              # doctest: +SKIP
>>> w = msadam.Parameter(np.ones((2, 3), np.float32), name="w", backend="mindspore")  # doctest: +SKIP
>>> msadam.Adam([w], learning_rate=0.1)((np.full((2, 3), 0.5, np.float32),))        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from msadam.lazy import lazy_names

__version__ = "0.1.0"

# Public names that need MindSpore, the module that defines each, and the packages it imports.
_LAZY = {
    "MindSporeBackend": ("msadam_mindspore.backend", ("mindspore",)),
    "import_mindspore": ("msadam_mindspore.runtime", ()),  # imports mindspore when called
    "install_centralization": ("msadam_mindspore.runtime", ("mindspore",)),
    "row_tensor": ("msadam_mindspore.backend", ("mindspore",)),
}

__all__ = ["MindSporeBackend", "__version__", "import_mindspore", "install_centralization", "row_tensor"]

INSTALL_HINT = 'pip install "msadam-mindspore[mindspore]"  (or: pip install mindspore==2.10.0)'


_lazy_getattr, __dir__ = lazy_names("msadam_mindspore", globals(), _LAZY, INSTALL_HINT)


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # MindSpore reads its logging/output settings when imported: set them first
        from msadam_mindspore.runtime import prepare_environment

        prepare_environment()
    return _lazy_getattr(name)
