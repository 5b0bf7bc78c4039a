// MindSpore's float32 Adam kernel (nnacl AdamFp32), bit for bit, with no framework in sight.
//
// Shared by msadam's compiled kernels (msadam_torch.native, msadam_jax.native,
// msadam_tensorflow.native): each includes this
// file, lays its tensors out as Slots and runs Variant::run over index ranges on its own threads.
// Compile with -O3 -fno-fast-math -ffp-contract=off -fno-math-errno: no multiply-add is fused but
// the explicit __builtin_fmaf calls, nothing is reassociated, and sqrtf still vectorizes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace msadam_native {


// nnacl's AdamFp32 runs 8 floats per vector step; the last size % 8 elements of a tensor go
// through its scalar loop, which rounds differently (see tail()).
constexpr int64_t kSimdWidth = 8;
// Elements per at::parallel_for task: below this a step runs on the calling thread.
constexpr int64_t kGrain = int64_t{1} << 16;

struct Hyper {
  float lr_t, beta1, c1, c2, eps;  // c1 = 1 - beta1 and c2 = 1 - beta2, both rounded to float32
  bool amsgrad, nesterov_tail;     // the vector loop's Nesterov flag is a template parameter
};

struct Slot {  // one tensor of the step
  float* w;
  const float* g;
  float* m;
  float* v;
  float* vhat;   // nullptr without AMSGrad
  int64_t size;
  int64_t body;  // size - size % 8: the elements of the vector loop
};

// The moments of element i, shared by both loops; returns the operand of the square root.
// m = fma(g - m, c1, m): the difference is rounded to float32, then one fused rounding.
// v = fma(fma(g, g, -v), c2, v): two fused roundings, as nnacl's intrinsics compute it.
template <bool kAmsgrad>
__attribute__((always_inline)) inline float moments(const Slot& s, int64_t i, float g, float& m_new,
                                                    const Hyper& h) {
  const float m = __builtin_fmaf(g - s.m[i], h.c1, s.m[i]);
  const float v = __builtin_fmaf(__builtin_fmaf(g, g, -s.v[i]), h.c2, s.v[i]);
  s.m[i] = m;
  s.v[i] = v;
  m_new = m;
  if constexpr (kAmsgrad) {
    // vhat = max(vhat, v) as MindSpore's ApplyAdamWithAmsgradV2 CPU kernel takes it, vhat < v ? v : vhat:
    // a NaN v leaves vhat as it was, a NaN vhat stays (not np.maximum's rule, where a NaN v wins).
    const float old = s.vhat[i];
    const float second = (old < v) ? v : old;
    s.vhat[i] = second;
    return second;
  } else {
    return v;
  }
}

// nnacl's vector loop. Nesterov's numerator is fma(c1, g, m * b1) (the product m * b1 rounded
// first); then float32 all the way: lr_t * num, sqrtf (correctly rounded, like the vector
// instruction), + eps, the division and the subtraction each rounded to float32.
template <bool kNesterov, bool kAmsgrad>
__attribute__((always_inline)) inline void body(const Slot& s, int64_t lo, int64_t hi, const Hyper& h) {
  float* __restrict w = s.w;
  const float* __restrict g = s.g;
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) {
    float m;
    const float second = moments<kAmsgrad>(s, i, g[i], m, h);
    const float num = kNesterov ? __builtin_fmaf(h.c1, g[i], m * h.beta1) : m;
    w[i] = w[i] - (h.lr_t * num) / (__builtin_sqrtf(second) + h.eps);
  }
}

// nnacl's scalar remainder loop. The C compiler contracted its Nesterov numerator the other way
// round, fma(m, b1, c1 * g), and lr_t * num stays a float32 product; but C's sqrt() is double, so
// sqrt + eps, the division and the subtraction from w happen in double and w is rounded once.
template <bool kAmsgrad>
__attribute__((always_inline)) inline void tail(const Slot& s, int64_t lo, int64_t hi, const Hyper& h) {
  for (int64_t i = lo; i < hi; ++i) {
    const float g = s.g[i];
    float m;
    const float second = moments<kAmsgrad>(s, i, g, m, h);
    const float num = h.nesterov_tail ? __builtin_fmaf(m, h.beta1, h.c1 * g) : m;
    const float scaled = h.lr_t * num;
    const double update =
        static_cast<double>(scaled) / (std::sqrt(static_cast<double>(second)) + static_cast<double>(h.eps));
    s.w[i] = static_cast<float>(static_cast<double>(s.w[i]) - update);
  }
}

