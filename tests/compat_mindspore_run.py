"""The MindSpore side of test_compat_checkpoint.py: one scenario per process, driven from the command line.

Not a package module (``import compat_mindspore_run`` from tests/): importing it imports NumPy
only; MindSpore is imported in ``main`` when run as a script, in its own process (as msadam's
parity oracle runs it — ``msadam/parity/oracle.py``), with ``GLOG_v=3``, ``MS_OM_PATH`` in a
temporary folder, PyNative mode, and one throwaway ``Tensor(...).reshape(())`` for NumPy 2.

Commands (each writes a JSON result, and arrays as ``.npz``):

``train OUT``
    ``mindspore.nn.Adam`` on the scenario below: 5 steps, then ``save_checkpoint`` to
    ``ms5.ckpt``, ``ms5.safetensors`` and their ``crc_check=True`` twins, then 5 more steps;
    ``final.npz`` holds every entry of ``parameters_dict()`` after step 10.
``read SPEC OUT``
    For each ``{"tag", "file", "format", "crc_check", "resume"}`` of the JSON list ``SPEC``:
    ``mindspore.load_checkpoint``; its entries (dtype name, shape, raw bytes) go to
    ``<tag>.npz``; with ``resume``, a fresh ``nn.Adam`` gets them through ``load_param_into_net``
    and runs steps 5..9, its final state in ``<tag>-final.npz``. An exception is recorded by class.
``validate CASES OUT``
    Each ``{"id", "code"}`` of the JSON list ``CASES`` is executed with ``ms`` (MindSpore), ``np``,
    ``net``/``opt`` (a small ``nn.Adam``), ``param``, ``tmp`` (a scratch folder) and ``files`` (a
    dict of prepared file names) in scope; the outcome is ``"ok"`` or the exception's class name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

# ------------------------------------------------------------------------------------- the scenario

SHAPES = {"w": (3, 4), "b": (4,)}
RESUME_AT = 5
STEPS = 10
LEARNING_RATES = [0.01 * 0.8**i for i in range(STEPS)]  # a dynamic (list) learning rate
CONFIG: dict[str, Any] = {"weight_decay": 0.01, "loss_scale": 2.0, "use_amsgrad": True, "beta2": 0.99}


def initial_values() -> dict[str, np.ndarray]:
    """The parameters before step 0."""
    rng = np.random.default_rng(7)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def gradients(step: int) -> tuple[np.ndarray, ...]:
    """The gradients of ``step`` (0-based), from a NumPy seed of its own."""
    rng = np.random.default_rng(1000 + step)
    return tuple(rng.standard_normal(shape).astype(np.float32) for shape in SHAPES.values())


def build_adam(ms: Any, values: dict[str, np.ndarray] | None = None, **parameter_kwargs: Any) -> Any:
    """The scenario's ``nn.Adam`` over Parameters ``w`` and ``b`` of ``ms`` (MindSpore or msadam_compat)."""
    values = values or initial_values()
    params = [ms.Parameter(values[name].copy(), name=name, **parameter_kwargs) for name in SHAPES]
    return ms.nn.Adam(params, learning_rate=LEARNING_RATES, **CONFIG)


# ------------------------------------------------------------------------------------- MindSpore side


def import_mindspore() -> Any:
    os.environ.setdefault("GLOG_v", "3")
    os.environ.setdefault("MS_OM_PATH", tempfile.mkdtemp(prefix="msadam-ckpt-om-"))
    with contextlib.redirect_stderr(io.StringIO()):
        import mindspore

        with contextlib.suppress(SystemError):
            mindspore.Tensor(np.ones(1, np.float32)).reshape(())
    mindspore.set_context(mode=mindspore.PYNATIVE_MODE)
    return mindspore


def _ms_adam(ms: Any) -> Any:
    values = initial_values()
    params = [ms.Parameter(ms.Tensor(values[name]), name=name) for name in SHAPES]
    return ms.nn.Adam(params, learning_rate=LEARNING_RATES, **CONFIG)


def _step(ms: Any, opt: Any, step: int) -> None:
    opt(tuple(ms.Tensor(g) for g in gradients(step)))


def _state(opt: Any) -> dict[str, Any]:
    return {name: param.asnumpy() for name, param in opt.parameters_dict().items()}


