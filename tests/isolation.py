"""Running Python in a subprocess that cannot see MindSpore (for ``msadam_compat.install()``)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def environment_without_mindspore(folder: Path) -> dict[str, str]:
    """Environment variables for ``python -S``: every installed package but MindSpore, via symlinks in ``folder``.

    ``-S`` skips site-packages (and its ``.pth`` files), so the repository's packages are put on
    ``PYTHONPATH`` directly.
    """
    site = Path(sysconfig.get_paths()["purelib"])
    hidden = folder / "site"
    hidden.mkdir(parents=True)
    for entry in site.iterdir():
        if not entry.name.lower().startswith("mindspore") and not entry.name.startswith("__editable__"):
            (hidden / entry.name).symlink_to(entry)
    path = [str(REPO), str(REPO / "compat"), *(str(p.parent) for p in REPO.glob("backends/*/msadam_*/")), str(hidden)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def run_without_mindspore(code: str, folder: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -S`` in an environment where ``import mindspore`` finds nothing."""
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=300,
                          env=environment_without_mindspore(folder), cwd=cwd or REPO)
