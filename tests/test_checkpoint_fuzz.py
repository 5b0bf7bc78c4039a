"""``ms.load_checkpoint`` on adversarial files: it loads, or it raises ``ValueError`` — nothing else.

Property-based (hypothesis, derandomized) and exhaustive where the space is small:

* valid ``.ckpt`` (plain, with a CRC trailer, with a map tensor) and safetensors files (plain, with
  a CRC; read from a path and from a ``BytesIO``), mutated: bit flips, inserted, deleted,
  overwritten and duplicated bytes, truncation — truncation at *every* position of every file;
* ``.ckpt`` files written field by field on the protobuf wire: oversized, negative and huge
  dims, packed and unpacked, wrong ``tensor_type`` strings, text that is not UTF-8, unknown fields
  and wire types at every nesting level, missing required fields, map tensors, contents whose
  length disagrees with the dims;
* safetensors files with crafted headers: huge or short declared header lengths, huge, negative,
  reversed or non-integer offsets and shapes, unknown dtypes, headers that are not objects, odd
  metadata (``crc_num`` included);
* with ``crc_check=True``, *every* single-bit flip of a file with a CRC is detected (a
  ``ValueError``). The one exception is MindSpore's own design: a safetensors CRC covers the tensor
  names and bytes, not the header's ``__metadata__`` strings, so a flip there may load — and then
  every tensor must be bit-identical to the original.

MindSpore's class for all of these is ``ValueError`` (``serialization.py`` wraps every read error in
it, lines 1294-1297 and 1709-1720). Each load runs in a worker process (started once) with a low
resident-set baseline, under a per-load timer: an outcome other than a result or a ``ValueError``,
a hang, a crash of the worker, or a peak-RSS growth above ``RSS_CAP_KIB`` fails the test.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ms = pytest.importorskip("msadam_compat")
pytest.importorskip("google.protobuf")
pytest.importorskip("safetensors")
from checkpoint_files import map_tensor_checkpoint  # noqa: E402 - tests/ is not a package
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

RSS_CAP_KIB = 32 * 1024  # peak-RSS growth allowed for one load
LOAD_TIMEOUT = 5.0  # seconds, per load, inside the worker
HANG_TIMEOUT = 60.0  # seconds the test waits for the worker's answer before calling it a hang
ALLOWED = {"ok", "ValueError"}
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

WORKER = textwrap.dedent("""
    import hashlib, io, json, logging, resource, signal, sys, time
    logging.disable(logging.CRITICAL)  # the missing-CRC and deprecation warnings MindSpore logs too
    import numpy as np
    import msadam_compat as ms

    class LoadTimeout(BaseException):
        pass

    def on_alarm(*_):
        raise LoadTimeout()

    signal.signal(signal.SIGALRM, on_alarm)

    def status_kib(field):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def reset_peak():
        # Linux: writing 5 to clear_refs resets the high-water mark VmHWM to the current RSS, so the
        # growth measured is what this load allocates, not an old peak minus memory freed since.
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return status_kib("VmRSS"), lambda: status_kib("VmHWM")
        except OSError:  # elsewhere: the process's peak so far (may undercount)
            return peak_kib(), peak_kib

    def peak_kib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def digest(loaded):
        out = {}
        for name, value in loaded.items():
            if isinstance(value, str):
                out[name] = ["str", value]
            elif isinstance(value, list):
                out[name] = ["map", [hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest() for a in value]]
            else:
                array = value.asnumpy()
                out[name] = [str(array.dtype), list(array.shape),
                             hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()]
        return out

    print(json.dumps({"ready": peak_kib()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        before, peak = reset_peak()
        start = time.perf_counter()
        outcome, detail = "ok", None
        signal.setitimer(signal.ITIMER_REAL, request["timeout"])
        try:
            source = request["path"]
            if request["buffer"]:
                with open(source, "rb") as handle:
                    source = io.BytesIO(handle.read())
            loaded = ms.load_checkpoint(source, format=request["format"], crc_check=request["crc_check"])
            signal.setitimer(signal.ITIMER_REAL, 0)
            if all(isinstance(name, str) for name in loaded):
                detail = digest(loaded)
            else:
                outcome, detail = "a dict with names that are not str", repr(list(loaded))[:500]
        except LoadTimeout:
            outcome = "timeout"
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome, detail = type(exc).__name__, str(exc)[-500:]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        reply = {"outcome": outcome, "detail": detail, "rss_growth_kib": peak() - before,
                 "seconds": time.perf_counter() - start}
        print(json.dumps(reply), flush=True)
""")


class Loader:
    """A worker process that runs ``ms.load_checkpoint`` on the bytes it is given and reports what happened."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.timeout = LOAD_TIMEOUT
        self.process: subprocess.Popen[str] | None = None
        self._start()

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(self.folder))
        ready = self._reply()
        assert "ready" in ready, ready

    def _reply(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], HANG_TIMEOUT)
        if not readable:
            self.close()
            return {"outcome": "hang (no answer from the worker)"}
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self.close()
            return {"outcome": f"crash (the worker died with exit status {code})"}
        result: dict[str, Any] = json.loads(line)
        return result

    def load(self, data: bytes, fmt: str, crc_check: bool, buffer: bool = False) -> dict[str, Any]:
        if self.process is None:
            self._start()
        assert self.process is not None and self.process.stdin is not None
        self.count += 1
        path = self.folder / f"case.{fmt}"
        path.write_bytes(data)
        request = {"path": str(path), "format": fmt, "crc_check": crc_check, "buffer": buffer,
                   "timeout": self.timeout}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()
            self.process = None


def assert_clean(result: dict[str, Any], data: bytes, what: str) -> None:
    """A result or a ValueError, in time, without a large allocation."""
    label = f"{what} ({len(data)} bytes, sha1 {hashlib.sha1(data).hexdigest()[:12]}, head {data[:40]!r})"
    assert result["outcome"] in ALLOWED, f"{label}: {result}"
    assert result["rss_growth_kib"] <= RSS_CAP_KIB, f"{label}: peak RSS grew by {result['rss_growth_kib']} KiB"
    assert result["seconds"] < LOAD_TIMEOUT, f"{label}: {result['seconds']:.1f} s"


# ------------------------------------------------------------------------------------------ valid files


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float16),
            "step": np.array([7], np.int32), "scale": np.array(2.5), "mask": np.array([True, False, True])}


