// Naming devices ("cpu", "cuda", "cuda:1") and checking that a CUDA device can be used here.
//
// A build without CUDA, a machine without a driver or GPU, and an index past the last device are
// three different answers, and each gets its own DeviceError message, so a user knows whether to
// rebuild, to move to another machine, or to fix the index.
#pragma once

#include <string>

#include "core/storage.h"

namespace hfport {

std::string device_name(const Device& device);  // "cpu", "cuda:0"

// "cpu", "cuda" (device 0), "cuda:N"; surrounding spaces and case are not forgiven. DeviceError
// naming the text otherwise.
Device parse_device(const std::string& text);

// Throws DeviceError unless `device` is a CUDA device this process can use now. `what` starts the
// message ("to_device", "Tensor::empty"). A CPU device passes.
void require_usable_device(const Device& device, const std::string& what);

}  // namespace hfport
