// A model's parameters by canonical name, as the strict loader made them. A model asks for each
// one by name; a name the load did not produce is a programming error in the model or its spec,
// reported with the family and the name (a strict load has already checked every shape).
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace hfport::models {

class Parameters {
 public:
  Parameters(std::string family, std::vector<std::pair<std::string, Tensor>> state)
      : family_(std::move(family)) {
    for (auto& [name, tensor] : state) tensors_.emplace(std::move(name), std::move(tensor));
  }

  const Tensor& get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) {
      throw Error("native " + family_ + " model: parameter '" + name + "' was not loaded");
    }
    return it->second;
  }
  // An optional parameter (a bias some variants lack): nullptr when absent.
  const Tensor* find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }
  // Every parameter, for a model that moves them to its device in place (models/model_inputs.h:
  // move_parameters); the order is unspecified.
  std::vector<Tensor*> tensors() {
    std::vector<Tensor*> all;
    for (auto& [name, tensor] : tensors_) all.push_back(&tensor);
    return all;
  }

 private:
  std::string family_;
  std::unordered_map<std::string, Tensor> tensors_;
};

}  // namespace hfport::models
