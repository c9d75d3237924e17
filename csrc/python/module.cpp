// The _hfport extension module: the C++ core seen from Python.
#include "core/build_info.h"
#include "python/bindings.h"

PYBIND11_MODULE(_hfport, m) {
  using namespace hfport::python;
  m.doc() = "hfport native core: safetensors reader, tensors and DLPack bridge";
  m.attr("__version__") = hfport::version();
  m.def("built_with_cuda", &hfport::built_with_cuda, "CUDA kernels were compiled into this build");
  m.def("built_with_cublaslt", &hfport::built_with_cublaslt, "cuBLASLt is linked into this build");
  m.def("cuda_device_count", &hfport::cuda_device_count,
        "CUDA devices visible now (0 without a CUDA build, driver or device)");
  bind_errors(m);
  bind_tensor(m);
  bind_checkpoint(m);
  bind_mapping(m);
  bind_models(m);
  bind_flash_attention_testing(m);
  // hfport.ops: the kernels, one entry point per op, taking any DLPack producer.
  py::module_ ops = m.def_submodule("ops", "fused kernels on hfport.Tensor or any DLPack producer");
  bind_attention_ops(ops);
  bind_sequence_ops(ops);
  bind_recurrent_ops(ops);
  bind_vision_ops(ops);
  bind_audio_ops(ops);
}
