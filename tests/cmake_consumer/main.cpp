// hfport_consumer FILE: opens a safetensors file with hfport::Checkpoint (mapped, zero-copy), prints
// each tensor's name, dtype, shape and F32 values, then runs hfport::linear (the CPU GEMM, OpenBLAS)
// on the tensors "x" and "w" and prints y = x w^T. A malformed file prints the typed error.
// run_consumer_test.py compares the output with what it wrote.
#include <cstdio>
#include <string>

#include "core/checkpoint.h"
#include "core/error.h"
#include "ops/linear.h"

namespace {

void print_tensor(const std::string& name, const hfport::Tensor& t) {
  std::printf("%s %s [", name.c_str(), std::string(hfport::dtype_name(t.dtype())).c_str());
  for (size_t i = 0; i < t.shape().size(); ++i) {
    std::printf(i ? ", %lld" : "%lld", static_cast<long long>(t.shape()[i]));
  }
  std::printf("]");
  if (t.dtype() == hfport::DType::F32) {
    const hfport::Tensor c = t.contiguous();
    for (int64_t i = 0; i < c.numel(); ++i) std::printf(" %g", c.data_as<float>()[i]);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hfport_consumer FILE.safetensors\n");
    return 2;
  }
  try {
    const auto ck = hfport::Checkpoint::open(argv[1]);
    for (const auto& [key, value] : ck->metadata()) {
      std::printf("metadata %s=%s\n", key.c_str(), value.c_str());
    }
    for (const std::string& name : ck->names()) print_tensor(name, ck->tensor(name));
    if (ck->contains("x") && ck->contains("w")) {
      print_tensor("linear", hfport::linear(ck->tensor("x"), ck->tensor("w")));
    }
  } catch (const hfport::Error& e) {
    std::printf("hfport::Error: %s\n", e.what());
    return 1;
  }
  return 0;
}
