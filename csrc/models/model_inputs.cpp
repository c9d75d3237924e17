#include "models/model_inputs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cast.h"
#include "core/cuda_upload.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "core/parallel.h"
#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/vision_steps.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::models {

namespace {

bool on_cuda(const Tensor& t) { return t.device().type == DeviceType::CUDA; }

// Token ids and masks are read on the host; one that arrives on a GPU is copied back first.
Tensor on_host(const Tensor& t) { return on_cuda(t) ? to_device(t, Device{}) : t; }

void require_f32_contiguous(const char* what, const Tensor& t) {
  if (t.dtype() != DType::F32 || !t.is_contiguous()) {
    throw ArgumentError(std::string(what) + " expects a contiguous F32 tensor, got " +
                        std::string(dtype_name(t.dtype())) + " " + shape_to_string(t.shape()) +
                        (t.is_contiguous() ? "" : " (strided)"));
  }
}

}  // namespace

namespace {

// `ids` [batch, seq] of I64 or I32 with every entry in [0, limit), as a contiguous I64 copy on the
// host; ArgumentError naming `who`, the bad entry, its position and `range_name` otherwise.
Tensor checked_index_tensor(const std::string& who, const Tensor& ids, int64_t limit,
                            const std::string& range_name) {
  if (ids.ndim() != 2 || ids.shape()[0] < 1 || ids.shape()[1] < 1) {
    throw ArgumentError(who + " must be [batch, seq] with batch, seq >= 1, got " +
                        shape_to_string(ids.shape()));
  }
  if (ids.dtype() != DType::I64 && ids.dtype() != DType::I32) {
    throw ArgumentError(who + " must be I64 or I32, got " + std::string(dtype_name(ids.dtype())));
  }
  const Tensor c = on_host(ids).contiguous();
  Tensor checked = Tensor::empty(DType::I64, c.shape());
  int64_t* out = checked.data_as<int64_t>();
  const int64_t seq = c.shape()[1];
  for (int64_t i = 0; i < c.numel(); ++i) {
    const int64_t id = c.dtype() == DType::I64 ? c.data_as<int64_t>()[i] : c.data_as<int32_t>()[i];
    if (id < 0 || id >= limit) {
      throw ArgumentError(who + "[" + std::to_string(i / seq) + ", " + std::to_string(i % seq) +
                          "] = " + std::to_string(id) + " is outside " + range_name + " [0, " +
                          std::to_string(limit) + ")");
    }
    out[i] = id;
  }
  return checked;
}

}  // namespace

Tensor checked_token_ids(const std::string& family, const Tensor& input_ids, int64_t vocab_size) {
  const std::string who = "native " + family + " model: input_ids";
  if (!input_ids.defined()) throw ArgumentError(who + " is required");
  return checked_index_tensor(who, input_ids, vocab_size, "the vocabulary");
}

Tensor checked_token_type_ids(const std::string& family, const Tensor& token_type_ids,
                              const Shape& ids_shape, int64_t type_vocab_size) {
  if (!token_type_ids.defined()) return Tensor();
  const std::string who = "native " + family + " model: token_type_ids";
  if (token_type_ids.shape() != ids_shape) {
    throw ArgumentError(who + " must have input_ids' shape " + shape_to_string(ids_shape) +
                        ", got " + shape_to_string(token_type_ids.shape()));
  }
  return checked_index_tensor(who, token_type_ids, type_vocab_size,
                              "the token types (type_vocab_size)");
}

void require_head(const std::string& family, const std::string& head,
                  const std::vector<std::string>& supported) {
  for (const auto& name : supported) {
    if (name == head) return;
  }
  std::string known;
  for (const auto& name : supported) {
    known += (known.empty() ? "" : ", ") + (name.empty() ? std::string("the base model") : "'" + name + "'");
  }
  throw Error("native " + family + " model: no forward for the head '" + head + "' (it runs " +
              known + "); load the base model alone with heads=\"none\"");
}

