"""examples/: the MindSpore training script and its torch, JAX and Keras ports, run for a few steps.

* Only the lines between ``framework`` markers differ between the four scripts.
* Each port's loss curve follows real MindSpore's (the original, run in a subprocess), within
  :data:`LOSS_ATOL`; its checkpoint holds MindSpore's optimizer state: the step, beta powers,
  learning rates and loss-scale state bit for bit, the weights and moments within float32 noise.
* Saving at step :data:`SPLIT` and resuming gives the uninterrupted run exactly, in every framework.
* Checkpoints move between frameworks: MindSpore resumes a torch or JAX checkpoint and vice versa.

The tolerance. All four start from the same weights and see the same batches, and the optimizer's
arithmetic is MindSpore's exactly; what differs is the forward and backward pass, which each
framework rounds its own way in float32 (matmul summation order, log-softmax and LayerNorm
formulations). At step 0 that alone puts the losses 1-2 ulp apart (up to 2.4e-7). Adam's
normalized step (``m / (sqrt(v) + eps)``) does not amplify gradient rounding, so the gap stays at
that level: measured on the full 80-step schedule, at most 4.8e-7 absolute (1.2e-6 relative at the
final loss of 0.049) for torch, JAX and Keras alike; over the :data:`STEPS` steps run here, 4.8e-7.
``LOSS_ATOL = 2e-6`` leaves a 4x margin for other CPUs and library builds and still catches a real
mistake: decaying the LayerNorm's gamma/beta (a wrong name map) is 2.5e-3 off by step 12, an
off-by-one learning rate far more. The checkpoint tolerances are measured the same way (weights
within 4e-7, moments within 1.1e-6 of the largest element at step 16).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BEGIN, END = "# --- framework: begin ---", "# --- framework: end ---"
SCRIPTS = ("mindspore", "torch", "jax", "keras")
#: What each port imports besides msadam_compat.
REQUIREMENTS = {"torch": ("torch", "msadam_torch"), "jax": ("jax", "msadam_jax"),
                "keras": ("tensorflow", "keras", "msadam_tensorflow")}
#: Ports whose checkpoints use MindSpore's names and layouts (Keras's Dense kernel is (in, out)).
INTERCHANGEABLE = ("torch", "jax")
STEPS = 12  # one and a half epochs: past the warm-up, the first checkpoint and three loss-scale raises
SPLIT = 8  # the end of the first epoch: the first periodic checkpoint
LOSS_ATOL = 2e-6  # see the module docstring
WEIGHT_RTOL, MOMENT_RTOL = 2e-6, 1e-5  # of the largest element of each tensor
#: Checkpoint entries that do not depend on the forward pass: equal bit for bit in every framework.
EXACT = ("global_step", "beta1_power", "beta2_power", "learning_rate", "step_num", "scale_value", "counter")

_DRIVER = """
import contextlib, importlib.util, io, json, sys
spec = importlib.util.spec_from_file_location("mlp_mindspore", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
results = []
for job in json.loads(sys.argv[2]):
    with contextlib.redirect_stdout(io.StringIO()):
        results.append(module.main(**job))
with open(sys.argv[3], "w") as out:
    json.dump(results, out)
"""


def framework_free_text(name: str) -> str:
    """The script without its framework blocks (markers checked: balanced, not nested)."""
    kept, inside = [], False
    for number, line in enumerate((EXAMPLES / f"mlp_{name}.py").read_text().splitlines(), 1):
        marker = line.strip()
        if marker in (BEGIN, END):
            assert inside == (marker == END), f"mlp_{name}.py:{number}: unbalanced {marker!r}"
            inside = not inside
        elif not inside:
            kept.append(line)
    assert not inside, f"mlp_{name}.py: a framework block is not closed"
    return "\n".join(kept) + "\n"


def test_only_framework_lines_differ() -> None:
    original = framework_free_text("mindspore")
    for needle in ("nn.Adam(", "nn.warmup_lr(", "nn.cosine_decay_lr(", "ms.amp.DynamicLossScaler(",
                   "ms.amp.all_finite(", "loss_scaler.adjust(", "ms.FixedLossScaleManager(", "ms.amp.StaticLossScaler(",
                   "ms.save_checkpoint(optimizer", "ms.load_checkpoint(", "ms.load_param_into_net(optimizer",
                   "optimizer(grads)"):
        assert needle in original, f"{needle!r} must be common text, outside the framework blocks"
    for name in SCRIPTS[1:]:
        port = framework_free_text(name)
        diff = "".join(difflib.unified_diff(original.splitlines(True), port.splitlines(True),
                                            "mlp_mindspore.py", f"mlp_{name}.py"))
        assert port == original, f"mlp_{name}.py changes lines outside its framework blocks:\n{diff}"


# --- running the scripts ------------------------------------------------------------------------


def load_example(name: str) -> ModuleType:
    pytest.importorskip("msadam_compat")
    for module in REQUIREMENTS[name]:
        pytest.importorskip(module)
    module_name = f"msadam_example_mlp_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"mlp_{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[module_name] = module
    return sys.modules[module_name]


def run_example(name: str, **kwargs: Any) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):  # the scripts log every epoch
        losses = load_example(name).main(**kwargs)
    assert all(isinstance(loss, float) for loss in losses)
    return losses


def run_mindspore(jobs: list[dict[str, Any]], workdir: Path) -> list[list[float]]:
    """``mlp_mindspore.main(**job)`` for each job, in one process with real MindSpore."""
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("MindSpore is not installed: no reference run")
    out = workdir / f"mindspore-{len(list(workdir.glob('mindspore-*.json')))}.json"
    env = {**os.environ, "MS_OM_PATH": str(workdir / "om"), "GLOG_v": "3"}
    done = subprocess.run([sys.executable, "-c", _DRIVER, str(EXAMPLES / "mlp_mindspore.py"), json.dumps(jobs),
                           str(out)], cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return list(json.loads(out.read_text()))


class Runs:
    """Each run made once per test module: MindSpore's in one subprocess, the ports in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ports: dict[tuple[str, str], list[float]] = {}
        self._mindspore: dict[str, list[float]] | None = None

    def ckpt_dir(self, name: str, loss_scale: str = "dynamic") -> Path:
        return self.root / f"{name}-{loss_scale}"

    def mindspore(self) -> dict[str, list[float]]:
        if self._mindspore is None:
            jobs = {"dynamic": {"steps": STEPS, "ckpt_dir": str(self.ckpt_dir("mindspore"))},
                    "fixed": {"steps": STEPS, "loss_scale": "fixed"},
                    "first": {"steps": SPLIT, "ckpt_dir": str(self.root / "mindspore-split")},
                    "resumed": {"steps": STEPS, "ckpt_dir": str(self.root / "mindspore-split"),
                                "resume": str(self.root / "mindspore-split" / f"mlp-{SPLIT}.ckpt")}}
            self._mindspore = dict(zip(jobs, run_mindspore(list(jobs.values()), self.root), strict=True))
        return self._mindspore

    def port(self, name: str, loss_scale: str = "dynamic") -> list[float]:
        if (name, loss_scale) not in self._ports:
            ckpt_dir = str(self.ckpt_dir(name, loss_scale))
            self._ports[name, loss_scale] = run_example(name, steps=STEPS, ckpt_dir=ckpt_dir, loss_scale=loss_scale)
        return self._ports[name, loss_scale]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("examples"))


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    import msadam_compat as ms

    return {name: param.asnumpy() for name, param in ms.load_checkpoint(str(path)).items()}