# name -> (format, the bytes, read from a BytesIO)
Bases = dict[str, tuple[str, bytes, bool]]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Bases:
    folder = tmp_path_factory.mktemp("fuzz-bases")
    tensors = _tensors()
    ms.save_checkpoint(tensors, str(folder / "plain.ckpt"), append_dict={"note": "héllo", "epoch": 3})
    ms.save_checkpoint(tensors, str(folder / "crc.ckpt"), append_dict={"note": "héllo", "epoch": 3}, crc_check=True)
    ms.save_checkpoint(tensors, str(folder / "plain"), format="safetensors")
    ms.save_checkpoint(tensors, str(folder / "crc"), format="safetensors", crc_check=True)
    files: Bases = {
        "ckpt": ("ckpt", (folder / "plain.ckpt").read_bytes(), False),
        "ckpt-crc": ("ckpt", (folder / "crc.ckpt").read_bytes(), False),
        "ckpt-map": ("ckpt", map_tensor_checkpoint(), False),
        "st": ("safetensors", (folder / "plain.safetensors").read_bytes(), False),
        "st-crc": ("safetensors", (folder / "crc.safetensors").read_bytes(), False),
        "st-crc-buffer": ("safetensors", (folder / "crc.safetensors").read_bytes(), True),
    }
    return files


@pytest.fixture(scope="module")
def loader(tmp_path_factory: pytest.TempPathFactory, bases: Bases) -> Iterator[Loader]:
    worker = Loader(tmp_path_factory.mktemp("fuzz-worker"))
    for name, (fmt, data, buffer) in bases.items():  # warm up (lazy imports), and the files are valid
        for crc_check in (False, True):
            result = worker.load(data, fmt, crc_check, buffer)
            assert result["outcome"] == "ok", (name, result)
    yield worker
    worker.close()


def _original(loader: Loader, bases: Bases, name: str) -> dict[str, Any]:
    fmt, data, buffer = bases[name]
    result = loader.load(data, fmt, True, buffer)
    assert result["outcome"] == "ok"
    detail: dict[str, Any] = result["detail"]
    return detail


