// MsadamAdamFp32: MindSpore's float32 Adam step (nnacl AdamFp32, bit for bit) on TensorFlow resource
// variables, in place, in one pass over memory. Built and loaded by msadam_tensorflow/native.py.
//
// The arithmetic is msadam/native/msadam_adam_fp32.h, the header msadam_torch.native and
// msadam_jax.native compile too. This file adds TensorFlow's calling convention:
//
// * Variables are resource handles (w, m, v and, with AMSGrad, vhat: one list each); gradients and
//   hyper-parameters are float32 tensors. Nothing is returned: the variables are updated.
// * Variable semantics are those of TensorFlow's own training ops (training_op_helpers.h): every
//   variable's mutex is held, exclusively, for the whole step, acquired in increasing address
//   order; a buffer that something else still references (a tensor read from the variable before
//   the step), or any buffer of a variable in copy-on-read mode, is not written: the step writes a
//   new buffer and the variable takes it (copy-on-write). Here the copy costs no extra pass: each
//   thread copies a small chunk of the old buffer into the new one and updates it while it is in
//   cache.
// * Optional gradient preprocessing, MindSpore's order and roundings (msadam's numpy_kernels.
//   preprocess): weight decay g + (w * wd) with the product rounded to float32 on its own (w read
//   before the step), then the loss scale g * grad_scale, rounded. Centralization is not here.
// * Threads: TensorFlow's intra-op pool (the device's CPU worker threads), the step's elements cut
//   into one equal block per thread. Which thread updates an element never changes its bits.
// * Subnormals: TensorFlow flushes them to zero in its kernels' threads; this op keeps them (IEEE
//   arithmetic, as MindSpore's kernel and msadam's NumPy reference).
//
// Compile with -O3 -fno-fast-math -ffp-contract=off -fno-math-errno (see the header) and TensorFlow's
// flags (tf.sysconfig.get_compile_flags / get_link_flags).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "msadam_adam_fp32.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tsl/platform/denormal.h"