def train(ms: Any, out: str) -> dict[str, Any]:
    opt = _ms_adam(ms)
    for step in range(RESUME_AT):
        _step(ms, opt, step)
    for crc in (False, True):
        suffix = "_crc" if crc else ""
        ms.save_checkpoint(opt, os.path.join(out, f"ms5{suffix}.ckpt"), crc_check=crc)
        ms.save_checkpoint(opt, os.path.join(out, f"ms5{suffix}"), crc_check=crc, format="safetensors")
    # MindSpore's own slicing of a large tensor (several Values with one tag), made to happen on a
    # small one: the asynchronous path splits with np.array_split above SLICE_SIZE KiB (serialization.py
    # lines 480-490); the module global is read at call time.
    from mindspore.train import serialization

    saved, serialization.SLICE_SIZE = serialization.SLICE_SIZE, 0.01
    try:
        ms.save_checkpoint(opt, os.path.join(out, "ms5_sliced.ckpt"), async_save="thread")
        serialization._wait_async_thread_save_ckpt()
    finally:
        serialization.SLICE_SIZE = saved
    np.savez(os.path.join(out, "state5.npz"), **_state(opt))
    for step in range(RESUME_AT, STEPS):
        _step(ms, opt, step)
    np.savez(os.path.join(out, "final.npz"), **_state(opt))
    return {"files": sorted(os.listdir(out))}


def _entries(ms: Any, loaded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    meta: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    for name, value in loaded.items():
        if isinstance(value, str):
            meta[name] = {"str": value}
            continue
        meta[name] = {"dtype": str(value.dtype), "shape": list(value.shape)}
        if str(value.dtype) == "BFloat16":  # no NumPy bfloat16 in MindSpore under NumPy 2: compare as float32
            value = value.astype(ms.float32)
            meta[name]["as"] = "float32"
        array = value.asnumpy()
        arrays[name] = np.frombuffer(array.tobytes(), np.uint8)
    return meta, arrays


def read(ms: Any, spec_file: str, out: str) -> dict[str, Any]:
    with open(spec_file, encoding="utf-8") as handle:
        spec = json.load(handle)
    results: dict[str, Any] = {}
    for item in spec:
        try:
            loaded = ms.load_checkpoint(item["file"], crc_check=item.get("crc_check", False),
                                        format=item.get("format", "ckpt"))
        except Exception as exc:
            results[item["tag"]] = {"error": type(exc).__name__, "message": str(exc)[:500]}
            continue
        meta, arrays = _entries(ms, loaded)
        np.savez(os.path.join(out, f"{item['tag']}.npz"), **arrays)
        result: dict[str, Any] = {"error": None, "entries": meta, "order": list(loaded)}
        if item.get("resume"):
            opt = _ms_adam(ms)
            result["not_loaded"] = [list(x) for x in ms.load_param_into_net(opt, loaded)]
            for step in range(RESUME_AT, STEPS):
                _step(ms, opt, step)
            np.savez(os.path.join(out, f"{item['tag']}-final.npz"), **_state(opt))
        results[item["tag"]] = result
    return results


def run_cases(namespace_for: Callable[[str], dict[str, Any]], cases: list[dict[str, str]]) -> dict[str, str]:
    """Each case's outcome: ``"ok"`` or its exception's class name (shared with the msadam side)."""
    outcomes = {}
    for case in cases:
        namespace = namespace_for(case["id"])
        try:
            exec(case["code"], namespace)
            outcomes[case["id"]] = "ok"
        except Exception as exc:
            outcomes[case["id"]] = type(exc).__name__
    return outcomes


def validate(ms: Any, cases_file: str, out: str) -> dict[str, Any]:
    with open(cases_file, encoding="utf-8") as handle:
        spec = json.load(handle)

    def namespace_for(case_id: str) -> dict[str, Any]:
        tmp = tempfile.mkdtemp(prefix=f"case-{case_id[:20]}-", dir=out)
        opt = _ms_adam(ms)
        return {"ms": ms, "np": np, "net": opt, "opt": opt, "param": opt.parameters[0], "tmp": tmp,
                "files": spec["files"]}

    return run_cases(namespace_for, spec["cases"])


def main(argv: list[str]) -> int:
    command, *args = argv
    try:
        ms = import_mindspore()
    except ImportError as exc:
        print(f"MindSpore does not import: {exc}", file=sys.stderr)
        return 3
    if command == "train":
        result = train(ms, args[0])
        out = args[0]
    elif command == "read":
        result = read(ms, args[0], args[1])
        out = args[1]
    elif command == "validate":
        result = validate(ms, args[0], args[1])
        out = args[1]
    else:
        raise SystemExit(f"unknown command {command!r}")
    with open(os.path.join(out, f"{command}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
