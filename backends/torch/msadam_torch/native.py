"""An optional compiled CPU kernel for the dense float32 Adam step, bit-exact with MindSpore's ``AdamFp32``.

Written with torch operations, the same arithmetic takes many passes over memory per step (float64
scratch for the fused multiply-adds); this kernel reads ``w, g, m, v`` once and writes ``w, m, v``
once, which is all a memory-bound step can do. It is C++ compiled on first use with
``torch.utils.cpp_extension.load_inline`` (a C++ compiler and ``ninja`` must be installed), cached on
disk, and entirely optional: every failure is remembered, reported by :func:`status` and answered
with ``False`` ("fall back").

The arithmetic is ``msadam.backends.numpy_kernels.adam``'s, element by element: nnacl's vector loop
with explicit fused multiply-adds for all but the last ``size % 8`` elements of each tensor, its
scalar loop (division and subtraction in double) for those. The C++ spells every rounding out and is
compiled with ``-ffp-contract=off`` and without ``-ffast-math``, so the compiler can neither fuse
nor reassociate anything else; vectorizing an element-wise loop does not change its results.
Here a fused multiply-add rounds once, as the FMA instruction does; NumPy's float64 emulation rounds
twice and differs when the float64 sum lands exactly on a float32 midpoint (a state tiny against
the gradient; see tests/test_torch_native.py::test_moments_round_once).

Knobs (environment): ``MSADAM_TORCH_NATIVE=0`` disables the kernel; ``TORCH_EXTENSIONS_DIR`` moves
the build cache (default ``$XDG_CACHE_HOME/msadam/torch-extensions``, else ``~/.cache/...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import torch

from msadam.backend import StepHyper
from msadam.native import CompiledKernel, cache_dir, disabled, exclusive, include_dir, kernel_header, not_on_windows

__all__ = ["adam_step_", "available", "isas", "status"]

_SOURCE = r"""
#include <torch/csrc/utils/pybind.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include "msadam_adam_fp32.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace msadam_native;

bool usable(const at::Tensor& t) {
  return t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat && t.is_contiguous() &&
         !t.is_neg() && !t._is_zerotensor();
}

// Checks everything before touching anything: false (and nothing written) when a tensor is not a
// plain contiguous CPU float32 array.
bool adam_step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& ms, const std::vector<at::Tensor>& vs,
               const std::vector<at::Tensor>& vhats, double lr_t, double beta1, double beta2, double eps,
               bool nesterov_body, bool nesterov_tail, const std::string& isa) {
  const size_t n = params.size();
  const bool amsgrad = !vhats.empty();
  TORCH_CHECK(grads.size() == n && ms.size() == n && vs.size() == n && (!amsgrad || vhats.size() == n),
              "msadam native adam_step: the tensor lists differ in length");
  const RunFn run = find_variant(isa);
  TORCH_CHECK(run != nullptr, "msadam native adam_step: this CPU cannot run '", isa, "'");

  std::vector<Slot> slots;
  std::vector<int64_t> offsets;  // offsets[k]: index of slots[k]'s first element in the whole step
  slots.reserve(n);
  offsets.reserve(n);
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t size = params[i].numel();
    const at::Tensor* row[] = {&params[i], &grads[i], &ms[i], &vs[i], amsgrad ? &vhats[i] : &params[i]};
    for (const at::Tensor* t : row) {
      if (!usable(*t)) return false;
      TORCH_CHECK(t->numel() == size, "msadam native adam_step: tensor ", i, " and its state differ in size");
    }
    if (size == 0) continue;
    slots.push_back({params[i].data_ptr<float>(), grads[i].const_data_ptr<float>(), ms[i].data_ptr<float>(),
                     vs[i].data_ptr<float>(), amsgrad ? vhats[i].data_ptr<float>() : nullptr, size,
                     size - size % kSimdWidth});
    offsets.push_back(total);
    total += size;
  }

  // The float32 host scalars arrive as Python floats (exact); 1 - beta is rounded to float32
  // exactly as MindSpore's kernel computes it.
  const float b1 = static_cast<float>(beta1);
  const float b2 = static_cast<float>(beta2);
  const Hyper h{static_cast<float>(lr_t), b1, 1.0f - b1, 1.0f - b2, static_cast<float>(eps), amsgrad, nesterov_tail};
  {
    pybind11::gil_scoped_release no_gil;
    // All tensors as one index range, cut into equal parts across the threads.
    at::parallel_for(0, total, kGrain, [&](int64_t lo, int64_t hi) {
      run_range(slots, offsets, lo, hi, h, nesterov_body, run);
    });
  }
  // Written in place: tell autograd, as torch's own in-place optimizers do (inference tensors
  // keep no version counter).
  const auto bump = [](const at::Tensor& t) {
    if (!t.is_inference()) t.unsafeGetTensorImpl()->bump_version();
  };
  for (size_t i = 0; i < n; ++i) {
    bump(params[i]);
    bump(ms[i]);
    bump(vs[i]);
    if (amsgrad) bump(vhats[i]);
  }
  return true;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("adam_step", &adam_step);
  module.def("isas", &isas);
}
"""

# -fno-fast-math first: it resets -fmath-errno, which would keep sqrtf from vectorizing.
# -ffp-contract=off: no multiply-add is fused except the explicit __builtin_fmaf calls.
# -fno-math-errno: sqrt may skip setting errno (it never changes a result).
_OPENMP = ["-fopenmp"] if torch.backends.openmp.is_available() else ["-fopenmp-simd"]
_CFLAGS = ["-O3", "-fno-fast-math", "-ffp-contract=off", "-fno-math-errno", *_OPENMP]
# With OpenMP, at::parallel_for is compiled into this library and needs the OpenMP runtime (torch's
# own libgomp, already loaded, satisfies it); otherwise only `#pragma omp simd` is used.
_LDFLAGS = ["-fopenmp"] if torch.backends.openmp.is_available() else []


def _name() -> str:
    """The extension's name: a digest of everything the binary depends on, so stale builds never load."""
    key = "\0".join([_SOURCE, kernel_header(), *_CFLAGS, *_LDFLAGS, torch.__version__, sys.version, sys.platform])
    return "msadam_adam_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _build_root() -> Path:
    return cache_dir("TORCH_EXTENSIONS_DIR", "torch-extensions")


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold msadam's lock file (:func:`msadam.native.exclusive`) for a build."""
    with exclusive(directory) as held:
        if held:
            # torch's lock file is only removed by a build that ended normally; holding ours, no
            # other build is running, so a leftover one is stale (torch would wait on it forever).
            (directory / "lock").unlink(missing_ok=True)
        yield  # without fcntl, torch's own lock file is the only guard


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """Let torch find a pip-installed ninja in a venv that was not activated (only during the build)."""
    if shutil.which("ninja") is not None:
        yield
        return
    candidates = [str(Path(sys.executable).parent)]
    with contextlib.suppress(ImportError):
        import ninja  # the PyPI package

        candidates.insert(0, str(ninja.BIN_DIR))
    found = next((c for c in candidates if shutil.which("ninja", path=c)), None)
    if found is None:
        yield
        return
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = found + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


