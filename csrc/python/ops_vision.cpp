// hfport.ops for vision models: patch_embed (a 2-D or 3-D convolution whose stride is its kernel,
// as unfold + GEMM) and interpolate_bicubic (torch's bicubic resize, bit for bit, for position tables). Each
// binding views its tensor arguments without a copy, releases the GIL and calls the C++ op.
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "ops/interpolate.h"
#include "ops/patch_embed.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

// `value`: an int (a square) or a pair of ints, named `arg` in `op`'s errors.
std::pair<int64_t, int64_t> int_pair_arg(const char* op, const char* arg, const py::object& value) {
  if (py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value)) {
    const auto v = value.cast<int64_t>();
    return {v, v};
  }
  try {
    const auto v = value.cast<std::vector<int64_t>>();
    if (v.size() == 2) return {v[0], v[1]};
  } catch (const py::cast_error&) {
  }
  throw ArgumentError(std::string(op) + ": " + arg + " must be an int or a pair of ints, got " +
                      std::string(py::str(value)));
}

// patch: an int (a square, one frame), (ph, pw), or (pt, ph, pw) for tubelets of pt frames.
PatchSize patch_arg(const py::object& value) {
  if (py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value)) {
    const auto v = value.cast<int64_t>();
    return PatchSize{v, v, 1};
  }
  try {
    const auto v = value.cast<std::vector<int64_t>>();
    if (v.size() == 2) return PatchSize{v[0], v[1], 1};
    if (v.size() == 3) return PatchSize{v[1], v[2], v[0]};
  } catch (const py::cast_error&) {
  }
  throw ArgumentError("patch_embed: patch must be an int, (patch_h, patch_w) or (patch_t, "
                      "patch_h, patch_w), got " + std::string(py::str(value)));
}

Tensor patch_embed_binding(const DLPackArg& pixels, const DLPackArg& weight, const DLPackArg& bias,
                           const py::object& patch, const DLPackArg& out) {
  const Tensor pixels_t = tensor_arg(pixels, "pixels");
  const Tensor weight_t = tensor_arg(weight, "weight");
  const Tensor bias_t = optional_tensor_arg(bias, "bias");
  const Tensor out_t = optional_tensor_arg(out, "out");
  const PatchSize size = patch_arg(patch);
  py::gil_scoped_release release;
  return patch_embed(pixels_t, weight_t, bias_t, size, out_t);
}

Tensor interpolate_binding(const DLPackArg& x, const py::object& size, bool antialias,
                           bool align_corners, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor out_t = optional_tensor_arg(out, "out");
  const auto [h, w] = int_pair_arg("interpolate_bicubic", "size", size);
  py::gil_scoped_release release;
  return interpolate_bicubic(x_t, h, w, antialias, out_t, align_corners);
}

}  // namespace

void bind_vision_ops(py::module_& ops) {
  ops.def("patch_embed", &patch_embed_binding, py::arg("pixels"), py::arg("weight"),
          py::arg("bias"), py::arg("patch"), py::kw_only(), py::arg("out") = py::none(),
          "conv2d(pixels, weight, bias, stride=patch).flatten(2).transpose(1, 2) as unfold + "
          "GEMM: pixels [batch, channels, H, W] (F32/F16/BF16, any strides), weight [hidden, "
          "channels, ph, pw], bias [hidden] or None, patch an int or (ph, pw); returns [batch, "
          "(H // ph) * (W // pw), hidden] in the pixels' dtype (F32 sums). Video: pixels [batch, "
          "channels, T, H, W], weight [hidden, channels, pt, ph, pw], patch (pt, ph, pw) (conv3d, "
          "VideoMAE's tubelets). CPU or CUDA.");
  ops.def("interpolate_bicubic", &interpolate_binding, py::arg("x"), py::arg("size"),
          py::arg("antialias") = false, py::kw_only(), py::arg("align_corners") = false,
          py::arg("out") = py::none(),
          "torch.nn.functional.interpolate(x, size, mode='bicubic', align_corners=align_corners, "
          "antialias=antialias) bit for bit on the CPU: x [batch, channels, H, W] F32, any "
          "strides; size an int or (out_h, out_w); returns contiguous F32. align_corners with "
          "antialias is refused.");
}

}  // namespace hfport::python