namespace tensorflow {
namespace {

using msadam_native::Hyper;
using msadam_native::kGrain;
using msadam_native::kSimdWidth;
using msadam_native::RunFn;
using msadam_native::Slot;

REGISTER_OP("MsadamAdamFp32")
    .Input("w: N * resource")
    .Input("m: N * resource")
    .Input("v: N * resource")
    .Input("vhat: K * resource")
    .Input("g: N * float")
    .Input("lr_t: float")
    .Input("beta1: float")
    .Input("beta2: float")
    .Input("eps: float")
    .Input("weight_decay: float")
    .Input("grad_scale: float")
    .Attr("N: int >= 0")
    .Attr("K: int >= 0")
    .Attr("nesterov: bool = false")
    .Attr("decay: bool = false")
    .Attr("scale: bool = false")
    .Attr("isa: string = ''")
    .SetIsStateful()
    .SetShapeFn(shape_inference::NoOutputs)
    .Doc(R"doc(
One dense float32 Adam step of MindSpore (nnacl AdamFp32), in place on resource variables.

w, m, v (and vhat, K = N with AMSGrad, else K = 0): float32 variables; g: their gradients. lr_t is
the bias-corrected step size; c1 = 1 - beta1 and c2 = 1 - beta2 are rounded to float32 here.
decay: g = g + w * weight_decay first; scale: then g = g * grad_scale (each product rounded).
nesterov: Nesterov's numerator (ignored with AMSGrad). isa: an instruction-set variant from
MsadamIsas (empty: the best this CPU runs).
)doc");

REGISTER_OP("MsadamIsas")
    .Output("isas: string")
    .SetShapeFn(shape_inference::UnknownShape)
    .Doc("The instruction-set variants of MsadamAdamFp32 this CPU can run, best first.");

// Elements per copy-on-write / preprocessing chunk: a few arrays of it stay in the L1/L2 cache.
constexpr int64_t kChunk = 2048;

// One variable of the step. `s` points at the buffers the step writes; `from[j]` is the buffer
// array j (w, m, v, vhat) is read from when it is copied on write (else nullptr: in place).
struct Part {
  Slot s;
  const float* from[4];
  bool copies;
};

struct Step {
  std::vector<Part> parts;
  std::vector<int64_t> offsets;  // offsets[k]: index of parts[k]'s first element in the whole step
  Hyper h;
  bool nesterov, decay, scale;
  float weight_decay, grad_scale;
  RunFn run;
};

// Elements [lo, hi) of one part.
void run_part(const Step& st, const Part& p, int64_t lo, int64_t hi) {
  const bool pre = st.decay || st.scale;
  if (!p.copies && !pre) {
    st.run(p.s, lo, hi, st.h, st.nesterov);
    return;
  }
  alignas(64) float scratch[kChunk];
  float* const to[4] = {p.s.w, p.s.m, p.s.v, p.s.vhat};
  for (int64_t c = lo; c < hi; c += kChunk) {
    const int64_t n = std::min(kChunk, hi - c);
    for (int j = 0; j < 4; ++j) {
      if (p.from[j] != nullptr) std::memcpy(to[j] + c, p.from[j] + c, static_cast<size_t>(n) * sizeof(float));
    }
    // The same elements as a tensor of their own: pointers moved by c, the scalar tail where it was.
    Slot sub{p.s.w + c, p.s.g + c, p.s.m + c, p.s.v + c, p.s.vhat != nullptr ? p.s.vhat + c : nullptr, n,
             std::min(std::max<int64_t>(p.s.body - c, 0), n)};
    if (pre) {
      const float* w = sub.w;  // not yet updated: the decay reads the weights before the step
      const float* g = sub.g;
      if (st.decay && st.scale) {
        for (int64_t i = 0; i < n; ++i) {
          const float decayed = w[i] * st.weight_decay;
          scratch[i] = (decayed + g[i]) * st.grad_scale;
        }
      } else if (st.decay) {
        for (int64_t i = 0; i < n; ++i) {
          const float decayed = w[i] * st.weight_decay;
          scratch[i] = decayed + g[i];
        }
      } else {
        for (int64_t i = 0; i < n; ++i) scratch[i] = g[i] * st.grad_scale;
      }
      sub.g = scratch;
    }
    st.run(sub, 0, n, st.h, st.nesterov);
  }
}

// Elements [lo, hi) of the whole step (run_range of the header, with copies and preprocessing).
void run_range(const Step& st, int64_t lo, int64_t hi) {
  // TensorFlow runs kernels with subnormals flushed to zero (FTZ/DAZ); MindSpore's kernel and the
  // NumPy reference keep them. Set on every thread of the step, restored when it returns.
  tsl::port::ScopedDontFlushDenormal keep_subnormals;
  size_t k = static_cast<size_t>(std::upper_bound(st.offsets.begin(), st.offsets.end(), lo) - st.offsets.begin()) - 1;
  for (; k < st.parts.size() && st.offsets[k] < hi; ++k) {
    const Part& p = st.parts[k];
    run_part(st, p, std::max<int64_t>(lo - st.offsets[k], 0), std::min(hi - st.offsets[k], p.s.size));
  }
}

class MsadamAdamFp32Op : public OpKernel {
 public:
  explicit MsadamAdamFp32Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &n_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("K", &k_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("nesterov", &nesterov_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("decay", &decay_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("scale", &scale_));
    std::string isa;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("isa", &isa));
    OP_REQUIRES(ctx, k_ == 0 || k_ == n_,
                errors::InvalidArgument("MsadamAdamFp32: vhat must list as many variables as w (or none), got ",
                                        k_, " for ", n_));
    run_ = isa.empty() ? msadam_native::variants().front().run : msadam_native::find_variant(isa);
    OP_REQUIRES(ctx, run_ != nullptr, errors::InvalidArgument("MsadamAdamFp32: this CPU cannot run isa '", isa, "'"));
  }

  void Compute(OpKernelContext* ctx) override {
    const int n = n_, per = k_ > 0 ? 4 : 3;
    const int g0 = 3 * n + k_, s0 = g0 + n;  // first gradient, first scalar
    Step st;
    st.nesterov = nesterov_;
    st.decay = decay_;
    st.scale = scale_;
    st.run = run_;
    float x[6];  // lr_t, beta1, beta2, eps, weight_decay, grad_scale
    for (int i = 0; i < 6; ++i) {
      const Tensor& t = ctx->input(s0 + i);
      OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(t.shape()),
                  errors::InvalidArgument("MsadamAdamFp32: hyper-parameter ", i, " must be a scalar, got shape ",
                                          t.shape().DebugString()));
      x[i] = t.scalar<float>()();
    }
    const float b1 = x[1], b2 = x[2];
    st.h = Hyper{x[0], b1, 1.0f - b1, 1.0f - b2, x[3], k_ > 0, nesterov_};
    st.weight_decay = x[4];
    st.grad_scale = x[5];

