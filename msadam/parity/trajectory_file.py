"""Trajectory records: one reference trajectory in a ``.npz`` with the scenario and versions that made it.

The file is a plain NumPy archive, read with ``allow_pickle=False`` (a record is data, never code):

* ``traj/<key>``: the trajectory's arrays (float32; ``global_step`` int32), stacked over steps;
* ``metadata``: a 0-d string array holding JSON::

    {"format": "msadam-trajectory", "format_version": 1,
     "scenario": {...}, "inputs_digest": "<sha256 of the initial values and gradients>",
     "reference": {"name": "mindspore", "version": "2.10.0", "time_per_step_s": 0.0012},
     "versions": {"msadam": "...", "numpy": "...", "python": "...", "platform": "..."},
     "created": "2026-11-02T10:00:00Z"}

The golden fixtures of the test suite are records too. Those written before this module have no
``metadata`` but three string arrays, ``scenario``, ``mindspore_version`` and ``inputs_digest``;
:func:`load_record` reads both layouts. Every problem with a file (missing, truncated, corrupted,
not a record, a scenario that does not check, arrays that do not fit the scenario) is an
:class:`~msadam.parity.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from msadam.parity.errors import InputError
from msadam.parity.run import Trajectory, inputs_digest
from msadam.parity.scenario_file import validate_scenario
from msadam.parity.scenarios import Scenario, to_json

__all__ = ["FORMAT", "FORMAT_VERSION", "Record", "environment_versions", "load_record", "save_record"]

FORMAT = "msadam-trajectory"
FORMAT_VERSION = 1
_PREFIX = "traj/"


@dataclass(frozen=True)
class Record:
    """A reference trajectory and what produced it."""

    scenario: Scenario
    trajectory: Trajectory
    reference: str  # "mindspore" or an msadam backend name ("numpy")
    reference_version: str
    inputs_digest: str
    time_per_step: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None

    @property
    def mindspore_version(self) -> str | None:
        """MindSpore's version when MindSpore made this record, else ``None``."""
        return self.reference_version if self.reference == "mindspore" else None


def environment_versions() -> dict[str, str]:
    """msadam's, NumPy's and Python's versions and the platform: what every record and report carries."""
    from msadam import __version__

    return {"msadam": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": f"{sys.platform}-{platform.machine()}"}


def save_record(path: str | Path, record: Record) -> None:
    """Write ``record`` as a compressed ``.npz`` (float32 arrays, int32 ``global_step``)."""
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "scenario": json.loads(to_json(record.scenario)),
        "inputs_digest": record.inputs_digest,
        "reference": {"name": record.reference, "version": record.reference_version,
                      "time_per_step_s": record.time_per_step},
        "versions": record.versions or environment_versions(),
        "created": record.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    payload: dict[str, Any] = {f"{_PREFIX}{k}": np.asarray(v).astype(np.int32 if k == "global_step" else np.float32)
                               for k, v in record.trajectory.items()}
    payload["metadata"] = np.array(json.dumps(metadata, sort_keys=True))
    with open(path, "wb") as out:  # np.savez_compressed would append ".npz" to a path without it
        np.savez_compressed(out, **payload)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise InputError(f"record file {str(path)!r} does not exist" if not path.exists()
                         else f"record file {str(path)!r} is not a file")
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise InputError(f"cannot read record file {str(path)!r}: {exc.strerror or exc}") from None
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # np.load would try other formats (even pickle)
        raise InputError(f"record file {str(path)!r} is not an .npz archive "
                         f"({'empty' if not magic else 'it does not start as a zip file does'})")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an archive")
            return {key: data[key] for key in data.files}  # read every member now: CRC errors surface here
    except Exception as exc:  # zipfile, zlib, pickle refusal, OSError...: any of them means "not readable"
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"record file {str(path)!r} is not a readable .npz archive "
                         f"(truncated or corrupted?): {detail}") from None