Tensor checked_attention_mask(const std::string& family, const Tensor& attention_mask,
                              const Shape& ids_shape) {
  if (!attention_mask.defined()) return Tensor();
  const std::string who = "native " + family + " model: attention_mask";
  if (attention_mask.shape() != ids_shape) {
    throw ArgumentError(who + " must have input_ids' shape " + shape_to_string(ids_shape) +
                        ", got " + shape_to_string(attention_mask.shape()));
  }
  const DType dt = attention_mask.dtype();
  if (dtype_is_floating(dt)) {
    throw ArgumentError(who + " must be an integer or bool tensor of 1 (token) and 0 (padding), "
                        "got " + std::string(dtype_name(dt)));
  }
  const Tensor c = on_host(attention_mask).contiguous();
  Tensor mask = Tensor::empty(DType::U8, ids_shape);
  for (int64_t i = 0; i < c.numel(); ++i) {
    const double v = load_as_f64(c.data(), dt, static_cast<size_t>(i));
    if (v != 0.0 && v != 1.0) {
      throw ArgumentError(who + " holds " + std::to_string(static_cast<int64_t>(v)) +
                          "; only 1 (token) and 0 (padding) are meaningful");
    }
    mask.data_as<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
  return mask;
}

Tensor embedding_rows(const Tensor& table, const Tensor& ids) {
  if (on_cuda(table)) {
#ifdef HFPORT_WITH_CUDA
    if (!table.is_contiguous()) throw ArgumentError("embedding_rows: the table must be contiguous");
    cuda::CurrentDevice current(table.device());
    const Tensor device_ids = to_device(ids, table.device());
    Tensor out = Tensor::empty(table.dtype(), {ids.shape()[0], ids.shape()[1], table.shape()[1]},
                               table.device());
    cuda::EmbeddingParams p;
    p.count = ids.numel();
    p.row_bytes = table.shape()[1] * static_cast<int64_t>(dtype_size(table.dtype()));
    p.table = table.data();
    p.ids = device_ids.data_as<int64_t>();
    p.out = out.data();
    cuda::embedding(p, cuda::op_stream());
    return out;
#endif
  }
  if (!table.is_contiguous()) throw ArgumentError("embedding_rows: the table must be contiguous");
  const int64_t hidden = table.shape()[1];
  Tensor out = Tensor::empty(table.dtype(), {ids.shape()[0], ids.shape()[1], hidden});
  const int64_t* id = ids.data_as<int64_t>();
  const size_t row = static_cast<size_t>(hidden) * dtype_size(table.dtype());
  for (int64_t i = 0; i < ids.numel(); ++i) {
    std::memcpy(out.data() + static_cast<size_t>(i) * row,
                table.data() + static_cast<size_t>(id[i]) * row, row);
  }
  return out;
}

void add_inplace(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    throw ArgumentError("add_inplace: shapes differ: " + shape_to_string(a.shape()) + " and " +
                        shape_to_string(b.shape()));
  }
  if (on_cuda(a) || on_cuda(b)) {
#ifdef HFPORT_WITH_CUDA
    if (a.device() != b.device() || a.dtype() != b.dtype() || !a.is_contiguous() ||
        !b.is_contiguous()) {
      throw ArgumentError("add_inplace: a and b must be contiguous, of one dtype, on one device");
    }
    cuda::CurrentDevice current(a.device());
    cuda::add_inplace({a.numel(), a.dtype(), a.data(), b.data()}, cuda::op_stream());
    return;
#endif
  }
  require_f32_contiguous("add_inplace: a", a);
  require_f32_contiguous("add_inplace: b", b);
  float* x = a.data_as<float>();
  const float* y = b.data_as<float>();
  parallel_for(a.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) x[i] += y[i];
  });
}

void mask_rows_inplace(const Tensor& x, const Tensor& mask) {
  if (on_cuda(x)) {
#ifdef HFPORT_WITH_CUDA
    if (!x.is_contiguous()) throw ArgumentError("mask_rows_inplace: x must be contiguous");
    cuda::CurrentDevice current(x.device());
    const Tensor keep = to_device(mask, x.device());
    cuda::MaskRowsParams p;
    p.rows = mask.numel();
    p.row_bytes = static_cast<int64_t>(x.nbytes()) / p.rows;
    p.x = x.data();
    p.keep = keep.data_as<uint8_t>();
    cuda::mask_rows(p, cuda::op_stream());
    return;
#endif
  }
  require_f32_contiguous("mask_rows_inplace: x", x);
  const int64_t rows = mask.numel();
  const int64_t hidden = x.numel() / rows;
  float* data = x.data_as<float>();
  const uint8_t* keep = mask.data_as<uint8_t>();
  for (int64_t r = 0; r < rows; ++r) {
    if (!keep[r]) std::memset(data + r * hidden, 0, static_cast<size_t>(hidden) * 4);
  }
}

