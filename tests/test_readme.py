"""The README's Python examples run as written, in order, and do what their comments say."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write checkpoints
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        if "import torch" in block and importlib.util.find_spec("torch") is None:
            continue  # the PyTorch example needs the optional backend
        if "import jax" in block and importlib.util.find_spec("optax") is None:
            continue  # so does the JAX one
        if "import msadam_compat" in block and importlib.util.find_spec("msadam_compat") is None:
            continue  # and the compat one its distribution
        exec(compile(block, str(README), "exec"), namespace)  # our own documentation
    state = namespace["state"]
    assert isinstance(state, dict)
    assert list(state)[:5] == ["global_step", "learning_rate", "embedding", "beta1_power", "beta2_power"]
    assert state["global_step"].tolist() == [1]
    assert np.count_nonzero(state["embedding"].any(axis=1)) == 2  # lazy + fused: rows 3 and 7 only
    if "jax_state" in namespace:  # the JAX example: pytree paths are the names, the state is MindSpore's
        import msadam_jax

        names = list(msadam_jax.to_mindspore(namespace["jax_state"]))  # type: ignore[arg-type]
        assert names[:3] == ["global_step", "beta1_power", "beta2_power"]
        assert names[-1] == "moment2.dense.kernel" and "moment1.LayerNorm_0.gamma" in names
    if "adam" in namespace:  # the compat example: MindSpore's checkpoint of the optimizer, every entry
        compat = importlib.import_module("msadam_compat")
        saved = compat.load_checkpoint("adam.ckpt")
        assert list(saved) == ["global_step", "fc.weight", "beta1_power", "beta2_power", "moment1.fc.weight",
                               "moment2.fc.weight", "learning_rate"]
        assert saved["global_step"].asnumpy().tolist() == [1]
    if "torch_opt" in namespace:  # the PyTorch example: named parameters give MindSpore-style state names
        names = sorted(namespace["torch_opt"].mindspore_state_dict())  # type: ignore[attr-defined]
        assert names[:3] == ["0.bias", "0.weight", "1.bias"]
        assert "moment1.1.weight" in names and "global_step" in names
