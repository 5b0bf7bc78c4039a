"""An optional compiled CPU kernel for the dense float32 step: one pass over memory, MindSpore's bits.

XLA's CPU backend computes an Adam step in three loops (new ``m``, new ``v``, then ``w`` reading
them back; it does not fuse loops with several outputs), about 40 bytes of memory traffic per
parameter. This kernel is an XLA FFI custom call that reads ``w, g, m, v`` once and writes
``w, m, v`` once (28 bytes), in place (its outputs alias its inputs), on OpenMP threads. Its
arithmetic is ``msadam/native/msadam_adam_fp32.h``, the header ``msadam_torch.native`` compiles too:
nnacl ``AdamFp32``'s explicit fused multiply-adds and double-precision scalar loop, so the results
are the NumPy reference's bit for bit without relying on XLA's contraction.

The library is compiled with the system C++ compiler (``$CXX``, else ``c++``) on first use against
JAX's FFI headers (``jax.ffi.include_dir()``), cached on disk under a digest of everything it depends
on, and registered as the custom-call target ``msadam_adam_fp32``. It is optional: every failure is
remembered, reported by :func:`status`, and answered by the XLA kernels. ``MSADAM_JAX_NATIVE=0``
disables it; ``MSADAM_JAX_EXTENSIONS_DIR`` moves the cache (default
``$XDG_CACHE_HOME/msadam/jax-extensions``, else ``~/.cache/...``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from msadam.native import CompiledKernel, cache_dir, disabled, exclusive, include_dir, kernel_header, not_on_windows

__all__ = ["ENV_NATIVE", "TARGET", "adam_fp32", "available", "enabled", "status"]

ENV_NATIVE = "MSADAM_JAX_NATIVE"
TARGET = "msadam_adam_fp32"

_SOURCE = r"""
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "msadam_adam_fp32.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using namespace msadam_native;

namespace {

// Arguments: scalars (float32[4]: lr_t, beta1, beta2, eps), then per tensor w, m, v, [vhat], g.
// Results: per tensor w, m, v, [vhat], each aliasing its argument (updated in place).
ffi::Error AdamFp32(ffi::Buffer<ffi::F32> scalars, ffi::RemainingArgs args, ffi::RemainingRets rets,
                    bool nesterov, bool amsgrad) {
  const size_t per_arg = amsgrad ? 5 : 4, per_ret = amsgrad ? 4 : 3;
  if (scalars.element_count() != 4 || args.size() % per_arg != 0 || rets.size() != args.size() / per_arg * per_ret) {
    return ffi::Error::InvalidArgument("msadam_adam_fp32: unexpected arguments");
  }
  const float* x = scalars.typed_data();
  const float b1 = x[1], b2 = x[2];
  const Hyper h{x[0], b1, 1.0f - b1, 1.0f - b2, x[3], amsgrad, nesterov};
  const size_t n = args.size() / per_arg;
  std::vector<Slot> slots;
  std::vector<int64_t> offsets;
  slots.reserve(n);
  offsets.reserve(n);
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    float* out[4] = {nullptr, nullptr, nullptr, nullptr};
    for (size_t j = 0; j < per_ret; ++j) {
      auto ret = rets.get<ffi::Buffer<ffi::F32>>(i * per_ret + j);
      auto arg = args.get<ffi::Buffer<ffi::F32>>(i * per_arg + j);
      if (!ret.has_value() || !arg.has_value()) return ffi::Error::InvalidArgument("msadam_adam_fp32: not float32");
      out[j] = (*ret)->typed_data();
      if (out[j] != arg->typed_data()) {  // not aliased: start from the argument's values
        std::copy_n(arg->typed_data(), arg->element_count(), out[j]);
      }
    }
    auto g = args.get<ffi::Buffer<ffi::F32>>(i * per_arg + per_arg - 1);
    if (!g.has_value()) return ffi::Error::InvalidArgument("msadam_adam_fp32: gradient not float32");
    const int64_t size = static_cast<int64_t>(g->element_count());
    if (size == 0) continue;
    slots.push_back({out[0], g->typed_data(), out[1], out[2], amsgrad ? out[3] : nullptr, size,
                     size - size % kSimdWidth});
    offsets.push_back(total);
    total += size;
  }
  const RunFn run = variants().front().run;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), total / kGrain)));
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    run_range(slots, offsets, total * t / k, total * (t + 1) / k, h, nesterov, run);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(MsadamAdamFp32, AdamFp32,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<bool>("nesterov")
                                  .Attr<bool>("amsgrad"));