    // The variables, row by row (input index i + j * n), each looked up once.
    std::vector<core::RefCountPtr<Var>> vars(static_cast<size_t>(per) * n);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < per; ++j) {
        const int input = i + j * n;
        OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, input), &vars[i * per + j]));
      }
    }
    // Lock every variable, in increasing mutex address (TensorFlow's rule against deadlocks).
    std::vector<Var*> order;
    order.reserve(vars.size());
    for (const auto& var : vars) order.push_back(var.get());
    std::sort(order.begin(), order.end(), [](Var* a, Var* b) { return a->mu() < b->mu(); });
    for (size_t i = 1; i < order.size(); ++i) {
      OP_REQUIRES(ctx, order[i] != order[i - 1],
                  errors::InvalidArgument("MsadamAdamFp32: a variable is passed twice (", order[i]->DebugString(),
                                          ")"));
    }
    std::vector<mutex_lock> locks;
    locks.reserve(order.size());
    for (Var* var : order) locks.emplace_back(*var->mu());

    // Check everything, and allocate the copy-on-write buffers, before writing anything.
    std::vector<std::pair<Var*, Tensor>> replaced;  // variables that take a new buffer after the step
    st.parts.reserve(n);
    st.offsets.reserve(n);
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      const Tensor& g = ctx->input(g0 + i);
      Part part{};
      float* to[4] = {nullptr, nullptr, nullptr, nullptr};
      for (int j = 0; j < per; ++j) {
        Var* var = vars[i * per + j].get();
        static const char* const kNames[] = {"w", "m", "v", "vhat"};
        OP_REQUIRES(ctx, var->is_initialized,
                    errors::FailedPrecondition("MsadamAdamFp32: ", kNames[j], "[", i, "] is not initialized"));
        Tensor* t = var->tensor();
        OP_REQUIRES(ctx, t->dtype() == DT_FLOAT,
                    errors::InvalidArgument("MsadamAdamFp32: ", kNames[j], "[", i, "] is ",
                                            DataTypeString(t->dtype()), ", not float32"));
        OP_REQUIRES(ctx, t->shape() == g.shape(),
                    errors::InvalidArgument("MsadamAdamFp32: ", kNames[j], "[", i, "] has shape ",
                                            t->shape().DebugString(), ", its gradient ", g.shape().DebugString()));
        if (var->copy_on_read_mode.load() || !t->RefCountIsOne()) {  // PrepareToUpdateVariable's rule
          Tensor fresh;
          AllocatorAttributes attr;
          attr.set_gpu_compatible(true);
          attr.set_nic_compatible(true);
          OP_REQUIRES_OK(ctx, ctx->allocate_temp(DT_FLOAT, t->shape(), &fresh, attr));
          part.from[j] = t->NumElements() > 0 ? static_cast<const float*>(t->data()) : nullptr;
          part.copies = part.copies || part.from[j] != nullptr;
          to[j] = fresh.NumElements() > 0 ? static_cast<float*>(fresh.data()) : nullptr;
          replaced.emplace_back(var, std::move(fresh));
        } else {
          to[j] = t->NumElements() > 0 ? static_cast<float*>(t->data()) : nullptr;
        }
      }
      const int64_t size = g.NumElements();
      if (size == 0) continue;
      part.s = Slot{to[0], static_cast<const float*>(g.data()), to[1], to[2], per == 4 ? to[3] : nullptr, size,
                    size - size % kSimdWidth};
      st.parts.push_back(part);
      st.offsets.push_back(total);
      total += size;
    }

    // All elements as one index range, one equal block per thread of the intra-op pool.
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t most = threads != nullptr && threads->workers != nullptr ? threads->num_threads : 1;
    const int64_t count = std::max<int64_t>(1, std::min<int64_t>(most, total / kGrain));
    if (count <= 1) {
      if (total > 0) run_range(st, 0, total);
    } else {
      const int64_t block = ((total + count - 1) / count + 15) / 16 * 16;  // 64-byte multiples
      threads->workers->ParallelFor(total, tsl::thread::ThreadPool::SchedulingParams::Fixed(block),
                                    [&st](int64_t lo, int64_t hi) { run_range(st, lo, hi); });
    }
    for (auto& [var, fresh] : replaced) *var->tensor() = std::move(fresh);
  }

 private:
  int n_ = 0, k_ = 0;
  bool nesterov_ = false, decay_ = false, scale_ = false;
  RunFn run_ = nullptr;
};

class MsadamIsasOp : public OpKernel {
 public:
  explicit MsadamIsasOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const std::vector<std::string> names = msadam_native::isas();
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({static_cast<int64_t>(names.size())}), &out));
    auto flat = out->flat<tstring>();
    for (size_t i = 0; i < names.size(); ++i) flat(static_cast<int64_t>(i)) = names[i];
  }
};

REGISTER_KERNEL_BUILDER(Name("MsadamAdamFp32").Device(DEVICE_CPU), MsadamAdamFp32Op);
REGISTER_KERNEL_BUILDER(Name("MsadamIsas").Device(DEVICE_CPU), MsadamIsasOp);

}  // namespace
}  // namespace tensorflow