# ------------------------------------------------------------------------------------------ mutations


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, bytes]]:
    """1-4 edits of a file of ``size`` bytes: (kind, position, bytes or a length)."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "insert", "delete", "overwrite", "duplicate", "truncate"]))
        position = draw(st.integers(0, max(size - 1, 0)))
        if kind == "flip":
            payload = bytes([1 << draw(st.integers(0, 7))])
        elif kind in ("insert", "overwrite"):
            payload = draw(st.one_of(st.binary(min_size=1, max_size=24),
                                     st.sampled_from([b"\xff" * 10, b"\x80" * 12, b"\x0a\xff\xff\xff\xff\x0f",
                                                      b"crc_num", b'{"a":', b"\x00" * 8])))
        else:
            payload = bytes([draw(st.integers(1, 64))])
        edits.append((kind, position, payload))
    return edits


def apply(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, position, payload in edits:
        position = min(position, len(out))
        if kind == "flip" and position < len(out):
            out[position] ^= payload[0]
        elif kind == "insert":
            out[position:position] = payload
        elif kind == "delete":
            del out[position:position + payload[0]]
        elif kind == "overwrite":
            out[position:position + len(payload)] = payload
        elif kind == "duplicate":
            out[position:position] = out[position:position + payload[0]]
        elif kind == "truncate":
            del out[position:]
    return bytes(out)


BASE_NAMES = ["ckpt", "ckpt-crc", "ckpt-map", "st", "st-crc", "st-crc-buffer"]


@FUZZ
@given(data=st.data(), name=st.sampled_from(BASE_NAMES), crc_check=st.booleans())
def test_mutated_files_load_or_raise_value_error(loader: Loader, bases: Bases, data: st.DataObject, name: str,
                                                 crc_check: bool) -> None:
    fmt, original, buffer = bases[name]
    edits = data.draw(mutations(len(original)))
    mutated = apply(original, edits)
    assert_clean(loader.load(mutated, fmt, crc_check, buffer), mutated, f"{name} after {edits}")


@pytest.mark.parametrize("name", BASE_NAMES)
def test_truncation_at_every_position(loader: Loader, bases: Bases, name: str) -> None:
    fmt, original, buffer = bases[name]
    for end in range(len(original)):
        for crc_check in (False, True):
            truncated = original[:end]
            result = loader.load(truncated, fmt, crc_check, buffer)
            assert_clean(result, truncated, f"{name}[:{end}]")
            if name.startswith("st"):
                assert result["outcome"] == "ValueError", f"{name}[:{end}] loaded"  # safetensors checks its size


@pytest.mark.parametrize("name", ["ckpt-crc", "st-crc", "st-crc-buffer"])
def test_crc_detects_every_single_bit_flip(loader: Loader, bases: Bases, name: str) -> None:
    fmt, original, buffer = bases[name]
    expected = _original(loader, bases, name)
    header_end = 8 + int.from_bytes(original[:8], "little") if fmt == "safetensors" else 0
    metadata = json.loads(original[8:header_end])["__metadata__"] if fmt == "safetensors" else {}
    uncovered = 0
    for index in range(len(original)):
        for bit in range(8):
            damaged = bytearray(original)
            damaged[index] ^= 1 << bit
            result = loader.load(bytes(damaged), fmt, True, buffer)
            assert_clean(result, bytes(damaged), f"{name} with bit {bit} of byte {index} flipped")
            if result["outcome"] == "ValueError":
                continue
            # Loaded: only possible where the CRC does not reach (MindSpore's design, see the module docstring).
            near = original[max(index - 12, 0):index + 12]
            where = f"{name}: bit {bit} of byte {index} ({near!r}) flipped, not detected"
            assert fmt == "safetensors" and index < header_end, where
            header = json.loads(bytes(damaged[8:header_end]))
            assert header.get("__metadata__") != metadata, where  # the flip landed in the metadata...
            assert {k: v for k, v in header.items() if k != "__metadata__"} == \
                {k: v for k, v in json.loads(original[8:header_end]).items() if k != "__metadata__"}, where
            assert result["detail"] == expected, where  # ...and the tensors are the original ones
            uncovered += 1
    print(f"{name}: {uncovered} of {8 * len(original)} single-bit flips load (in __metadata__ strings)")
    assert uncovered < len(original)  # a handful of metadata characters, not whole regions


# ------------------------------------------------------------------------------------------ crafted .ckpt

CKPT_TYPES = ["Float32", "Float16", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
              "UInt64", "Bool", "BFloat16", "str"]
ODD_CKPT_TYPES = ["Int4", "float32", "int32", "Float99", "", "Float32\x00"]
ITEM = {"Float32": 4, "Float16": 2, "Float64": 8, "Int8": 1, "Int16": 2, "Int32": 4, "Int64": 8, "UInt8": 1,
        "UInt16": 2, "UInt32": 4, "UInt64": 8, "Bool": 1, "BFloat16": 2, "str": 4, "float32": 4, "int32": 4}
HUGE = [2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, -1, -2, -(2**63)]  # int64 dims MindSpore could be handed
MAP_TYPES = ["int32", "float32", "float16", "float64"]  # str(numpy dtype), as MindSpore writes a map tensor


def rarely(draw: st.DrawFn, one_in: int = 8) -> bool:
    """True about once in ``one_in`` draws (and False in hypothesis's simplest examples): most fields stay well
    formed, so that the decoder gets past the parser."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1 if n < 0 else (1 << 70) - 1  # a negative int64 is ten bytes, as protobuf writes it
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


@st.composite
def unknown_field(draw: st.DrawFn) -> bytes:
    """A field the schema does not declare, or a declared number with a foreign wire type (kept as unknown);
    rarely a malformed one (an unclosed group, wire types 6 and 7, a varint past 64 bits)."""
    field = draw(st.integers(1, 3)) if rarely(draw, 4) else draw(st.integers(4, 2**29 - 1))
    if rarely(draw):
        wire = draw(st.sampled_from([3, 4, 6, 7, 0]))
        if wire == 0:
            return key(field, 0) + b"\xff" * 10 + b"\x01"
        return key(field, wire) + draw(st.binary(max_size=4))
    wire = draw(st.sampled_from([0, 1, 2, 5, 3]))
    if wire == 0:
        return key(field, 0) + varint(draw(st.integers(0, 2**64 - 1)))
    if wire == 1:
        return key(field, 1) + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return key(field, 5) + draw(st.binary(min_size=4, max_size=4))
    if wire == 3:  # a well-formed group
        return key(field, 3) + key(1, 0) + varint(7) + key(field, 4)
    return delimited(field, draw(st.binary(max_size=16)))


@st.composite
def text_field(draw: st.DrawFn, choices: list[str]) -> bytes:
    """A string's bytes: a known value, rarely any text or bytes that are not UTF-8."""
    if rarely(draw, 4):
        return draw(st.one_of(st.text(max_size=8).map(str.encode),
                              st.sampled_from([b"\xff\xfe", b"Float\xc332", b"\xed\xa0\x80"])))
    return draw(st.sampled_from(choices)).encode()


@st.composite
def tensor_proto(draw: st.DrawFn, types: list[str] = CKPT_TYPES) -> bytes:
    tensor_type = draw(st.sampled_from(ODD_CKPT_TYPES if rarely(draw) else types))
    dims = draw(st.lists(st.integers(0, 4), min_size=0 if types is CKPT_TYPES else 1, max_size=4))
    if rarely(draw, 4):
        dims = draw(st.lists(st.one_of(st.integers(0, 4), st.sampled_from(HUGE)), min_size=1, max_size=4))
    count = 1
    for d in dims:
        count *= d
    right = ITEM.get(tensor_type, 4) * count if all(0 <= d <= 4 for d in dims) else 8
    length = draw(st.integers(0, 40)) if rarely(draw, 4) else right
    content = draw(st.binary(min_size=length, max_size=length))
    parts = []
    if draw(st.booleans()):
        parts.append(delimited(1, b"".join(varint(d) for d in dims)))  # packed dims
    else:
        parts += [key(1, 0) + varint(d) for d in dims]
    if not rarely(draw, 20):  # rarely a required field is missing
        parts.append(delimited(2, draw(text_field([tensor_type]))))
    if not rarely(draw, 20):
        parts.append(delimited(3, content))
    if rarely(draw, 3):
        parts += draw(st.lists(unknown_field(), min_size=1, max_size=2))
    return b"".join(draw(st.permutations(parts)) if rarely(draw, 3) else parts)


@st.composite
def ckpt_value(draw: st.DrawFn) -> bytes:
    parts = [] if rarely(draw, 20) else [delimited(1, draw(text_field(["w", "emb", "moment1.w", "a" * 50])))]
    kind = draw(st.sampled_from(["tensor", "map", "none", "both"])) if rarely(draw, 2) else "tensor"
    if kind in ("tensor", "both"):
        parts.append(delimited(2, draw(tensor_proto())))
    if kind in ("map", "both"):
        tensors = [draw(tensor_proto(MAP_TYPES)) for _ in range(draw(st.integers(0, 4)))]
        parts.append(delimited(3, b"".join(delimited(1, tensor) for tensor in tensors)))
    if rarely(draw, 3):
        parts += draw(st.lists(unknown_field(), min_size=1, max_size=2))
    return b"".join(draw(st.permutations(parts)) if rarely(draw, 3) else parts)


@st.composite
def ckpt_file(draw: st.DrawFn) -> bytes:
    parts = [delimited(1, draw(ckpt_value())) for _ in range(0 if rarely(draw, 12) else draw(st.integers(1, 4)))]
    if draw(st.booleans()):  # a slice of the previous entry: the same tag again (joined by the reader)
        parts += parts[-1:]
    if rarely(draw, 3):
        parts += draw(st.lists(unknown_field(), min_size=1, max_size=2))
    body = b"".join(draw(st.permutations(parts)) if rarely(draw, 3) else parts)
    trailer = draw(st.sampled_from(["none", "none", "good", "bad"]))
    if trailer == "none":
        return body
    crc = binascii.crc32(body) ^ (1 if trailer == "bad" else 0)
    return body + b"crc_num" + crc.to_bytes(10, "big")


@FUZZ
@given(data=ckpt_file(), crc_check=st.booleans())
def test_crafted_ckpt_messages_load_or_raise_value_error(loader: Loader, data: bytes, crc_check: bool) -> None:
    assert_clean(loader.load(data, "ckpt", crc_check), data, "crafted .ckpt")


@pytest.mark.parametrize("value", [
    delimited(1, b"\xff\xfe") + delimited(3, b""),  # an empty map tensor: {b'\xff\xfe': []} before the fix
    delimited(1, b"\xed\xa0\x80") + delimited(2, delimited(2, b"Float32") + delimited(3, b"\0" * 4)),
], ids=["map", "tensor"])
def test_a_tag_that_is_not_utf8_is_a_value_error(loader: Loader, value: bytes) -> None:
    """protobuf returns such a proto2 string as bytes: no dict keyed by bytes, no TypeError from Parameter."""
    data = delimited(1, value)
    result = loader.load(data, "ckpt", False)
    # Our decode() says "not UTF-8"; a protobuf runtime that checks proto2 strings itself fails earlier
    # (in CI's fresh environment) with "'utf-8' codec can't decode": a ValueError either way.
    assert result["outcome"] == "ValueError" and "utf-8" in result["detail"].lower(), result


# ------------------------------------------------------------------------------------------ crafted safetensors

ST_TYPES = ["F32", "F16", "F64", "BF16", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"]
ODD_ST_TYPES = ["C64", "F8_E4M3", "f32", "", "F32 "]
ST_ITEM = {"F32": 4, "F16": 2, "F64": 8, "BF16": 2, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "U8": 1, "U16": 2,
           "U32": 4, "U64": 8, "BOOL": 1}
JSON_ODD = st.sampled_from([None, 1.5, "3", True, [], {}, -1, 2**64, 2**70, "\u0000"])
ST_HUGE = [*HUGE, 2**64 - 1, 2**64, 10**30]


@st.composite
def safetensors_file(draw: st.DrawFn) -> bytes:
    header: Any = {}
    offset = 0
    for index in range(0 if rarely(draw, 12) else draw(st.integers(1, 3))):
        dtype = draw(st.sampled_from(ST_TYPES))
        if rarely(draw):
            dtype = draw(st.one_of(st.sampled_from(ODD_ST_TYPES), JSON_ODD))
        shape: Any = draw(st.lists(st.integers(0, 3), max_size=3))
        if rarely(draw):
            shape = draw(st.one_of(JSON_ODD, st.lists(st.one_of(st.integers(0, 3), st.sampled_from(ST_HUGE),
                                                                  JSON_ODD), min_size=1, max_size=3)))
        count = 1
        for d in shape if isinstance(shape, list) else []:
            count *= d if isinstance(d, int) and not isinstance(d, bool) else 1
        size = ST_ITEM.get(dtype, 4) * count if isinstance(dtype, str) else 4
        size = size if 0 <= size <= 64 else 8
        offsets: Any = [offset, offset + size]
        if rarely(draw):
            offsets = draw(st.one_of(st.lists(st.one_of(st.integers(-2, 80), st.sampled_from(ST_HUGE)), max_size=3),
                                     JSON_ODD))
        offset += size
        entry = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
        if rarely(draw, 12):
            del entry[draw(st.sampled_from(sorted(entry)))]
        if rarely(draw, 12):
            entry["extra"] = 1
        header[draw(st.sampled_from([f"t{index}", "__metadata__", ""])) if rarely(draw, 12) else f"t{index}"] = entry
    if draw(st.booleans()):
        metadata = draw(st.dictionaries(
            st.sampled_from(["format", "crc_num", "remove_redundancy", "t0", "x"]),
            st.sampled_from(["ms", "True", "False", "Int4", "0", "-1", "12ab", str(2**70)]), max_size=3))
        header["__metadata__"] = draw(JSON_ODD) if rarely(draw) else metadata
    if rarely(draw, 15):
        header = draw(st.one_of(JSON_ODD, st.lists(st.integers(), max_size=2)))
    raw = json.dumps(header).encode() + b" " * draw(st.integers(0, 8))
    length = len(raw)
    if rarely(draw, 6):
        length = draw(st.sampled_from([0, 1, len(raw) - 1, len(raw) + 1, 2**31, 10**12, 2**63, 2**64 - 1]))
    data = draw(st.binary(min_size=offset, max_size=offset + (draw(st.integers(1, 4)) if rarely(draw) else 0)))
    return max(length, 0).to_bytes(8, "little") + raw + data


@FUZZ
@given(data=safetensors_file(), crc_check=st.booleans(), buffer=st.booleans())
def test_crafted_safetensors_load_or_raise_value_error(loader: Loader, data: bytes, crc_check: bool,
                                                       buffer: bool) -> None:
    assert_clean(loader.load(data, "safetensors", crc_check, buffer), data, "crafted safetensors")


# ------------------------------------------------------------------------------------------ the harness itself


def test_the_harness_catches_what_it_must(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker reports other exceptions, slow loads, big allocations and its own death, so the
    properties above can fail. (A stand-in ``load_checkpoint`` misbehaves on purpose.)"""
    saboteur = tmp_path / "msadam_compat"
    saboteur.mkdir()
    (saboteur / "__init__.py").write_text(textwrap.dedent("""
        import os, time
        def load_checkpoint(source, format, crc_check):
            kind = open(source, "rb").read()
            if kind == b"type":
                raise TypeError("not a ValueError")
            if kind == b"slow":
                while True:
                    time.sleep(0.01)
            if kind == b"big":
                block = bytearray(64 * 2**20)
                block[::4096] = b"x" * len(block[::4096])
                return {}
            if kind == b"die":
                os._exit(3)
            return {}
    """))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    worker = Loader(tmp_path)
    worker.timeout = 0.5
    try:
        results = {kind: worker.load(kind.encode(), "ckpt", False) for kind in ("type", "slow", "big", "ok", "die")}
    finally:
        worker.close()
    assert results["type"]["outcome"] == "TypeError"
    assert results["slow"]["outcome"] == "timeout"
    assert results["big"]["outcome"] == "ok" and results["big"]["rss_growth_kib"] > RSS_CAP_KIB
    assert results["ok"]["outcome"] == "ok" and results["ok"]["rss_growth_kib"] <= RSS_CAP_KIB
    assert results["die"]["outcome"].startswith("crash")
    for kind in ("type", "slow", "big"):
        with pytest.raises(AssertionError):
            assert_clean(results[kind], kind.encode(), kind)
