"""An optional compiled CPU kernel for the dense float32 step: one pass over memory, MindSpore's bits, in place.

XLA's CPU backend computes an Adam step in several loops (new ``m``, new ``v``, then ``w`` reading
them back) and writes its results into new buffers that the variables then take. This kernel is a
TensorFlow custom op, ``MsadamAdamFp32`` (``native_op.cc``), that takes the variables' resource
handles and updates their buffers in place: it reads ``w, g, m, v`` once and writes ``w, m, v``
once, on TensorFlow's intra-op threads. Its arithmetic is ``msadam/native/msadam_adam_fp32.h``, the
header ``msadam_torch.native`` and ``msadam_jax.native`` compile too: nnacl ``AdamFp32``'s explicit
fused multiply-adds and double-precision scalar loop, so the results are the NumPy reference's bit for
bit. Weight decay and the loss scale are folded into the same pass (each product rounded to float32,
as :func:`msadam_tensorflow.kernels.preprocess` rounds them); gradient centralization is not.

The op keeps TensorFlow's variable semantics (those of its own ``ResourceApplyAdam``): it holds every
variable's lock for the step, and a buffer still referenced elsewhere (a tensor read before the step)
is never written — the step writes a fresh buffer that the variable takes (copy-on-write).

The library is compiled with the system C++ compiler (``$CXX``, else ``c++``) on first use against
TensorFlow's headers (``tf.sysconfig``), cached on disk under a digest of everything it depends on,
and loaded with ``tf.load_op_library``. It is optional: every failure is remembered, reported by
:func:`status`, and answered by the XLA kernels. ``MSADAM_TF_NATIVE=0`` disables it;
``MSADAM_TF_EXTENSIONS_DIR`` moves the cache (default ``$XDG_CACHE_HOME/msadam/tf-extensions``, else
``~/.cache/...``). A custom op cannot run inside an XLA computation (``jit_compile=True``):
:func:`dense_step` declines there, and runs eagerly or in plain (non-XLA) ``tf.function`` graphs.

This module imports TensorFlow only when the kernel is first wanted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from msadam.native import CompiledKernel, cache_dir, disabled, exclusive, include_dir, kernel_header, not_on_windows

if TYPE_CHECKING:
    from msadam_tensorflow.kernels import Scalars

__all__ = ["ENV_DIR", "ENV_NATIVE", "available", "dense_step", "enabled", "isas", "status", "usable"]

ENV_NATIVE = "MSADAM_TF_NATIVE"
ENV_DIR = "MSADAM_TF_EXTENSIONS_DIR"

_SOURCE = Path(__file__).with_name("native_op.cc")
# As msadam_torch.native: -fno-fast-math first (it resets -fmath-errno, which would keep sqrtf from
# vectorizing); -ffp-contract=off so that only the explicit __builtin_fmaf calls fuse. TensorFlow's
# headers are full of deprecation warnings: they are not ours to fix.
_CFLAGS = ["-O3", "-fno-fast-math", "-ffp-contract=off", "-fno-math-errno", "-std=c++17", "-fPIC", "-shared",
           "-Wno-deprecated-declarations"]


def _compiler() -> str:
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or "c++"


def _tf_flags() -> tuple[list[str], list[str]]:
    import tensorflow as tf

    return list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags())


def _digest(source: str, compile_flags: list[str], link_flags: list[str]) -> str:
    import tensorflow as tf

    key = "\0".join([source, kernel_header(), *_CFLAGS, *compile_flags, *link_flags, _compiler(), tf.__version__,
                     tf.version.GIT_VERSION, sys.platform])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _build(directory: Path, library: Path, source: str, compile_flags: list[str], link_flags: list[str]) -> None:
    """Compile into a temporary file, then rename it (atomic: a half-written library is never found)."""
    cc = directory / "msadam_adam_fp32_tf.cc"
    cc.write_text(source, encoding="utf-8")
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".so", delete=False) as partial:
        pass
    command = [_compiler(), *_CFLAGS, *compile_flags, f"-I{include_dir()}", str(cc), "-o", partial.name, *link_flags]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except BaseException:
        Path(partial.name).unlink(missing_ok=True)
        raise
    if done.returncode != 0:
        Path(partial.name).unlink(missing_ok=True)
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr.strip()[-3000:]}")
    os.replace(partial.name, library)


def _load() -> tuple[Any, str]:
    """The loaded op library (from the cache, or built now) and how it was obtained."""
    import tensorflow as tf

    source = _SOURCE.read_text(encoding="utf-8")
    compile_flags, link_flags = _tf_flags()
    directory = cache_dir(ENV_DIR, "tf-extensions") / f"msadam_adam_fp32_{_digest(source, compile_flags, link_flags)}"
    library = directory / "msadam_adam_fp32_tf.so"
    with exclusive(directory):
        rebuilt = ""
        if library.exists():
            try:
                return tf.load_op_library(str(library)), f"loaded from {directory}"
            except Exception as error:  # a foreign or damaged file: build it again
                library.unlink()
                rebuilt = f"; the cached library did not load: {type(error).__name__}: {error}"
        start = time.perf_counter()
        _build(directory, library, source, compile_flags, link_flags)
        return tf.load_op_library(str(library)), f"built in {time.perf_counter() - start:.1f} s in {directory}{rebuilt}"


class _Op(NamedTuple):
    """The loaded op library and the instruction-set variants this CPU can run, best first."""

    module: Any
    isas: tuple[str, ...]


def _load_op(notes: list[str]) -> tuple[_Op, str]:
    """:func:`_load`, then the variants this CPU runs (the status names them; ``notes``: nothing to add)."""
    import tensorflow as tf

    module, how = _load()
    with tf.init_scope():  # eagerly, even when first asked while tracing
        found = tuple(name.decode() for name in module.msadam_isas().numpy())
    return _Op(module, found), f"{', '.join(found)}; {how}"


# Built on the first call that wants it (no compiler, no headers, a loader problem: the XLA kernels
# remain). $MSADAM_TF_NATIVE=0 is not remembered: setting it back builds the op.
_KERNEL = CompiledKernel(_load_op, precondition=not_on_windows, postpone=lambda: disabled(ENV_NATIVE))


# status(): one line (or a build log) saying whether the kernel is ready, and otherwise why not;
# available(): whether the kernel can run here (builds it on the first call).
status = _KERNEL.status
available = _KERNEL.available


def enabled() -> bool:
    """Whether steps use the kernel now: available, and ``$MSADAM_TF_NATIVE`` is not ``0`` (read each time)."""
    return _KERNEL.enabled(ENV_NATIVE)


def isas() -> tuple[str, ...]:
    """The instruction-set variants this CPU can run, best first (empty when unavailable)."""
    op = _KERNEL.get()
    return () if op is None else op.isas


@functools.lru_cache(maxsize=256)
def _on_cpu(device: str) -> bool:
    import tensorflow as tf

    return not device or tf.DeviceSpec.from_string(device).device_type in (None, "CPU")


def _check(variable: Any) -> bool:
    import tensorflow as tf
    from tensorflow.python.ops.resource_variable_ops import BaseResourceVariable

    return isinstance(variable, BaseResourceVariable) and variable.dtype == tf.float32 and _on_cpu(variable.device)


# usable()'s answers by id(variable), each with a weak reference to its variable (tf.Variable is not
# hashable): a variable's type, dtype and device never change, and a step asks for hundreds of them.
_USABLE: dict[int, tuple[weakref.ref[Any], bool]] = {}


def usable(variable: Any) -> bool:
    """Whether ``variable`` is a float32 resource variable on the CPU (what the op updates).

    A ``tf.distribute`` variable is not (it stands for several), nor a Keras variable (pass its
    ``.value``, the ``tf.Variable`` it wraps).
    """
    key = id(variable)
    found = _USABLE.get(key)
    if found is not None and found[0]() is variable:
        return found[1]
    ok = _check(variable)
    with contextlib.suppress(TypeError):  # TypeError: no weak references to it (not a variable)
        _USABLE[key] = (weakref.ref(variable, lambda _: _USABLE.pop(key, None)), ok)
    return ok


def _float32_tensor(g: Any) -> bool:
    """A float32 ``tf.Tensor`` (not IndexedSlices, not NumPy: the caller's path converts those)."""
    import tensorflow as tf

    return isinstance(g, tf.Tensor) and (g.dtype is tf.float32 or g.dtype == tf.float32)


def _in_xla() -> bool:
    """Whether ops created now would be compiled by XLA (a ``tf.function(jit_compile=True)`` being traced)."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    try:  # TensorFlow has no public API for this; its own XLA-aware ops ask the same function
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # moved in some TensorFlow: leave graphs to the XLA kernels, which run everywhere
        return True
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def dense_step(params: Sequence[Any], m: Sequence[Any], v: Sequence[Any], vhat: Sequence[Any] | None,
               grads: Sequence[Any], s: Scalars, nesterov: bool, *, isa: str | None = None) -> bool:
    """One dense float32 step of these variables, in place; False (nothing done) to ask for the XLA path.

    ``params``, ``m``, ``v`` (and ``vhat``: AMSGrad, no Nesterov form then) are parallel lists of
    float32 ``tf.Variable``s on the CPU; ``grads`` float32 ``tf.Tensor``s shaped like them, raw: the
    weight decay and loss scale of ``s`` are applied here (centralization is not: the caller's business).
    ``nesterov`` is the Nesterov numerator (already ``False`` with AMSGrad). Runs eagerly or adds the
    op to the graph being traced; declines (False) when the kernel is unavailable or disabled, inside
    an XLA-compiled function, or when any variable is not :func:`usable` or a gradient not float32.
    ``isa`` picks a variant of :func:`isas` (for tests); by default the best one.
    """
    if not params:
        return True
    op = _KERNEL.get() if enabled() and not _in_xla() else None
    if op is None:
        return False
    if not all(map(usable, [*params, *m, *v, *(vhat or ())])) or not all(map(_float32_tensor, grads)):
        return False
    op.module.msadam_adam_fp32(
        w=[x.handle for x in params], m=[x.handle for x in m], v=[x.handle for x in v],
        vhat=[x.handle for x in vhat or ()], g=list(grads), lr_t=s.lr_t, beta1=s.beta1, beta2=s.beta2, eps=s.eps,
        weight_decay=s.lr_t if s.weight_decay is None else s.weight_decay,
        grad_scale=s.lr_t if s.grad_scale is None else s.grad_scale,
        nesterov=bool(nesterov and vhat is None), decay=s.weight_decay is not None, scale=s.grad_scale is not None,
        isa=isa or "")
    return True
