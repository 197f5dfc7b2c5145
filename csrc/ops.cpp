// Operator schemas of poolext (torch.ops.poolext.*) and the Python module
// that loading registers them through.  Kernels live in cpu/ and cuda/.
#include <Python.h>
#include <torch/library.h>
#include <torch/version.h>

#include <string>

#include "cpu/kernels.h"
#include "cpu/memory.h"

#define POOLEXT_STR2(x) #x
#define POOLEXT_STR(x) POOLEXT_STR2(x)

extern "C" {
// `import poolext._C` runs the static TORCH_LIBRARY registrations below.  The
// module's torch_version, "MAJOR.MINOR" of the torch it was compiled against,
// lets poolext/__init__.py refuse a build that does not match the torch loaded.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr &&
      PyModule_AddStringConstant(module, "torch_version",
                                 POOLEXT_STR(TORCH_VERSION_MAJOR) "." POOLEXT_STR(
                                     TORCH_VERSION_MINOR)) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}

namespace {
std::string cpu_isa() { return poolext::cpu::use_avx2() ? "avx2" : "base"; }
}  // namespace

TORCH_LIBRARY(poolext, m) {
  // Which copy of the CPU kernels runs: "avx2" or "base" (POOLEXT_CPU_ISA=base forces it).
  m.def("cpu_isa() -> str", &cpu_isa);
  // The CPU block cache (cpu/memory.h): its counters, and giving idle blocks back.
  m.def("cpu_cache_stats() -> int[]", &poolext::cpu::cache_stats);
  m.def("empty_cache() -> ()", &poolext::cpu::empty_cache);
  // Max pooling.  argmax: the winner's tap index inside its window (uint8 up
  // to 256 taps, int16 read as uint16 up to 65536, else int32), shaped like
  // the output, or empty unless with_argmax.  indices: torch-style int64 plane
  // indices, or empty unless with_indices.
  m.def(
      "max_pool(Tensor self, int[] kernel_size, int[] stride, int[] padding, int[] dilation, "
      "bool ceil_mode, bool channels_last, bool with_argmax, bool with_indices) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "max_pool_backward(Tensor grad_output, Tensor argmax, SymInt[] input_size, "
      "int[] kernel_size, int[] stride, int[] padding, int[] dilation, bool ceil_mode, "
      "bool channels_last) -> Tensor");
  m.def(
      "max_pool_gather(Tensor source, Tensor argmax, int[] kernel_size, int[] stride, "
      "int[] padding, int[] dilation, bool ceil_mode, bool channels_last) -> Tensor");
  // Average pooling.
  m.def(
      "avg_pool(Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, "
      "bool count_include_pad, int? divisor_override, bool channels_last) -> Tensor");
  m.def(
      "avg_pool_backward(Tensor grad_output, SymInt[] input_size, int[] kernel_size, "
      "int[] stride, int[] padding, bool ceil_mode, bool count_include_pad, "
      "int? divisor_override, bool channels_last) -> Tensor");
  // Adaptive pooling (torch's window rule, csrc/core/adaptive.h); output_size
  // holds the spatial output sizes.  argmax as for max_pool, by the widest window.
  m.def(
      "adaptive_max_pool(Tensor self, int[] output_size, bool channels_last, bool with_argmax, "
      "bool with_indices) -> (Tensor, Tensor, Tensor)");
  m.def(
      "adaptive_max_pool_backward(Tensor grad_output, Tensor argmax, SymInt[] input_size, "
      "int[] output_size, bool channels_last) -> Tensor");
  m.def(
      "adaptive_max_pool_gather(Tensor source, Tensor argmax, int[] output_size, "
      "bool channels_last) -> Tensor");
  m.def("adaptive_avg_pool(Tensor self, int[] output_size, bool channels_last) -> Tensor");
  m.def(
      "adaptive_avg_pool_backward(Tensor grad_output, SymInt[] input_size, int[] output_size, "
      "bool channels_last) -> Tensor");
  // Max unpooling: zeros of shape (N, C, *output_size) with
  // out[n, c].flat[indices[n, c, i]] = self[n, c, i] (the last duplicate wins
  // on CPU).  indices: torch-style int64 plane indices shaped like self; one
  // outside [0, prod(output_size)) raises.  The backward is the gather
  // grad_input[n, c, i] = grad_output[n, c].flat[indices[n, c, i]], and each
  // is the other's adjoint.
  m.def("max_unpool(Tensor self, Tensor indices, SymInt[] output_size, bool channels_last) -> Tensor");
  m.def(
      "max_unpool_backward(Tensor grad_output, Tensor indices, SymInt[] output_size, "
      "bool channels_last) -> Tensor");
  // Power-average pooling (core/lp_pool.h): (sum of x^p over the window,
  // scaled to the full kernel)^(1/p), padding 0; norm_type finite and
  // non-zero.  coef: with_coef, each output's derivative factor (float, or
  // double for double), which the backward takes with the input.
  m.def(
      "lp_pool(Tensor self, float norm_type, int[] kernel_size, int[] stride, bool ceil_mode, "
      "bool channels_last, bool with_coef) -> (Tensor, Tensor)");
  m.def(
      "lp_pool_backward(Tensor grad_output, Tensor self, Tensor coef, float norm_type, "
      "int[] kernel_size, int[] stride, bool ceil_mode, bool channels_last) -> Tensor");
  // Fractional max pooling (torch's window rule, csrc/core/fractional.h); the
  // rank (2 or 3) is len(kernel_size).  samples: torch's _random_samples, of
  // shape (N', C, rank) with N' >= N and the input's dtype.  argmax as for
  // max_pool.  The output, argmax and indices are contiguous; channels_last
  // is the layout of the input (forward, gather's source) or of grad_input.
  m.def(
      "fractional_max_pool(Tensor self, int[] kernel_size, int[] output_size, Tensor samples, "
      "bool channels_last, bool with_argmax, bool with_indices) -> (Tensor, Tensor, Tensor)");
  m.def(
      "fractional_max_pool_backward(Tensor grad_output, Tensor argmax, Tensor samples, "
      "SymInt[] input_size, int[] kernel_size, bool channels_last) -> Tensor");
  m.def(
      "fractional_max_pool_gather(Tensor source, Tensor argmax, Tensor samples, "
      "int[] kernel_size, int[] output_size, bool channels_last) -> Tensor");
}