// Elements [lo, hi) of one tensor: the part before s.body by the vector formula, the rest by the
// scalar one. Which thread runs which element does not matter: every element is independent.
template <bool kNesterov, bool kAmsgrad>
__attribute__((always_inline)) inline void piece(const Slot& s, int64_t lo, int64_t hi, const Hyper& h) {
  const int64_t split = std::min(std::max(lo, s.body), hi);
  body<kNesterov, kAmsgrad>(s, lo, split, h);
  tail<kAmsgrad>(s, split, hi, h);
}

// The Nesterov numerator never applies with AMSGrad (MindSpore has no such form).
__attribute__((always_inline)) inline void run_any(const Slot& s, int64_t lo, int64_t hi, const Hyper& h,
                                                   bool nesterov) {
  if (h.amsgrad) {
    piece<false, true>(s, lo, hi, h);
  } else if (nesterov) {
    piece<true, false>(s, lo, hi, h);
  } else {
    piece<false, false>(s, lo, hi, h);
  }
}

// One copy of the same source per instruction set, picked at run time: a cached build must run on
// any x86-64 CPU (so no -march=native), and AVX2/AVX-512 only change how many elements one
// instruction handles, never a result (FMA, sqrt and division are correctly rounded in all).
using RunFn = void (*)(const Slot&, int64_t, int64_t, const Hyper&, bool);

inline void run_base(const Slot& s, int64_t lo, int64_t hi, const Hyper& h, bool nesterov) {
  run_any(s, lo, hi, h, nesterov);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("arch=x86-64-v3"))) inline void run_avx2(const Slot& s, int64_t lo, int64_t hi, const Hyper& h,
                                                        bool nesterov) {
  run_any(s, lo, hi, h, nesterov);
}
__attribute__((target("arch=x86-64-v4"))) inline void run_avx512(const Slot& s, int64_t lo, int64_t hi, const Hyper& h,
                                                          bool nesterov) {
  run_any(s, lo, hi, h, nesterov);
}
#endif

struct Variant {
  const char* name;
  RunFn run;
};

// The variants this CPU can run, best first (detected once).
inline const std::vector<Variant>& variants() {
  static const std::vector<Variant> found = [] {
    std::vector<Variant> out;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) out.push_back({"avx512", run_avx512});
    if (__builtin_cpu_supports("x86-64-v3")) out.push_back({"avx2", run_avx2});
#endif
    out.push_back({"base", run_base});
    return out;
  }();
  return found;
}

inline std::vector<std::string> isas() {
  std::vector<std::string> names;
  for (const Variant& v : variants()) names.emplace_back(v.name);
  return names;
}

// Elements [lo, hi) of a whole step: slots[k] covers [offsets[k], offsets[k] + size) of it.
inline void run_range(const std::vector<Slot>& slots, const std::vector<int64_t>& offsets, int64_t lo, int64_t hi,
                      const Hyper& h, bool nesterov, RunFn run) {
  size_t k = static_cast<size_t>(std::upper_bound(offsets.begin(), offsets.end(), lo) - offsets.begin()) - 1;
  for (; k < slots.size() && offsets[k] < hi; ++k) {
    run(slots[k], std::max<int64_t>(lo - offsets[k], 0), std::min(hi - offsets[k], slots[k].size), h, nesterov);
  }
}

// The variant called `name` (from isas()), or nullptr.
inline RunFn find_variant(const std::string& name) {
  for (const Variant& v : variants()) {
    if (name == v.name) return v.run;
  }
  return nullptr;
}

}  // namespace msadam_native
