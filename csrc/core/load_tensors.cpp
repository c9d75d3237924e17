#include "core/load_tensors.h"

#include "core/cast.h"
#include "core/device.h"

namespace hfport {

std::vector<std::pair<std::string, Tensor>> load_tensors(const Checkpoint& checkpoint,
                                                          const std::vector<std::string>& names,
                                                          const TensorLoadOptions& options) {
  const bool on_device = options.device.type == DeviceType::CUDA;
  if (on_device) {
    validate_upload_options(options.upload);
    require_usable_device(options.device, "load_all");
  }
  std::vector<std::pair<std::string, Tensor>> loaded;
  for (const std::string& name : names) loaded.emplace_back(name, checkpoint.tensor(name));
  auto wanted = [&](const Tensor& t) {
    return options.dtype && dtype_is_floating(t.dtype()) ? *options.dtype : t.dtype();
  };
  if (!on_device) {
    for (auto& [name, tensor] : loaded) tensor = cast(tensor, wanted(tensor));
    return loaded;
  }
  std::vector<UploadRequest> requests;
  for (const auto& [name, tensor] : loaded) {
    requests.push_back(upload_request(name, tensor, wanted(tensor)));
  }
  std::vector<Tensor> uploaded = upload_to_device(requests, options.device, options.upload);
  for (size_t i = 0; i < loaded.size(); ++i) loaded[i].second = std::move(uploaded[i]);
  return loaded;
}

}  // namespace hfport