"""

# As msadam_torch.native: -fno-fast-math first (it resets -fmath-errno, which would keep sqrtf from
# vectorizing); -ffp-contract=off so that only the explicit __builtin_fmaf calls fuse.
_CFLAGS = ["-O3", "-fno-fast-math", "-ffp-contract=off", "-fno-math-errno", "-fopenmp", "-std=c++17", "-fPIC",
           "-shared"]


def _compiler() -> str:
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or "c++"


def _digest() -> str:
    key = "\0".join([_SOURCE, kernel_header(), *_CFLAGS, _compiler(), jax.__version__, sys.version, sys.platform])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _library() -> tuple[Path, str]:
    """The compiled library (from the cache, or built now into a temporary file, then renamed)."""
    directory = cache_dir("MSADAM_JAX_EXTENSIONS_DIR", "jax-extensions") / f"msadam_adam_fp32_{_digest()}"
    library = directory / "msadam_adam_fp32.so"
    with exclusive(directory):
        if library.exists():
            return library, f"loaded from {directory}"
        source = directory / "msadam_adam_fp32.cc"
        source.write_text(_SOURCE, encoding="utf-8")
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".so", delete=False) as partial:
            pass
        command = [_compiler(), *_CFLAGS, f"-I{include_dir()}", f"-I{jax.ffi.include_dir()}", str(source),
                   "-o", partial.name]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            Path(partial.name).unlink(missing_ok=True)
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr.strip()[-3000:]}")
        os.replace(partial.name, library)  # atomic: a half-written library is never found
        return library, f"built in {directory}"


def _register(notes: list[str]) -> tuple[ctypes.CDLL, str]:
    """Build or load the library, register its handler as the custom-call target :data:`TARGET` (``notes``: unused)."""
    path, how = _library()
    library = ctypes.cdll.LoadLibrary(str(path))
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.MsadamAdamFp32), platform="cpu")
    return library, how


# Registered on the first call that wants it; $MSADAM_JAX_NATIVE=0 then is remembered (no compiler, no
# headers, a loader problem too: the XLA kernels remain).
_KERNEL = CompiledKernel(_register, precondition=lambda: disabled(ENV_NATIVE) or not_on_windows())


# status(): one line (or a build log) saying whether the kernel is ready, and otherwise why not;
# available(): whether the kernel can run here (builds it on the first call).
status = _KERNEL.status
available = _KERNEL.available


def enabled() -> bool:
    """Whether steps use the kernel now: available, and ``$MSADAM_JAX_NATIVE`` is not ``0`` (read each time)."""
    return _KERNEL.enabled(ENV_NATIVE)


def adam_fp32(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
              grads: Sequence[Any], scalars: Any, nesterov: bool) -> tuple[Any, ...]:
    """The custom call, for use inside ``jit``: new ``(params, m, v, vhat)`` of float32 CPU arrays.

    ``grads`` are already preprocessed; ``scalars`` is float32 ``[lr_t, beta1, beta2, eps]``. The
    results alias ``params``, ``m``, ``v`` (and ``vhat``): with those donated, the update is in place.
    Call :func:`available` first (outside tracing).
    """
    amsgrad = vhat is not None
    per_tensor = [(w, m[i], v[i], *([vhat[i]] if vhat is not None else []), grads[i]) for i, w in enumerate(params)]
    per_arg, per_ret = len(per_tensor[0]) if per_tensor else 0, 4 if amsgrad else 3
    flat = [x for row in per_tensor for x in row]
    shapes = [jax.ShapeDtypeStruct(x.shape, jnp.float32) for row in per_tensor for x in row[:per_ret]]
    aliases = {1 + i * per_arg + j: i * per_ret + j for i in range(len(per_tensor)) for j in range(per_ret)}
    call = jax.ffi.ffi_call(TARGET, shapes, input_output_aliases=aliases)
    out = call(scalars, *flat, nesterov=nesterov and not amsgrad, amsgrad=amsgrad)
    columns = [out[j::per_ret] for j in range(per_ret)]
    return columns[0], columns[1], columns[2], (columns[3] if amsgrad else None)
