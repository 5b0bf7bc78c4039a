"""The README's Python examples run as written, in order, and do what their comments say."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        if "import torch" in block and importlib.util.find_spec("torch") is None:
            continue  # the PyTorch example needs the optional backend
        exec(compile(block, str(README), "exec"), namespace)  # our own documentation
    state = namespace["state"]
    assert isinstance(state, dict)
    assert list(state)[:4] == ["global_step", "embedding", "beta1_power", "beta2_power"]
    assert state["global_step"].tolist() == [1]
    assert np.count_nonzero(state["embedding"].any(axis=1)) == 2  # lazy + fused: rows 3 and 7 only
    if "torch_opt" in namespace:  # the PyTorch example: named parameters give MindSpore-style state names
        names = sorted(namespace["torch_opt"].mindspore_state_dict())  # type: ignore[attr-defined]
        assert names[:3] == ["0.bias", "0.weight", "1.bias"]
        assert "moment1.1.weight" in names and "global_step" in names
