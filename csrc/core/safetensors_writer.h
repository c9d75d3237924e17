// Writing a safetensors file: tensors in the given order, a header sorted by name as the
// safetensors library writes it, padded with spaces to a multiple of 8 bytes so the data buffer is
// aligned. The file is written beside its destination and renamed into place, so a failure never
// leaves a truncated file under the final name.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace hfport {

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace hfport
