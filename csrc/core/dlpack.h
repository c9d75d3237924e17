// The DLPack ABI, declared here from the specification (https://dmlc.github.io/dlpack, v1.1)
// instead of taken from a system header: Debian ships DLPack 0.6, which lacks the versioned
// struct, and a pip build must not need a root-installed -dev package for a dozen declarations.
//
// Two managed structs cross the Python boundary, told apart by the capsule's name:
//   "dltensor"            DLManagedTensor (every DLPack version): no version, no flags.
//   "dltensor_versioned"  DLManagedTensorVersioned (1.0+): carries its version and flags, among
//                         them READ_ONLY (the consumer must not write) and IS_COPIED (the producer
//                         made a copy for this export, so nobody else sees writes to it).
// The layouts below are the ABI: field order and widths must not change. The version, manager_ctx
// and deleter of DLManagedTensorVersioned come first so that a consumer can read them (and call
// the deleter) before it has checked that it understands the rest.
//
// The names are the specification's, in the global namespace, so that code reads like every other
// DLPack user's. Defining DLPACK_DLPACK_H_ (the reference header's include guard) makes a later
// #include <dlpack/dlpack.h> a no-op instead of a second, conflicting set of declarations.
#pragma once

#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_

#include <cstdint>

#define DLPACK_MAJOR_VERSION 1
#define DLPACK_MINOR_VERSION 1

// DLManagedTensorVersioned::flags bits.
#define DLPACK_FLAG_BITMASK_READ_ONLY (UINT64_C(1) << 0)
#define DLPACK_FLAG_BITMASK_IS_COPIED (UINT64_C(1) << 1)
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (UINT64_C(1) << 2)

extern "C" {

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

// 32 bits wide in every DLPack version, whatever the compiler would pick for a plain enum.
enum DLDeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,  // pinned host memory: the CPU reads it directly
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17,
};

struct DLDevice {
  DLDeviceType device_type;
  int32_t device_id;
};

enum DLDataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
  kDLFloat8_e3m4 = 7,
  kDLFloat8_e4m3 = 8,
  kDLFloat8_e4m3b11fnuz = 9,
  kDLFloat8_e4m3fn = 10,
  kDLFloat8_e4m3fnuz = 11,
  kDLFloat8_e5m2 = 12,
  kDLFloat8_e5m2fnuz = 13,
  kDLFloat8_e8m0fnu = 14,
  kDLFloat6_e2m3fn = 15,
  kDLFloat6_e3m2fn = 16,
  kDLFloat4_e2m1fn = 17,
};

struct DLDataType {
  uint8_t code;  // a DLDataTypeCode
  uint8_t bits;
  uint16_t lanes;
};

// `strides` in elements; null means compact row-major. The first element is at
// (char*)data + byte_offset.
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // extern "C"

#endif  // DLPACK_DLPACK_H_
