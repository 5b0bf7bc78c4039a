"""``ms.save_checkpoint`` / ``ms.load_checkpoint`` / ``ms.load_param_into_net`` against real MindSpore 2.10.

* Both directions, both formats, on every msadam backend: MindSpore's ``nn.Adam`` saves after 5
  steps and msadam resumes to MindSpore's 10-step state; msadam saves after 5 steps and MindSpore
  loads the file (bit-identical entries, dtypes, shapes, order) and resumes from it.
* MindSpore's files go through msadam byte for byte; the protobuf schema is MindSpore's descriptor.
* A validation table: every case is run by MindSpore (one subprocess) and here, and both outcomes
  are pinned — including where msadam deliberately differs (the ``ours`` column).
* Malformed files, CRC damage, never unpickling, atomic writes, ``load_param_into_net``'s rules.

MindSpore runs in subprocesses (tests/compat_mindspore_run.py), one per scenario.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import msadam

ms = pytest.importorskip("msadam_compat")
pytest.importorskip("google.protobuf")
pytest.importorskip("safetensors")

import compat_mindspore_run as run  # noqa: E402 - tests/ is not a package
from checkpoint_files import map_tensor_checkpoint  # noqa: E402
from msadam_compat.checkpoint import atomic, ckpt_format, dtypes, safetensors_format, schema  # noqa: E402

HELPER = Path(__file__).with_name("compat_mindspore_run.py")
MS_FILES = ["ms5.ckpt", "ms5.safetensors", "ms5_crc.ckpt", "ms5_crc.safetensors", "ms5_sliced.ckpt"]
RTOL = 1e-6


def _fmt(path: str | Path) -> str:
    return "safetensors" if str(path).endswith(".safetensors") else "ckpt"


def _mindspore_dir() -> Path | None:
    """MindSpore's package folder, found without importing it (``None`` when it is not installed)."""
    try:
        spec = importlib.util.find_spec("mindspore")
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def run_mindspore(command: str, *args: str, out: Path) -> Any:
    """Run one command of the helper in a fresh MindSpore process; its JSON result."""
    if _mindspore_dir() is None:
        pytest.skip("MindSpore is not installed")
    env = dict(os.environ, GLOG_v="3", MS_OM_PATH=tempfile.mkdtemp(prefix="msadam-ckpt-om-"))
    done = subprocess.run([sys.executable, str(HELPER), command, *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=str(out))
    if done.returncode == 3:
        pytest.skip(done.stderr.strip()[-500:] or "MindSpore does not import")
    assert done.returncode == 0, f"MindSpore {command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    with open(out / f"{command}.json", encoding="utf-8") as handle:
        return json.load(handle)


def _state(opt: Any) -> dict[str, np.ndarray]:
    return {name: param.asnumpy() for name, param in opt.parameters_dict().items()}


def assert_state_close(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    """Same names, dtypes and shapes; values within ``RTOL`` of each array's largest magnitude.

    (Elementwise relative error is no measure for moments near zero, where ``beta1*m + (1-beta1)*g``
    cancels: there the float32 kernels of MindSpore and msadam differ by a few ulps of the terms.)
    """
    assert list(ours) == list(reference)
    for name, expected in reference.items():
        got = ours[name]
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * scale, err_msg=name)


def _resume(path: Path, backend: str, crc_check: bool = False) -> Any:
    opt = run.build_adam(ms, backend=backend)
    not_loaded = ms.load_param_into_net(opt, ms.load_checkpoint(str(path), crc_check=crc_check, format=_fmt(path)))
    assert not_loaded == ([], [])
    for step in range(run.RESUME_AT, run.STEPS):
        opt(run.gradients(step))
    return opt


def _trained(backend: str) -> Any:
    opt = run.build_adam(ms, backend=backend)
    for step in range(run.RESUME_AT):
        opt(run.gradients(step))
    return opt


@pytest.fixture(scope="module")
def ms_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MindSpore's run: its checkpoints after step 5 and its state after step 10."""
    out = tmp_path_factory.mktemp("ms-train")
    result = run_mindspore("train", str(out), out=out)
    assert set(MS_FILES) <= set(result["files"])
    return out


# ------------------------------------------------------------------------------------ MindSpore -> msadam


@pytest.mark.parametrize("file_name", MS_FILES)
def test_mindspore_checkpoint_resumes_on_every_backend(ms_train: Path, msadam_backend: str, file_name: str) -> None:
    final = dict(np.load(ms_train / "final.npz"))
    opt = _resume(ms_train / file_name, msadam_backend, crc_check="crc" in file_name)
    assert all(p.backend == msadam_backend for p in opt.parameters)
    assert_state_close(_state(opt), final)


@pytest.mark.parametrize("file_name", MS_FILES)
def test_mindspore_checkpoint_loads_bit_identically(ms_train: Path, file_name: str) -> None:
    state5 = dict(np.load(ms_train / "state5.npz"))
    loaded = ms.load_checkpoint(str(ms_train / file_name), format=_fmt(file_name), crc_check=True)
    expected_order = sorted(state5) if file_name.endswith(".safetensors") else list(state5)
    assert list(loaded) == expected_order
    for name, value in loaded.items():
        assert isinstance(value, ms.Parameter) and value.backend == "numpy"
        array = value.asnumpy()
        assert array.dtype == state5[name].dtype and array.shape == state5[name].shape, name
        assert array.tobytes() == state5[name].tobytes(), name
    assert loaded["beta1_power"].shape == () and loaded["global_step"].shape == (1,)


@pytest.mark.parametrize("file_name", ["ms5.ckpt", "ms5_crc.ckpt", "ms5.safetensors", "ms5_crc.safetensors"])
def test_mindspore_file_round_trips_byte_for_byte(ms_train: Path, tmp_path: Path, file_name: str) -> None:
    crc = "crc" in file_name
    loaded = ms.load_checkpoint(str(ms_train / file_name), format=_fmt(file_name))
    target = tmp_path / file_name
    ms.save_checkpoint(loaded, str(target), crc_check=crc, format=_fmt(file_name))
    ours, theirs = target.read_bytes(), (ms_train / file_name).read_bytes()
    if file_name.endswith(".ckpt"):
        assert ours == theirs
        return
    # safetensors keeps the metadata in a Rust HashMap: its key order in the header changes from one
    # process to the next (MindSpore's own files included). Everything else is byte for byte.
    length = int.from_bytes(theirs[:8], "little")
    assert ours[:8] == theirs[:8]
    assert json.loads(ours[8:8 + length]) == json.loads(theirs[8:8 + length])
    assert ours[8 + length:] == theirs[8 + length:]


# ------------------------------------------------------------------------------------ msadam -> MindSpore


def _selected_backends(config: pytest.Config) -> list[str]:
    """The backends the ``msadam_backend`` fixture runs over (msadam's pytest plugin decides)."""
    from msadam import pytest_plugin

    requested = config.getoption(pytest_plugin.OPTION) or os.environ.get(pytest_plugin.ENV_TEST_BACKENDS) or None
    return pytest_plugin.selected_backends(requested)


def _special_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    tensors: dict[str, np.ndarray] = {
        "f16": rng.standard_normal((2, 3)).astype(np.float16), "f64": rng.standard_normal(3),
        "i8": np.arange(-3, 3, dtype=np.int8), "u8": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "i16": np.arange(4, dtype=np.int16), "u16": np.arange(4, dtype=np.uint16),
        "u32": np.arange(4, dtype=np.uint32), "i64": np.arange(4, dtype=np.int64) - 2**40,
        "u64": np.arange(4, dtype=np.uint64) + 2**63, "bool": np.array([[True, False]]),
        "scalar": np.array(2.5, np.float32), "big": rng.standard_normal((9, 5)).astype(np.float32),
    }
    if dtypes.BFLOAT16 is not None:
        tensors["bf16"] = np.array([1.5, -2.25, 3.0], np.float32).astype(dtypes.BFLOAT16)
    return tensors


def _special_files(folder: Path) -> list[dict[str, Any]]:
    """Every dtype, append_dict values, slices and a damaged CRC, written by msadam."""
    tensors = _special_tensors()
    appended = {"text": "hello, wörld", "count": 7, "ratio": 0.5, "flag": True, "tensor": ms.Tensor([1, 2])}
    ms.save_checkpoint(tensors, str(folder / "values.ckpt"), append_dict=appended)
    # MindSpore 2.10 under NumPy 2 cannot read a BF16 safetensors tensor (its NumPy bfloat16 is refused):
    # BFloat16 goes through the .ckpt files only.
    st_tensors = {name: array for name, array in tensors.items() if name != "bf16"}
    ms.save_checkpoint(st_tensors, str(folder / "values.safetensors"), format="safetensors", crc_check=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ckpt_format, "SLICE_SIZE", 16 / 1024)  # 16-byte slices: several Values per tensor
        ms.save_checkpoint(tensors, str(folder / "sliced.ckpt"), crc_check=True)
    sliced = schema.Checkpoint.FromString((folder / "sliced.ckpt").read_bytes()[:-17])
    assert [v.tag for v in sliced.value].count("big") == 12  # 180 bytes in 16-byte slices
    damaged = bytearray((folder / "sliced.ckpt").read_bytes())
    damaged[-18] ^= 0x01  # the last content byte, before the 17-byte CRC trailer
    (folder / "damaged.ckpt").write_bytes(bytes(damaged))
    return [{"tag": "values", "file": str(folder / "values.ckpt")},
            {"tag": "values-st", "file": str(folder / "values.safetensors"), "format": "safetensors",
             "crc_check": True},
            {"tag": "sliced", "file": str(folder / "sliced.ckpt"), "crc_check": True},
            {"tag": "damaged", "file": str(folder / "damaged.ckpt"), "crc_check": True},
            {"tag": "damaged-unchecked", "file": str(folder / "damaged.ckpt")}]


@pytest.fixture(scope="module")
def read_by_mindspore(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """msadam's files, read (and resumed from) by one MindSpore process: per backend, the optimizer
    after 5 steps in both formats, with and without CRC; and the special files."""
    folder = tmp_path_factory.mktemp("read-by-mindspore")
    spec, states = [], {}
    for backend in _selected_backends(request.config):
        opt = _trained(backend)
        states[backend] = _state(opt)
        for crc in (False, True):
            for fmt in ("ckpt", "safetensors"):
                tag = f"{backend}-{fmt}-file{'-crc' if crc else ''}"  # not ending with the format
                ms.save_checkpoint(opt, str(folder / tag), crc_check=crc, format=fmt)  # the suffix is appended
                spec.append({"tag": tag, "file": str(folder / f"{tag}.{fmt}"), "format": fmt, "crc_check": crc,
                             "resume": True, "backend": backend})
    spec += _special_files(folder)
    (folder / "spec.json").write_text(json.dumps(spec))
    result = run_mindspore("read", str(folder / "spec.json"), str(folder), out=folder)
    return {"folder": folder, "spec": spec, "states": states, "result": result}


def test_mindspore_reads_and_resumes_our_checkpoints(ms_train: Path, read_by_mindspore: dict[str, Any],
                                                     msadam_backend: str) -> None:
    folder, result = read_by_mindspore["folder"], read_by_mindspore["result"]
    ours = read_by_mindspore["states"][msadam_backend]
    final = dict(np.load(ms_train / "final.npz"))
    items = [item for item in read_by_mindspore["spec"] if item.get("backend") == msadam_backend]
    assert len(items) == 4
    for item in items:
        got = result[item["tag"]]
        assert got["error"] is None, got
        assert got["order"] == (sorted(ours) if item["format"] == "safetensors" else list(ours))
        arrays = np.load(folder / f"{item['tag']}.npz")
        for name, array in ours.items():
            assert got["entries"][name] == {"dtype": dtypes.ckpt_type_of(array.dtype), "shape": list(array.shape)}
            assert arrays[name].tobytes() == array.tobytes(), (item["tag"], name)
        assert got["not_loaded"] == [[], []]
        assert_state_close(dict(np.load(folder / f"{item['tag']}-final.npz")), final)


def test_mindspore_reads_our_special_files(read_by_mindspore: dict[str, Any]) -> None:
    """Slices, append_dict values, every dtype, and a damaged CRC, as MindSpore reads them."""
    folder, result = read_by_mindspore["folder"], read_by_mindspore["result"]
    assert result["damaged"]["error"] == "ValueError"
    with pytest.raises(ValueError, match="crc check"):
        ms.load_checkpoint(str(folder / "damaged.ckpt"), crc_check=True)
    assert result["damaged-unchecked"]["error"] is None
    tensors = _special_tensors()
    for tag in ("values", "values-st", "sliced"):
        got = result[tag]
        assert got["error"] is None, got
        arrays = np.load(folder / f"{tag}.npz")
        for name, array in tensors.items():
            if tag == "values-st" and name == "bf16":
                continue
            entry = got["entries"][name]
            assert entry["dtype"] == dtypes.ckpt_type_of(array.dtype) and entry["shape"] == list(array.shape), name
            expected = array.astype(np.float32) if entry.get("as") == "float32" else array
            assert arrays[name].tobytes() == expected.tobytes(), (tag, name)
    entries = result["values"]["entries"]
    assert entries["text"] == {"str": "hello, wörld"}
    assert entries["count"] == {"dtype": "Int64", "shape": []}
    assert entries["ratio"] == {"dtype": "Float32", "shape": []}
    assert entries["flag"] == {"dtype": "Bool", "shape": []}
    assert entries["tensor"] == {"dtype": "Int64", "shape": [2]}
    ours = ms.load_checkpoint(str(folder / "values.ckpt"))
    assert ours["text"] == "hello, wörld" and ours["count"].asnumpy().dtype == np.int64
    for tag in ("values", "sliced"):
        loaded = ms.load_checkpoint(str(folder / f"{tag}.ckpt"))
        for name, array in tensors.items():
            assert loaded[name].asnumpy().tobytes() == array.tobytes() and loaded[name].shape == array.shape


# ------------------------------------------------------------------------------------------- the schema


def _mindspore_descriptor() -> bytes:
    """The serialized ``checkpoint.proto`` in MindSpore's ``checkpoint_pb2.py``, read without importing it."""
    root = _mindspore_dir()
    if root is None:
        pytest.skip("MindSpore is not installed")
    source = root / "train" / "checkpoint_pb2.py"
    if not source.is_file():
        pytest.skip(f"MindSpore's {source} is not there")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
            return bytes(ast.literal_eval(node.args[0]))
    raise AssertionError("AddSerializedFile not found in checkpoint_pb2.py")


def test_schema_is_mindspores_descriptor_in_a_private_pool() -> None:
    from google.protobuf import descriptor_pool, message_factory

    theirs = _mindspore_descriptor()
    assert schema.file_descriptor_proto().SerializeToString() == theirs
    assert schema.pool is not descriptor_pool.Default()
    # MindSpore's own registration (identical bytes, in the default pool) coexists with ours.
    descriptor_pool.Default().AddSerializedFile(theirs)
    default_cls = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName("Checkpoint"))
    ours = schema.Checkpoint()
    value = ours.value.add(tag="w")
    value.tensor.dims.extend([2])
    value.tensor.tensor_type, value.tensor.tensor_content = "Float32", np.ones(2, np.float32).tobytes()
    again = default_cls.FromString(ours.SerializeToString())
    assert again.value[0].tag == "w" and schema.Checkpoint.FromString(again.SerializeToString()) == ours


# ------------------------------------------------------------------------------------ the validation table


@dataclass(frozen=True)
class Case:
    """``code`` runs with ``ms``, ``np``, ``os``, ``opt``/``net``, ``param``, ``tmp`` and ``files`` in scope.

    ``mindspore`` is MindSpore 2.10's outcome (checked live), ``ours`` msadam_compat's where it
    deliberately differs (``note`` says why).
    """

    id: str
    code: str
    mindspore: str
    ours: str | None = None
    note: str = ""


P2 = "ms.Parameter(ms.Tensor(np.ones((2,), np.float32)), name='p')"
CASES = [
    # save_checkpoint: argument checks in MindSpore's order (serialization.py lines 717-729)
    Case("save-obj-int", "ms.save_checkpoint(3, tmp + '/a.ckpt')", "TypeError"),
    Case("save-obj-tuple", f"ms.save_checkpoint(({P2},), tmp + '/a.ckpt')", "TypeError"),
    Case("save-name-int", "ms.save_checkpoint(opt, 3)", "TypeError"),
    Case("save-name-dir", "ms.save_checkpoint(opt, tmp)", "IsADirectoryError"),
    Case("save-format-bad", "ms.save_checkpoint(opt, tmp + '/a.ckpt', format='pt')", "ValueError"),
    Case("save-format-before-obj", "ms.save_checkpoint(3, 3, format='pt')", "ValueError"),
    Case("save-integrated-str", "ms.save_checkpoint(opt, tmp + '/a.ckpt', integrated_save='yes')", "TypeError"),
    Case("save-async-int", "ms.save_checkpoint(opt, tmp + '/a.ckpt', async_save=1)", "TypeError"),
    Case("save-async-str", "ms.save_checkpoint(opt, tmp + '/a.ckpt', async_save='fork')", "ValueError"),
    Case("save-append-list", "ms.save_checkpoint(opt, tmp + '/a.ckpt', append_dict=[1])", "TypeError"),
    Case("save-append-key", "ms.save_checkpoint(opt, tmp + '/a.ckpt', append_dict={1: 2})", "TypeError"),
    Case("save-append-none", "ms.save_checkpoint(opt, tmp + '/a.ckpt', append_dict={'a': None})", "TypeError"),
    Case("save-enc-key-str", "ms.save_checkpoint(opt, tmp + '/a.ckpt', enc_key='k')", "ValueError"),
    Case("save-enc-mode-int", "ms.save_checkpoint(opt, tmp + '/a.ckpt', enc_mode=1)", "ValueError"),
    Case("save-crc-int", "ms.save_checkpoint(opt, tmp + '/a.ckpt', crc_check=1)", "ValueError"),
    Case("save-crc-before-enc", "ms.save_checkpoint(opt, tmp + '/a.ckpt', crc_check='x', enc_key=3)", "ValueError"),
    Case("save-remove-redundancy", "ms.save_checkpoint(opt, tmp + '/a.ckpt', remove_redundancy='x')", "ValueError"),
    Case("save-st-enc-mode", "ms.save_checkpoint(opt, tmp + '/a', format='safetensors', enc_mode='AES-CBC')",
         "ValueError"),
    Case("save-st-incremental", "ms.save_checkpoint(opt, tmp + '/a', format='safetensors', incremental=True)",
         "ValueError"),
    Case("save-st-global-step", "ms.save_checkpoint(opt, tmp + '/a', format='safetensors', global_step_num=3)",
         "ValueError"),
    Case("save-st-string", "ms.save_checkpoint(opt, tmp + '/a', format='safetensors', append_dict={'s': 'x'})",
         "SafetensorError"),
    Case("save-list-int", "ms.save_checkpoint([1], tmp + '/a.ckpt')", "TypeError"),
    Case("save-list-dict-name", f"ms.save_checkpoint([{{'name': 1, 'data': {P2}}}], tmp + '/a.ckpt')", "TypeError"),
    Case("save-list-dict-data", "ms.save_checkpoint([{'name': 'a', 'data': 1}], tmp + '/a.ckpt')", "TypeError"),
    Case("save-list-dict-keys", f"ms.save_checkpoint([{{'name': 'a', 'value': {P2}}}], tmp + '/a.ckpt')",
         "TypeError"),
    Case("save-dict-key", f"ms.save_checkpoint({{1: {P2}}}, tmp + '/a.ckpt')", "TypeError"),
    Case("save-dict-int-value", "ms.save_checkpoint({'a': 3}, tmp + '/a.ckpt')", "UnboundLocalError", "TypeError",
         "MindSpore's _convert_dict_to_param_dict leaves each_param unbound (lines 905-910)"),
    Case("save-choice-int", "ms.save_checkpoint(opt, tmp + '/a.ckpt', choice_func=3)", "TypeError"),
    Case("save-missing-dir", "ms.save_checkpoint(opt, tmp + '/no/such/dir/a.ckpt')", "FileNotFoundError"),
    Case("save-enc-key", "ms.save_checkpoint(opt, tmp + '/a.ckpt', enc_key=b'0123456789abcdef')", "ok",
         "NotImplementedError", "encryption is not supported"),
    # save_checkpoint: what is written
    Case("save-suffix-rule", "ms.save_checkpoint(opt, tmp + '/netckpt'); ms.save_checkpoint(opt, tmp + '/x.st');"
         "assert sorted(os.listdir(tmp)) == ['netckpt', 'x.st.ckpt'], os.listdir(tmp)", "ok"),
    Case("save-read-only", "ms.save_checkpoint(opt, tmp + '/a.ckpt'); ms.save_checkpoint(opt, tmp + '/a.ckpt');"
         "assert os.stat(tmp + '/a.ckpt').st_mode & 0o777 == 0o400", "ok"),
    Case("save-empty-tensor-dropped",
         f"ms.save_checkpoint({{'e': ms.Parameter(ms.Tensor(np.zeros((0,), np.float32)), name='e'), 'p': {P2}}},"
         "tmp + '/a.ckpt'); assert list(ms.load_checkpoint(tmp + '/a.ckpt')) == ['p']", "ok"),
    Case("save-duplicate-name", f"p = {P2}; ms.save_checkpoint({{'p': p}}, tmp + '/a.ckpt', append_dict={{"
         "'q': 1.0, 'p': 2.0, '__exception_save__': 1}); d = ms.load_checkpoint(tmp + '/a.ckpt');"
         "assert list(d) == ['p', 'q'] and d['p'].asnumpy().tolist() == 2.0", "ok"),
    Case("save-choice-func", "ms.save_checkpoint(opt, tmp + '/a.ckpt', choice_func=lambda n: 'moment' in n);"
         "assert list(ms.load_checkpoint(tmp + '/a.ckpt')) == ['moment1.w', 'moment1.b', 'moment2.w', 'moment2.b']",
         "ok"),
    Case("save-empty-list", "ms.save_checkpoint([], tmp + '/a.ckpt'); assert os.path.getsize(tmp + '/a.ckpt') == 0;"
         "ms.load_checkpoint(tmp + '/a.ckpt')", "ValueError"),
    # load_checkpoint: argument checks (lines 1411-1418, 1621-1670)
    Case("load-name-int", "ms.load_checkpoint(3)", "TypeError"),
    Case("load-missing", "ms.load_checkpoint(tmp + '/none.ckpt')", "ValueError"),
    Case("load-suffix-mismatch", "ms.load_checkpoint(files['ckpt'], format='safetensors')", "ValueError"),
    Case("load-format-bad", "ms.load_checkpoint(files['ckpt'], format='pt')", "ValueError"),
    Case("load-bytesio-ckpt", "import io; ms.load_checkpoint(io.BytesIO(b''))", "TypeError"),
    Case("load-bytesio-st", "import io, pathlib; data = pathlib.Path(files['safetensors']).read_bytes();"
         "d = ms.load_checkpoint(io.BytesIO(data), format='safetensors'); assert list(d) == sorted(d) and len(d) == 12",
         "ok"),
    Case("load-filter-int", "ms.load_checkpoint(files['ckpt'], filter_prefix=1)", "TypeError"),
    Case("load-filter-empty-list", "ms.load_checkpoint(files['ckpt'], filter_prefix=[])", "ValueError"),
    Case("load-filter-int-item", "ms.load_checkpoint(files['ckpt'], filter_prefix=['a', 1])", "TypeError"),
    Case("load-filter-empty-str", "ms.load_checkpoint(files['ckpt'], filter_prefix='')", "ValueError"),
    Case("load-specify-before-filter", "ms.load_checkpoint(files['ckpt'], specify_prefix=1, filter_prefix=[])",
         "TypeError"),
    Case("load-dec-key-str", "ms.load_checkpoint(files['ckpt'], dec_key='k')", "ValueError"),
    Case("load-dec-mode-int", "ms.load_checkpoint(files['ckpt'], dec_mode=1)", "ValueError"),
    Case("load-crc-int", "ms.load_checkpoint(files['ckpt'], crc_check=1)", "ValueError"),
    Case("load-remove-redundancy-int", "ms.load_checkpoint(files['ckpt'], remove_redundancy=1)", "ValueError"),
    Case("load-st-dec-mode", "ms.load_checkpoint(files['safetensors'], format='safetensors', dec_mode='SM4-CBC')",
         "ValueError"),
    Case("load-st-dec-key", "ms.load_checkpoint(files['safetensors'], format='safetensors', dec_key=b'k' * 16)",
         "ValueError"),
    Case("load-dec-key", "ms.load_checkpoint(files['ckpt'], dec_key=b'0123456789abcdef')", "ValueError",
         "NotImplementedError", "decryption is not supported"),
    Case("load-strict-unchecked-without-net", "ms.load_checkpoint(files['ckpt'], strict_load='x')", "ok"),
    Case("load-nothing-left", "ms.load_checkpoint(files['ckpt'], choice_func=lambda n: False)", "ValueError"),
    Case("load-choice-int-ckpt", "ms.load_checkpoint(files['ckpt'], choice_func=3)", "ValueError"),
    Case("load-choice-int-st", "ms.load_checkpoint(files['safetensors'], format='safetensors', choice_func=3)",
         "TypeError"),
    Case("load-dir-ckpt", "os.mkdir(tmp + '/d.ckpt'); ms.load_checkpoint(tmp + '/d.ckpt')", "ValueError"),
    Case("load-dir-st", "os.mkdir(tmp + '/d.safetensors'); ms.load_checkpoint(tmp + '/d.safetensors',"
         "format='safetensors')", "IsADirectoryError"),
    Case("load-net-int", "ms.load_checkpoint(files['ckpt'], net=3)", "TypeError"),
    Case("load-net-strict-str", "ms.load_checkpoint(files['ckpt'], net=opt, strict_load='x')", "TypeError"),
    Case("load-net-remove-redundancy", "ms.load_checkpoint(files['ckpt'], net=opt, remove_redundancy=True)",
         "TypeError"),
    # load_checkpoint: selection (lines 1244-1297, 1724-1738; safetensors ignores the prefixes)
    Case("select-prefixes", "d = ms.load_checkpoint(files['ckpt'], specify_prefix=('moment', 'w'),"
         "filter_prefix='moment2', choice_func=lambda n: False);"
         "assert list(d) == ['w', 'moment1.w', 'moment1.b'], list(d)", "ok"),
    Case("select-choice", "d = ms.load_checkpoint(files['ckpt'], choice_func=lambda n: n.startswith('beta'));"
         "assert list(d) == ['beta1_power', 'beta2_power'], list(d)", "ok"),
    Case("select-st-ignores-prefix", "d = ms.load_checkpoint(files['safetensors'], format='safetensors',"
         "filter_prefix='w', choice_func=lambda n: n < 'c'); assert list(d) == ['b', 'beta1_power', 'beta2_power']",
         "ok"),
    Case("load-crc-missing-is-ok", "ms.load_checkpoint(files['ckpt'], crc_check=True)", "ok"),
    Case("load-crc-st-missing-is-ok", "ms.load_checkpoint(files['safetensors'], format='safetensors', crc_check=True)",
         "ok"),
    # malformed .ckpt files: always ValueError here
    Case("bad-random", "ms.load_checkpoint(files['random'])", "ValueError"),
    Case("bad-text", "ms.load_checkpoint(files['text'])", "ValueError"),
    Case("bad-truncated", "ms.load_checkpoint(files['truncated'])", "ValueError"),
    Case("bad-pickle", "ms.load_checkpoint(files['pickle'])", "ValueError"),
    Case("bad-empty", "ms.load_checkpoint(files['empty'])", "ValueError"),
    Case("bad-tensor-type", "ms.load_checkpoint(files['tensor_type'])", "ValueError"),
    Case("bad-negative-dims", "ms.load_checkpoint(files['negative_dims'])", "ValueError"),
    Case("bad-huge-dims", "ms.load_checkpoint(files['huge_dims'])", "ValueError"),
    Case("bad-string", "ms.load_checkpoint(files['string'])", "ValueError"),
    Case("bad-crc", "ms.load_checkpoint(files['damaged_crc'], crc_check=True)", "ValueError"),
    Case("bad-crc-unchecked", "ms.load_checkpoint(files['damaged_crc'])", "ok"),
    Case("bad-short-content", "ms.load_checkpoint(files['short'])", "ok", "ValueError",
         "MindSpore reads past the content's end"),
    Case("bad-long-content", "ms.load_checkpoint(files['long'])", "ok", "ValueError",
         "MindSpore ignores the surplus bytes"),
    Case("bad-negative-dim", "ms.load_checkpoint(files['negative_dim'])", "ok", "ValueError",
         "MindSpore builds a tensor of shape (-2,)"),
    Case("bad-no-tensor", "ms.load_checkpoint(files['no_tensor'])", "ok", "ValueError",
         "MindSpore reads it as an empty map parameter"),
    Case("ok-zero-dims-empty", "ms.load_checkpoint(files['zero_dims'])", "ok"),
    # malformed safetensors files
    Case("bad-st-garbage", "ms.load_checkpoint(files['st_garbage'], format='safetensors')", "ValueError"),
    Case("bad-st-truncated", "ms.load_checkpoint(files['st_truncated'], format='safetensors')", "ValueError"),
    Case("bad-st-size", "ms.load_checkpoint(files['st_size'], format='safetensors')", "ValueError"),
    Case("bad-st-huge-header", "ms.load_checkpoint(files['st_huge_header'], format='safetensors')", "ValueError"),
    Case("bad-st-crc", "ms.load_checkpoint(files['st_damaged_crc'], format='safetensors', crc_check=True)",
         "ValueError"),
    Case("bad-st-dtype", "ms.load_checkpoint(files['st_dtype'], format='safetensors')", "KeyError", "ValueError",
         "MindSpore's reader looks 'C64' up in its dtype table"),
    Case("bad-st-list-header", "ms.load_checkpoint(files['st_list'], format='safetensors')", "TypeError",
         "ValueError", "MindSpore's reader calls list.pop('__metadata__', None)"),
    # load_param_into_net (lines 1741-1863, 276-337)
    Case("into-net-int", "ms.load_param_into_net(3, {})", "TypeError"),
    Case("into-dict-list", "ms.load_param_into_net(opt, [])", "TypeError"),
    Case("into-dict-array", "ms.load_param_into_net(opt, {'w': np.ones((3, 4), np.float32)})", "TypeError"),
    Case("into-dict-tensor", "ms.load_param_into_net(opt, {'w': ms.Tensor(np.ones((3, 4), np.float32))})",
         "TypeError"),
    Case("into-dict-key", f"ms.load_param_into_net(opt, {{1: {P2}}})", "TypeError"),
    Case("into-strict-str", "ms.load_param_into_net(opt, {}, strict_load='x')", "TypeError"),
    Case("into-remove-redundancy-str", "ms.load_param_into_net(opt, {}, remove_redundancy='x')", "ValueError"),
    Case("into-remove-redundancy", "ms.load_param_into_net(opt, {}, remove_redundancy=True)", "TypeError"),
    Case("into-shape", "ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.ones((4, 3), np.float32)),"
         "name='w')})", "RuntimeError"),
    Case("into-int-for-float", "ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.ones((3, 4), np.int32)),"
         "name='w')})", "RuntimeError"),
    Case("into-uint8", "ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.ones((3, 4), np.uint8)),"
         "name='w')})", "RuntimeError"),
    Case("into-float64", "ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.full((3, 4), 2.0)), name='w')});"
         "assert opt.parameters_dict()['w'].asnumpy().dtype == np.float32", "ok"),
    Case("into-float64-strict", "ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.full((3, 4), 2.0)),"
         "name='w')}, strict_load=True)", "RuntimeError"),
    Case("into-trailing-ones", "ms.load_param_into_net(opt, {'b': ms.Parameter(ms.Tensor(np.ones((4, 1),"
         "np.float32)), name='b')})", "ok"),
    Case("into-trailing-ones-size", "ms.load_param_into_net(opt, {'b': ms.Parameter(ms.Tensor(np.ones((3, 1),"
         "np.float32)), name='b')})", "ValueError"),
    Case("into-returns", "r = ms.load_param_into_net(opt, {'w': ms.Parameter(ms.Tensor(np.ones((3, 4), np.float32)),"
         "name='w'), 'net.b': ms.Parameter(ms.Tensor(np.ones(4, np.float32)), name='x'), 's': 'text'});"
         "assert r == (['global_step', 'beta1_power', 'beta2_power', 'moment1.w', 'moment1.b', 'moment2.w',"
         "'moment2.b', 'vhat.w', 'vhat.b', 'learning_rate'], ['net.b', 's']), r;"
         "assert opt.parameters_dict()['b'].asnumpy().tolist() == [1.0] * 4", "ok"),
    Case("into-prefix-string", "ms.load_param_into_net(opt, {'net.b': 'text'})", "AttributeError"),
]


def _write_value(path: Path, tag: str, dims: list[int], tensor_type: str, content: bytes) -> None:
    message = schema.Checkpoint()
    value = message.value.add(tag=tag)
    value.tensor.dims.extend(dims)
    value.tensor.tensor_type, value.tensor.tensor_content = tensor_type, content
    path.write_bytes(message.SerializeToString())


def _safetensors(path: Path, header: Any, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


class _Payload:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def make_files(folder: Path) -> dict[str, str]:
    """Good, damaged and malformed checkpoint files for the table."""
    opt = _trained("numpy")
    ms.save_checkpoint(opt, str(folder / "good.ckpt"))
    ms.save_checkpoint(opt, str(folder / "good.safetensors"), format="safetensors")
    ms.save_checkpoint(opt, str(folder / "crc.ckpt"), crc_check=True)
    ms.save_checkpoint(opt, str(folder / "crc.safetensors"), format="safetensors", crc_check=True)
    good = (folder / "good.ckpt").read_bytes()
    damaged = bytearray((folder / "crc.ckpt").read_bytes())
    damaged[-18] ^= 0x01
    st_damaged = bytearray((folder / "crc.safetensors").read_bytes())
    st_damaged[-1] ^= 0x01
    files = {"ckpt": folder / "good.ckpt", "safetensors": folder / "good.safetensors"}
    contents = {
        "random": np.random.default_rng(0).bytes(1000), "text": b"this is not a checkpoint",
        "truncated": good[:-30], "empty": b"", "damaged_crc": bytes(damaged),
        "pickle": pickle.dumps({"w": _Payload(str(folder / "unpickled"))}),
    }
    for name, data in contents.items():
        files[name] = folder / f"{name}.ckpt"
        files[name].write_bytes(data)
    malformed = {
        "tensor_type": ([2], "Float99", b"\0" * 8), "negative_dims": ([-1, -2], "Float32", b"\0" * 8),
        "huge_dims": ([1 << 40, 1 << 20], "Float32", b"\0" * 8), "string": ([0], "str", b"abc"),
        "short": ([4], "Float32", b"\0" * 8), "long": ([1], "Float32", b"\0" * 8),
        "negative_dim": ([-2], "Float32", b"\0" * 8), "zero_dims": ([0], "Float32", b""),
    }
    for name, (dims, tensor_type, content) in malformed.items():
        files[name] = folder / f"{name}.ckpt"
        _write_value(files[name], "a", dims, tensor_type, content)
    files["no_tensor"] = folder / "no_tensor.ckpt"
    message = schema.Checkpoint()
    message.value.add(tag="a")
    files["no_tensor"].write_bytes(message.SerializeToString())
    for name, write in {
        "st_garbage": lambda p: p.write_bytes(b"garbage" * 3),
        "st_truncated": lambda p: p.write_bytes((folder / "good.safetensors").read_bytes()[:-5]),
        "st_size": lambda p: _safetensors(p, {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "st_huge_header": lambda p: p.write_bytes((10**12).to_bytes(8, "little") + b"{}"),
        "st_damaged_crc": lambda p: p.write_bytes(bytes(st_damaged)),
        "st_dtype": lambda p: _safetensors(p, {"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
        "st_list": lambda p: _safetensors(p, [1, 2], b""),
    }.items():
        files[name] = folder / f"{name}.safetensors"
        write(files[name])
    return {name: str(path) for name, path in files.items()}


def _our_namespace(files: dict[str, str], root: Path) -> Any:
    def namespace_for(case_id: str) -> dict[str, Any]:
        opt = run.build_adam(ms, backend="numpy")
        tmp = tempfile.mkdtemp(prefix=f"case-{case_id[:20]}-", dir=root)
        return {"ms": ms, "np": np, "os": os, "net": opt, "opt": opt, "param": opt.parameters[0], "tmp": tmp,
                "files": files}

    return namespace_for


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's outcome here, and in MindSpore when it is installed (one subprocess)."""
    folder = tmp_path_factory.mktemp("table")
    files = make_files(folder)
    cases = [{"id": case.id, "code": "import os\n" + case.code} for case in CASES]
    ours_root = tmp_path_factory.mktemp("table-ours")
    logging.disable(logging.WARNING)  # the deprecation / missing-CRC warnings MindSpore logs too
    try:
        ours = run.run_cases(_our_namespace(files, ours_root), cases)
    finally:
        logging.disable(logging.NOTSET)
    assert not os.path.exists(folder / "unpickled")
    theirs = None
    if _mindspore_dir() is not None:
        out = tmp_path_factory.mktemp("table-mindspore")
        (out / "cases.json").write_text(json.dumps({"files": files, "cases": cases}))
        try:
            theirs = run_mindspore("validate", str(out / "cases.json"), str(out), out=out)
        except pytest.skip.Exception:  # MindSpore does not import: msadam's side is still checked
            theirs = None
        assert not os.path.exists(folder / "unpickled")
    return {"ours": ours, "mindspore": theirs}


def test_table_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_validation_table(table: dict[str, Any], case: Case) -> None:
    assert table["ours"][case.id] == (case.ours or case.mindspore), case.code
    if table["mindspore"] is None:
        pytest.skip("MindSpore is not installed: msadam's side checked against the recorded table only")
    assert table["mindspore"][case.id] == case.mindspore, f"MindSpore 2.10 now gives another outcome: {case.code}"


# ------------------------------------------------------------------------------------- in-process checks


def test_encryption_is_refused_by_name(tmp_path: Path) -> None:
    opt = _trained("numpy")
    with pytest.raises(NotImplementedError, match="enc_key"):
        ms.save_checkpoint(opt, str(tmp_path / "a.ckpt"), enc_key=b"0123456789abcdef")
    assert not list(tmp_path.iterdir())
    ms.save_checkpoint(opt, str(tmp_path / "a.ckpt"))
    with pytest.raises(NotImplementedError, match="dec_key"):
        ms.load_checkpoint(str(tmp_path / "a.ckpt"), dec_key=b"0123456789abcdef")


def test_huge_dims_allocate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "huge.ckpt"
    _write_value(path, "a", [1 << 31, 1 << 31, 1 << 31], "Float64", b"\0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="dims"):
            ms.load_checkpoint(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a checkpoint load unpickled something")

    ms.save_checkpoint({"w": np.ones(3, np.float32)}, str(tmp_path / "good.ckpt"))
    ms.save_checkpoint({"w": np.ones(3, np.float32)}, str(tmp_path / "good"), format="safetensors")
    marker = tmp_path / "unpickled"
    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps(_Payload(str(marker))))
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(_Payload(str(marker))))
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    assert list(ms.load_checkpoint(str(tmp_path / "good.ckpt"))) == ["w"]
    assert list(ms.load_checkpoint(str(tmp_path / "good.safetensors"), format="safetensors")) == ["w"]
    with pytest.raises(ValueError, match="corrupted"):
        ms.load_checkpoint(str(tmp_path / "evil.ckpt"))
    with pytest.raises(ValueError, match="Fail to parse"):
        ms.load_checkpoint(str(tmp_path / "evil.safetensors"), format="safetensors")
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_failed_write_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    target = tmp_path / f"model.{fmt}"
    ms.save_checkpoint({"w": np.ones(3, np.float32)}, str(target), format=fmt)
    before = target.read_bytes()

    def failing_write(stream: Any, *args: Any, **kwargs: Any) -> None:
        stream.write(b"partial")
        raise OSError(28, "No space left on device")

    def failing_save_file(tensors: Any, path: str, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    if fmt == "ckpt":
        monkeypatch.setattr(ckpt_format, "write", failing_write)
    else:
        monkeypatch.setattr(safetensors_format, "save_file", failing_save_file)
    with pytest.raises(OSError, match="No space"):
        ms.save_checkpoint({"w": np.zeros(3, np.float32)}, str(target), format=fmt)
    assert target.read_bytes() == before
    with pytest.raises(OSError, match="No space"):
        ms.save_checkpoint({"w": np.zeros(3, np.float32)}, str(tmp_path / "new"), format=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no new file, no temporary left
    monkeypatch.undo()
    ms.save_checkpoint({"w": np.zeros(3, np.float32)}, str(target), format=fmt)
    assert ms.load_checkpoint(str(target), format=fmt)["w"].asnumpy().tolist() == [0.0] * 3
    assert oct(target.stat().st_mode & 0o777) == oct(atomic.FINAL_MODE)


def test_replacement_is_a_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target only ever changes through one os.replace of a complete, fsynced file."""
    calls: list[tuple[str, str]] = []
    synced: list[str] = []
    real_replace, real_fsync = os.replace, atomic.fsync_file

    def replace(src: Any, dst: Any) -> None:
        assert Path(src).parent == Path(dst).parent and str(src) in synced
        calls.append((str(src), str(dst)))
        real_replace(src, dst)

    def fsync_file(path: str) -> None:
        synced.append(path)
        real_fsync(path)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(atomic, "fsync_file", fsync_file)
    ms.save_checkpoint({"w": np.ones(3, np.float32)}, str(tmp_path / "a.ckpt"))
    assert len(calls) == 1 and calls[0][1] == str(tmp_path / "a.ckpt")


def test_load_param_into_net_writes_nothing_when_one_value_fails() -> None:
    opt = _trained("numpy")
    before = _state(opt)
    bad = {"w": ms.Parameter(np.full((3, 4), 9, np.float32), name="w"),
           "moment1.b": ms.Parameter(np.full((5,), 9, np.float32), name="moment1.b")}
    with pytest.raises(RuntimeError, match="same shape"):
        ms.load_param_into_net(opt, bad)
    after = _state(opt)
    assert all(np.array_equal(after[name], before[name]) for name in before)


def test_load_param_into_net_accepts_a_mapping_and_skips_accu_grads(msadam_backend: str) -> None:
    net = {"w": msadam.Parameter(np.zeros(2, np.float32), name="w", backend=msadam_backend),
           "accu_grads.w": msadam.Parameter(np.zeros(2, np.float32), name="accu_grads.w", backend=msadam_backend),
           "c": msadam.Parameter(np.zeros(1, np.int32), name="c", backend=msadam_backend)}
    loaded = {"w": ms.Parameter(np.array([1.0, 2.0]), name="w"), "c": ms.Parameter(np.array([3], np.int64), name="c")}
    assert ms.load_param_into_net(net, loaded) == ([], [])
    assert net["w"].asnumpy().tolist() == [1.0, 2.0] and net["w"].dtype == np.float32
    assert net["c"].asnumpy().tolist() == [3] and net["c"].backend == msadam_backend


def test_save_accepts_native_arrays_of_every_backend(msadam_backend: str, tmp_path: Path) -> None:
    values = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(1.5, np.float32),
              "i": np.array([4], np.int32)}
    native = {name: msadam.Parameter(array, name=name, backend=msadam_backend).data for name, array in values.items()}
    for fmt in ("ckpt", "safetensors"):
        ms.save_checkpoint(native, str(tmp_path / "dict"), format=fmt)
        ms.save_checkpoint([{"name": k, "data": v} for k, v in native.items()], str(tmp_path / "list"), format=fmt)
        for stem in ("dict", "list"):
            loaded = ms.load_checkpoint(str(tmp_path / f"{stem}.{fmt}"), format=fmt)
            for name, array in values.items():
                got = loaded[name].asnumpy()
                assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)


def test_async_save_completes_with_mindspores_async_layout(tmp_path: Path) -> None:
    """MindSpore's asynchronous save keeps an empty tensor (dims [0], no content); the synchronous one drops it."""
    values = {"p": np.ones(2, np.float32), "e": np.zeros(0, np.float32)}
    ms.save_checkpoint(values, str(tmp_path / "async.ckpt"), async_save="thread")
    written = schema.Checkpoint.FromString((tmp_path / "async.ckpt").read_bytes())
    assert [(v.tag, list(v.tensor.dims), v.tensor.tensor_type, v.tensor.tensor_content) for v in written.value] == [
        ("p", [2], "Float32", np.ones(2, np.float32).tobytes()), ("e", [0], "Float32", b"")]
    loaded = ms.load_checkpoint(str(tmp_path / "async.ckpt"))
    assert loaded["e"].shape == (0,)
    ms.save_checkpoint(values, str(tmp_path / "sync.ckpt"))
    assert list(ms.load_checkpoint(str(tmp_path / "sync.ckpt"))) == ["p"]


def test_safetensors_metadata_is_mindspores(tmp_path: Path) -> None:
    values = {"b": np.ones(2, np.float32), "a": np.array(3, np.int32)}
    ms.save_checkpoint(values, str(tmp_path / "x"), format="safetensors", crc_check=True, remove_redundancy=False)
    raw = (tmp_path / "x.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"] == {"format": "ms", "remove_redundancy": "False",
                                      "crc_num": header["__metadata__"]["crc_num"]}
    assert header["a"]["dtype"] == "I32" and header["a"]["shape"] == []
    ms.save_checkpoint({}, str(tmp_path / "empty"), format="safetensors")
    assert (tmp_path / "empty.safetensors").read_bytes()[8:].strip() == b"{}"


def test_loaded_dict_saves_again(tmp_path: Path) -> None:
    opt = _trained("numpy")
    ms.save_checkpoint(opt, str(tmp_path / "a.ckpt"), append_dict={"epoch": 3, "note": "x"})
    loaded = ms.load_checkpoint(str(tmp_path / "a.ckpt"))
    ms.save_checkpoint(loaded, str(tmp_path / "b.ckpt"))
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes()


def test_crc_detects_every_single_byte_flip_in_content(tmp_path: Path) -> None:
    ms.save_checkpoint({"w": np.arange(4, dtype=np.float32)}, str(tmp_path / "a.ckpt"), crc_check=True)
    data = (tmp_path / "a.ckpt").read_bytes()
    offset = data.index(np.arange(4, dtype=np.float32).tobytes())
    for index in range(offset, offset + 16):
        damaged = bytearray(data)
        damaged[index] ^= 0x10
        path = tmp_path / f"d{index}.ckpt"
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="crc"):
            ms.load_checkpoint(str(path), crc_check=True)


def test_bfloat16_round_trip(tmp_path: Path) -> None:
    if dtypes.BFLOAT16 is None:
        pytest.skip("ml_dtypes is not installed")
    value = np.array([1.5, -2.0], np.float32).astype(dtypes.BFLOAT16)
    for fmt in ("ckpt", "safetensors"):
        ms.save_checkpoint({"x": value}, str(tmp_path / "x"), format=fmt)
        got = ms.load_checkpoint(str(tmp_path / f"x.{fmt}"), format=fmt)["x"].asnumpy()
        assert got.dtype == dtypes.BFLOAT16 and got.tobytes() == value.tobytes()


def test_bytesio_safetensors(tmp_path: Path) -> None:
    ms.save_checkpoint({"w": np.ones(3, np.float32)}, str(tmp_path / "a"), format="safetensors", crc_check=True)
    buffer = io.BytesIO((tmp_path / "a.safetensors").read_bytes())
    assert ms.load_checkpoint(buffer, format="safetensors", crc_check=True)["w"].asnumpy().tolist() == [1.0] * 3


def test_map_tensor_slices_read_as_mindspore_reads_them(tmp_path: Path) -> None:
    """A MapParameter entry (keys, values, status) in two slices: MindSpore 2.10 returns the joined arrays
    (checked against it: keys [10, 11, 20, 21, 22], values rows of 1s then 2s, status zeros)."""
    (tmp_path / "map.ckpt").write_bytes(map_tensor_checkpoint())
    loaded = ms.load_checkpoint(str(tmp_path / "map.ckpt"))
    keys, values, status = loaded["emb"]
    assert keys.tolist() == [10, 11, 20, 21, 22] and status.tolist() == [0] * 5
    assert values.dtype == np.float32 and values.tolist() == [[1.0, 1.0]] * 2 + [[2.0, 2.0]] * 3
    net = {"w": ms.Parameter(np.zeros(2, np.float32), name="w"),
           "emb": ms.Parameter(np.zeros(1, np.float32), name="emb")}
    assert ms.load_param_into_net(net, loaded) == ([], ["emb"])  # a list value is skipped, as in MindSpore


@pytest.mark.parametrize("data", [b"\x2b" * 100_000 + b"\x2c" * 100_000, b"\x0a\xff\xff\xff\xff\x07" + b"\0" * 10,
                                  b"crc_num" + b"\0" * 10], ids=["deep-groups", "2GiB-length", "trailer-only"])
def test_hostile_ckpt_bytes_fail_fast(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "x.ckpt").write_bytes(data)
    with pytest.raises(ValueError):
        ms.load_checkpoint(str(tmp_path / "x.ckpt"), crc_check=True)