class _Notes(logging.Handler):
    """Collects torch's build log records (it logs compiler warnings) for :func:`status`."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.INFO)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def _quiet(notes: list[str]) -> Iterator[None]:
    """Route the build's warnings and log records into ``notes`` instead of the user's stderr.

    The build runs once, under the lock; ``catch_warnings`` is process-wide for that time.
    """
    logger = logging.getLogger("torch.utils.cpp_extension")
    handler, propagate = _Notes(notes), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)


def _load(notes: list[str]) -> tuple[ModuleType, str]:
    """The compiled module (from the cache, or built now) and how it was obtained."""
    from torch.utils import cpp_extension

    name = _name()
    directory = _build_root() / name
    library = directory / f"{name}.so"
    start = time.perf_counter()
    with _exclusive(directory):
        if library.exists():
            try:
                return _import(library, name), f"loaded from {directory}"
            except ImportError as error:
                notes.append(f"rebuilt: the cached library did not load ({error})")
                library.unlink()  # left by an interrupted build: make it again
        with _quiet(notes), _ninja_on_path():
            module = cpp_extension.load_inline(
                name, cpp_sources=[_SOURCE], extra_cflags=_CFLAGS, extra_ldflags=_LDFLAGS,
                extra_include_paths=[str(include_dir())],
                build_directory=str(directory), no_implicit_headers=True, verbose=False,
            )
    return module, f"built in {time.perf_counter() - start:.1f} s in {directory}"


class _Built(NamedTuple):
    """The loaded extension and the instruction-set variants this CPU can run, best first."""

    module: ModuleType
    isas: tuple[str, ...]


def _load_built(notes: list[str]) -> tuple[_Built, str]:
    """:func:`_load`, then the variants this CPU runs (the status names them; torch's build log goes to ``notes``)."""
    module, how = _load(notes)
    found = tuple(module.isas())
    return _Built(module, found), f"{', '.join(found)}; {how}"


# Built on the first call that wants it; MSADAM_TORCH_NATIVE=0 then is remembered (a compiler, ninja,
# header or loader problem too: the caller falls back).
_KERNEL = CompiledKernel(_load_built, precondition=lambda: disabled("MSADAM_TORCH_NATIVE") or not_on_windows())


# status(): one line (or a build log) saying whether the kernel is ready, and otherwise why not;
# available(): whether the kernel can run here (builds it on the first call).
status = _KERNEL.status
available = _KERNEL.available


def isas() -> tuple[str, ...]:
    """The instruction-set variants this CPU can run, best first (empty when unavailable)."""
    built = _KERNEL.get()
    return () if built is None else built.isas


def adam_step_(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    m: Sequence[torch.Tensor],
    v: Sequence[torch.Tensor],
    vhat: Sequence[torch.Tensor] | None,
    hyper: StepHyper,
    *,
    isa: str | None = None,
) -> bool:
    """One dense Adam step on a list of tensors, in place; False (nothing written) to ask for the fallback.

    ``grads`` are already preprocessed (decay, centralization, loss scale). Returns False when the
    kernel is unavailable (see :func:`status`) or any tensor is not a contiguous CPU float32 tensor.
    ``isa`` picks a variant from :func:`isas` (for tests); by default the best one.
    """
    if not params:
        return True
    first = params[0]
    if first.device.type != "cpu" or first.dtype != torch.float32:
        return False  # decided before building: a CUDA or float64 run never pays for a compile
    built = _KERNEL.get()
    if built is None:
        return False
    amsgrad = hyper.use_amsgrad and vhat is not None
    # AMSGrad has no Nesterov form (ApplyAdamWithAmsgradV2), in the vector loop and the scalar tail alike.
    nesterov = hyper.use_nesterov and not hyper.use_amsgrad
    ok: bool = built.module.adam_step(
        params, grads, m, v, vhat if amsgrad and vhat is not None else [],
        float(hyper.lr_t), float(hyper.beta1), float(hyper.beta2), float(hyper.eps),
        nesterov, nesterov, isa or built.isas[0],
    )
    return ok
