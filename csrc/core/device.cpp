#include "core/device.h"

#include <charconv>

#include "core/build_info.h"
#include "core/error.h"

namespace hfport {

std::string device_name(const Device& device) {
  return device.type == DeviceType::CPU ? "cpu" : "cuda:" + std::to_string(device.index);
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return {DeviceType::CPU, 0};
  if (text == "cuda") return {DeviceType::CUDA, 0};
  const std::string prefix = "cuda:";
  if (text.size() > prefix.size() && text.compare(0, prefix.size(), prefix) == 0) {
    int index = -1;
    const char* begin = text.data() + prefix.size();
    const char* end = text.data() + text.size();
    const auto [stop, status] = std::from_chars(begin, end, index);
    if (status == std::errc() && stop == end && index >= 0) return {DeviceType::CUDA, index};
  }
  throw DeviceError("unknown device '" + text + "'; expected 'cpu', 'cuda' or 'cuda:N' (N >= 0)");
}

void require_usable_device(const Device& device, const std::string& what) {
  if (device.type == DeviceType::CPU) return;
  if (!built_with_cuda()) {
    throw DeviceError(what + ": " + device_name(device) + " needs CUDA, but this build of hfport "
                      "was compiled without it (no nvcc at build time, or -DHFPORT_CUDA=OFF)");
  }
  const int count = cuda_device_count();
  if (count == 0) {
    throw DeviceError(what + ": " + device_name(device) + " is not available: hfport was built "
                      "with CUDA but no CUDA device is visible (no GPU, no driver, or "
                      "CUDA_VISIBLE_DEVICES hides them)");
  }
  if (device.index < 0 || device.index >= count) {
    throw DeviceError(what + ": " + device_name(device) + " does not exist; " +
                      std::to_string(count) + " CUDA device(s) visible (cuda:0 to cuda:" +
                      std::to_string(count - 1) + ")");
  }
}

}  // namespace hfport