def keras_as_mindspore(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Keras port's checkpoint under MindSpore's names and layouts (``mlp.fc1.kernel`` is ``fc1.weight``.T)."""
    renamed = {}
    for name, value in state.items():
        new = name.replace("mlp.", "")
        if new.endswith(".kernel"):
            new, value = new.removesuffix(".kernel") + ".weight", value.T
        renamed[new] = value
    return renamed


# --- MindSpore itself --------------------------------------------------------------------------


def assert_same_checkpoints(resumed: Path, uninterrupted: Path) -> None:
    """Every entry bit for bit: weights, Adam's state, learning rates, ``step_num`` and the loss scaler's state."""
    expected, actual = read_checkpoint(uninterrupted), read_checkpoint(resumed)
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        np.testing.assert_array_equal(actual[key], value, err_msg=key)


def test_mindspore_example_resumes_exactly(runs: Runs) -> None:
    reference = runs.mindspore()
    assert len(reference["dynamic"]) == STEPS and reference["dynamic"][-1] < 0.8 * reference["dynamic"][0]
    assert reference["first"] + reference["resumed"] == reference["dynamic"]
    pytest.importorskip("msadam_compat")
    assert_same_checkpoints(runs.root / "mindspore-split" / f"mlp-{STEPS}.ckpt",
                            runs.ckpt_dir("mindspore") / f"mlp-{STEPS}.ckpt")
    # A power-of-two scale multiplies and divides exactly: the fixed scale removed by Adam gives the same bits.
    assert reference["fixed"] == reference["dynamic"]


# --- the ports against MindSpore ---------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPTS[1:])
def test_port_follows_mindspore(name: str, runs: Runs) -> None:
    losses = runs.port(name)
    reference = runs.mindspore()["dynamic"]
    gap = np.abs(np.subtract(losses, reference))
    assert gap.max() <= LOSS_ATOL, f"{name} vs MindSpore, per step: {gap.tolist()}"
    assert runs.port(name, "fixed") == losses  # both loss-scale recipes, bit for bit, as in MindSpore


@pytest.mark.parametrize("step", [SPLIT, STEPS])
@pytest.mark.parametrize("name", SCRIPTS[1:])
def test_port_checkpoint_holds_mindspores_state(name: str, step: int, runs: Runs) -> None:
    runs.port(name)
    runs.mindspore()
    expected = read_checkpoint(runs.ckpt_dir("mindspore") / f"mlp-{step}.ckpt")
    actual = read_checkpoint(runs.ckpt_dir(name) / f"mlp-{step}.ckpt")
    if name == "keras":
        actual = keras_as_mindspore(actual)
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert (got.dtype, got.shape) == (want.dtype, want.shape), key
        if key in EXACT:
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            rtol = MOMENT_RTOL if key.startswith("moment") else WEIGHT_RTOL
            np.testing.assert_allclose(got, want, rtol=0, atol=rtol * np.abs(want).max(), err_msg=key)


@pytest.mark.parametrize("name", SCRIPTS[1:])
def test_port_resumes_exactly(name: str, runs: Runs) -> None:
    split = runs.root / f"{name}-split"
    first = run_example(name, steps=SPLIT, ckpt_dir=str(split))
    resumed = run_example(name, steps=STEPS, ckpt_dir=str(split), resume=str(split / f"mlp-{SPLIT}.ckpt"))
    assert first + resumed == runs.port(name)
    assert_same_checkpoints(split / f"mlp-{STEPS}.ckpt", runs.ckpt_dir(name) / f"mlp-{STEPS}.ckpt")


# --- checkpoints across frameworks -------------------------------------------------------------


def test_mindspore_resumes_port_checkpoints(runs: Runs) -> None:
    ports = [name for name in INTERCHANGEABLE if importlib.util.find_spec(REQUIREMENTS[name][0])]
    if not ports:
        pytest.skip("neither torch nor JAX is installed")
    for name in ports:
        runs.port(name)
    reference = runs.mindspore()["dynamic"][SPLIT:]
    jobs = [{"steps": STEPS, "resume": str(runs.ckpt_dir(name) / f"mlp-{SPLIT}.ckpt")} for name in ports]
    for name, resumed in zip(ports, run_mindspore(jobs, runs.root), strict=True):
        assert len(resumed) == STEPS - SPLIT
        np.testing.assert_allclose(resumed, reference, rtol=0, atol=LOSS_ATOL, err_msg=f"MindSpore resuming {name}")


@pytest.mark.parametrize("name", INTERCHANGEABLE)
def test_port_resumes_mindspore_checkpoint(name: str, runs: Runs) -> None:
    runs.mindspore()
    checkpoint = runs.ckpt_dir("mindspore") / f"mlp-{SPLIT}.ckpt"
    resumed = run_example(name, steps=STEPS, resume=str(checkpoint))
    np.testing.assert_allclose(resumed, runs.mindspore()["dynamic"][SPLIT:], rtol=0, atol=LOSS_ATOL)


def test_keras_refuses_a_mindspore_checkpoint(runs: Runs) -> None:
    """Keras's names and kernel layout are not MindSpore's: its script says what is missing, loads nothing."""
    load_example("keras")
    runs.mindspore()
    with pytest.raises(RuntimeError, match=r"lacks .*mlp\.fc1\.kernel"):
        run_example("keras", steps=STEPS, resume=str(runs.ckpt_dir("mindspore") / f"mlp-{SPLIT}.ckpt"))