void move_parameters(const std::vector<Tensor*>& tensors, const Device& device) {
  if (device.type == DeviceType::CPU) return;
  // One upload (core/cuda_upload.h: pinned staging, overlapped copies, one allocation) of the
  // distinct tensors; `slot[i]` is the request tensors[i] takes its device tensor from.
  std::vector<UploadRequest> requests;
  std::vector<size_t> slot(tensors.size(), SIZE_MAX);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& host = *tensors[i];
    if (!host.defined()) continue;
    auto same = [&](const UploadRequest& r) {
      return r.source.data() == host.data() && r.source.shape() == host.shape() &&
             r.source.strides() == host.strides() && r.source.dtype() == host.dtype();
    };
    const auto it = std::find_if(requests.begin(), requests.end(), same);
    slot[i] = static_cast<size_t>(it - requests.begin());
    if (it == requests.end()) requests.push_back({"parameter " + std::to_string(i), host, host.dtype()});
  }
  const std::vector<Tensor> moved = upload_to_device(requests, device);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (slot[i] != SIZE_MAX) *tensors[i] = moved[slot[i]];
  }
}

Tensor fused_projection_part(const Tensor& fused, int64_t parts, int64_t which, int64_t heads) {
  const int64_t batch = fused.shape()[0], seq = fused.shape()[1];
  const int64_t hidden = fused.shape()[2] / parts, head_dim = hidden / heads;
  return Tensor(fused.storage(), fused.byte_offset() + static_cast<size_t>(which * hidden) * 4,
                DType::F32, {batch, seq, heads, head_dim},
                {seq * parts * hidden, parts * hidden, head_dim, 1});
}

Tensor contiguous_copy(const Tensor& t) {
  if (on_cuda(t)) {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(t.device());
    Tensor out = Tensor::empty(t.dtype(), t.shape(), t.device());
    cuda::copy_into("contiguous_copy", t, out);
    return out;
#endif
  }
  Tensor out = Tensor::empty(t.dtype(), t.shape());
  copy_strided(t, out);
  return out;
}

void copy_into(const Tensor& src, const Tensor& dst) {
  if (on_cuda(src) || on_cuda(dst)) {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(dst.device());
    cuda::copy_into("copy_into", src, dst);
    return;
#endif
  }
  copy_strided(src, dst);
}

Tensor zeros_on(DType dtype, const Shape& shape, const Device& device) {
  if (device.type == DeviceType::CUDA) {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(device);
    Tensor t = Tensor::empty(dtype, shape, device);
    cuda::zero_fill(t);
    return t;
#endif
  }
  return Tensor::zeros(dtype, shape);
}

void tanh_inplace(const Tensor& x) {
  require_f32_contiguous("tanh_inplace: x", x);
  if (on_cuda(x)) {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(x.device());
    cuda::tanh_inplace(x.data_as<float>(), x.numel(), cuda::op_stream());
    return;
#endif
  }
  float* data = x.data_as<float>();
  for (int64_t i = 0; i < x.numel(); ++i) data[i] = std::tanh(data[i]);
}

Parameters f32_parameters(const std::string& family,
                          std::vector<std::pair<std::string, Tensor>> state) {
  for (auto& [name, tensor] : state) {
    if (tensor.dtype() != DType::F32 && dtype_is_floating(tensor.dtype())) {
      tensor = cast(tensor, DType::F32);
    }
  }
  return Parameters(family, std::move(state));
}

int64_t config_int(const std::string& family, const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || !it->is_number_integer()) {
    throw ConfigError("native " + family + " model: config.json needs an integer '" + key +
                      "', got " + (it == config.end() ? std::string("none") : it->dump()));
  }
  return it->get<int64_t>();
}

double config_number(const std::string& family, const nlohmann::json& config, const char* key,
                     double fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    throw ConfigError("native " + family + " model: config.json '" + key +
                      "' must be a number, got " + it->dump());
  }
  return it->get<double>();
}

bool config_bool(const std::string& family, const nlohmann::json& config, const char* key,
                 bool fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    throw ConfigError("native " + family + " model: config.json '" + key +
                      "' must be true or false, got " + it->dump());
  }
  return it->get<bool>();
}

}  // namespace hfport::models