def _text(arrays: dict[str, np.ndarray], key: str, path: Path) -> str:
    value = arrays[key]
    if value.shape != () or value.dtype.kind != "U":
        raise InputError(f"record file {str(path)!r}: {key!r} is not a string")
    return str(value)


def _metadata(arrays: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    if "metadata" in arrays:
        try:
            meta = json.loads(_text(arrays, "metadata", path))
        except json.JSONDecodeError as exc:
            raise InputError(f"record file {str(path)!r}: its metadata is not valid JSON ({exc.msg})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise InputError(f"record file {str(path)!r} is not an msadam trajectory record")
        if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
            raise InputError(f"record file {str(path)!r} has format version {meta.get('format_version')!r}; "
                             f"this msadam reads version {FORMAT_VERSION} (upgrade msadam)")
        return meta
    if {"scenario", "mindspore_version", "inputs_digest"} <= set(arrays):  # the first fixtures' layout
        try:
            scen = json.loads(_text(arrays, "scenario", path))
        except json.JSONDecodeError as exc:
            raise InputError(f"record file {str(path)!r}: its scenario is not valid JSON ({exc.msg})") from None
        return {"scenario": scen, "inputs_digest": _text(arrays, "inputs_digest", path),
                "reference": {"name": "mindspore", "version": _text(arrays, "mindspore_version", path)}}
    raise InputError(f"record file {str(path)!r} is not an msadam trajectory record (no metadata)")


def _check_arrays(trajectory: Trajectory, scen: Scenario, path: Path) -> None:
    """The arrays a run of ``scen`` produces, each with ``steps`` rows and its parameter's shape."""
    names = [p["name"] for p in scen["params"]]
    slots = ("param", "moment1", "moment2", *(("vhat",) if scen["use_amsgrad"] else ()))
    expected = {"beta1_power", "beta2_power", "global_step", *(f"lr/{n}" for n in names),
                *(f"{slot}/{n}" for slot in slots for n in names)}
    if set(trajectory) != expected:
        missing, extra = sorted(expected - set(trajectory)), sorted(set(trajectory) - expected)
        raise InputError(f"record file {str(path)!r}: its arrays do not fit its scenario "
                         f"(missing {missing or 'none'}, unexpected {extra or 'none'})")
    shapes = {p["name"]: tuple(p["shape"]) for p in scen["params"]}
    for key, value in trajectory.items():
        want = shapes[key.split("/", 1)[1]] if "/" in key and not key.startswith("lr/") else None
        if value.dtype.kind not in "fi" or value.ndim == 0 or len(value) != scen["steps"] or (
                want is not None and value.shape[1:] != want):
            raise InputError(f"record file {str(path)!r}: array {key!r} has shape {value.shape} and dtype "
                             f"{value.dtype}, not {scen['steps']} steps of {want or 'scalars'}")


def load_record(path: str | Path, check_inputs: bool = True) -> Record:
    """Read and check a record; with ``check_inputs``, the scenario must still generate the same inputs."""
    path = Path(path)
    arrays = _read(path)
    meta = _metadata(arrays, path)
    scen = validate_scenario(meta.get("scenario"), source=f"record file {str(path)!r}: scenario")
    trajectory = {k.removeprefix(_PREFIX): v for k, v in arrays.items() if k.startswith(_PREFIX)}
    _check_arrays(trajectory, scen, path)
    reference = meta.get("reference")
    if not isinstance(reference, dict) or not isinstance(reference.get("name"), str):
        raise InputError(f"record file {str(path)!r}: its metadata does not name the reference")
    digest = str(meta.get("inputs_digest", ""))
    if check_inputs and digest != inputs_digest(scen):
        raise InputError(f"record file {str(path)!r}: its scenario no longer generates the inputs it was "
                         "recorded with (NumPy's random generator changed?): record it again")
    step_time = reference.get("time_per_step_s")
    return Record(scen, trajectory, reference["name"], str(reference.get("version", "unknown")), digest,
                  float(step_time) if isinstance(step_time, int | float) else None,
                  {str(k): str(v) for k, v in (meta.get("versions") or {}).items()}, meta.get("created"))
