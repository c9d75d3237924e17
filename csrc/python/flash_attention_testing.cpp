// hfport._hfport._flash_attention_for_tests: the CUDA flash attention kernel
// (kernels/cuda/flash_attention.h) called directly on caller-owned CUDA tensors, for
// tests/python/test_flash_attention_cuda.py and benchmarks/bench_gpu_attention.py. It writes into
// the `out` (and `lse`) the caller passes, so a test can poison them first, and it runs the flash
// kernel or raises: no fallback to another kernel, so a passing test is a test of this kernel.
// The arguments are read as hfport.ops.attention reads them (layout, strides of the views as
// given); the checks are the few that keep a raw kernel call memory-safe. Bound only in builds
// with CUDA.
#include <cmath>
#include <optional>
#include <string>

#include "core/error.h"
#include "ops/attention.h"
#include "python/bindings.h"

#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/flash_attention.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::python {

#ifdef HFPORT_WITH_CUDA
namespace {

constexpr const char* kOp = "_flash_attention_for_tests";

// A 4-D CUDA tensor as (batch, heads, seq, dim) sizes and (batch, heads, seq) strides.
struct Bhsd {
  int64_t size[4];
  int64_t stride[3];
};

Bhsd bhsd_view(const Tensor& t, const char* name, AttentionLayout layout) {
  if (t.device().type != DeviceType::CUDA) {
    throw DeviceError(std::string(kOp) + ": " + name + " must be a CUDA tensor");
  }
  if (t.ndim() != 4) {
    throw ArgumentError(std::string(kOp) + ": " + name + " must be 4-D, got shape " +
                        shape_to_string(t.shape()));
  }
  if (t.shape()[3] > 1 && t.strides()[3] != 1) {
    throw ArgumentError(std::string(kOp) + ": " + name + "'s last dimension must be unit stride");
  }
  const int seq = layout == AttentionLayout::BHSD ? 2 : 1;
  const int heads = layout == AttentionLayout::BHSD ? 1 : 2;
  return {{t.shape()[0], t.shape()[heads], t.shape()[seq], t.shape()[3]},
          {t.strides()[0], t.strides()[heads], t.strides()[seq]}};
}

void flash_attention_for_tests(const py::object& q, const py::object& k, const py::object& v,
                               const py::object& out, const py::object& lse, bool causal,
                               std::optional<double> scale, const py::object& key_padding_mask,
                               std::optional<int64_t> sliding_window, const std::string& layout) {
  const AttentionLayout order = attention_layout_from_name(layout);
  const Tensor q_t = tensor_arg(q, "q");
  const Tensor k_t = tensor_arg(k, "k");
  const Tensor v_t = tensor_arg(v, "v");
  const Tensor out_t = tensor_arg(out, "out");
  const Tensor lse_t = optional_tensor_arg(lse, "lse");
  const Tensor pad_t = optional_tensor_arg(key_padding_mask, "key_padding_mask");
  const Bhsd qv = bhsd_view(q_t, "q", order);
  const Bhsd kv = bhsd_view(k_t, "k", order);
  const Bhsd vv = bhsd_view(v_t, "v", order);
  const Bhsd ov = bhsd_view(out_t, "out", order);
  const Device device = q_t.device();
  for (const Tensor* t : {&k_t, &v_t, &out_t}) {
    if (!(t->device() == device)) throw DeviceError(std::string(kOp) + ": tensors on two devices");
  }
  if (k_t.dtype() != q_t.dtype() || v_t.dtype() != q_t.dtype() || out_t.dtype() != q_t.dtype()) {
    throw ArgumentError(std::string(kOp) + ": q, k, v and out must share one dtype");
  }
  if (kv.size[0] != qv.size[0] || vv.size[0] != qv.size[0] || kv.size[3] != qv.size[3] ||
      vv.size[1] != kv.size[1] || vv.size[2] != kv.size[2] || kv.size[1] == 0 ||
      qv.size[1] % kv.size[1] != 0) {
    throw ArgumentError(std::string(kOp) + ": q, k, v shapes do not fit together");
  }
  if (ov.size[0] != qv.size[0] || ov.size[1] != qv.size[1] || ov.size[2] != qv.size[2] ||
      ov.size[3] != vv.size[3]) {
    throw ArgumentError(std::string(kOp) + ": out must have q's shape with v's head dim");
  }

  AttentionParams p;
  p.batch = qv.size[0];
  p.q_heads = qv.size[1];
  p.kv_heads = kv.size[1];
  p.q_len = qv.size[2];
  p.kv_len = kv.size[2];
  p.head_dim = qv.size[3];
  p.v_dim = vv.size[3];
  p.dtype = q_t.dtype();
  p.q = q_t.data();
  p.k = k_t.data();
  p.v = v_t.data();
  p.out = out_t.data();
  for (int i = 0; i < 3; ++i) {
    p.q_stride[i] = qv.stride[i];
    p.k_stride[i] = kv.stride[i];
    p.v_stride[i] = vv.stride[i];
    p.out_stride[i] = ov.stride[i];
  }
  if (lse_t.defined()) {
    if (!(lse_t.device() == device) || lse_t.dtype() != DType::F32 || !lse_t.is_contiguous() ||
        lse_t.shape() != Shape{p.batch, p.q_heads, p.q_len}) {
      throw ArgumentError(std::string(kOp) + ": lse must be a contiguous F32 [batch, q heads, "
                          "q_len] tensor on q's device");
    }
    p.lse = lse_t.data_as<float>();
  }
  p.scale = static_cast<float>(scale.value_or(1.0 / std::sqrt(static_cast<double>(p.head_dim))));
  p.causal = causal;
  p.sliding_window = sliding_window.value_or(0);
  if (pad_t.defined()) {
    if (!(pad_t.device() == device) || pad_t.ndim() != 2 || pad_t.shape()[0] != p.batch ||
        pad_t.shape()[1] != p.kv_len) {
      throw ArgumentError(std::string(kOp) + ": key_padding_mask must be [batch, kv_len] on q's "
                          "device");
    }
    p.key_padding = pad_t.data();
    p.key_padding_dtype = pad_t.dtype();
    p.key_padding_stride[0] = pad_t.strides()[0];
    p.key_padding_stride[1] = pad_t.strides()[1];
  }

  py::gil_scoped_release release;
  cuda::CurrentDevice current(device);
  cuda::flash_attention(p, cuda::op_stream());
}

}  // namespace
#endif

void bind_flash_attention_testing(py::module_& m) {
#ifdef HFPORT_WITH_CUDA
  m.def("_flash_attention_for_tests", &flash_attention_for_tests, py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("lse") = py::none(), py::kw_only(),
        py::arg("causal") = false, py::arg("scale") = py::none(),
        py::arg("key_padding_mask") = py::none(), py::arg("sliding_window") = py::none(),
        py::arg("layout") = "bhsd",
        "Test hook: the CUDA flash attention kernel on CUDA tensors, writing into out (and lse, "
        "F32 [B, Hq, Sq]); raises hfport.errors.ArgumentError where the kernel does not apply.");
#else
  (void)m;
#endif
}

}  // namespace hfport::python
