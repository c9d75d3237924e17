// to_dlpack / from_dlpack: every dtype crosses with the DLPack codes written here (0.6 codes plus
// the 1.x ones torch uses for bool and float8), without a copy, with the producer's deleter called
// exactly once and the storage alive for as long as any side holds a view.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/dlpack.h"
#include "core/dlpack_bridge.h"
#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::throws_exactly;

// Host bytes that report their destruction.
class TrackedStorage final : public hfport::Storage {
 public:
  TrackedStorage(size_t size, bool* destroyed) : bytes_(size), destroyed_(destroyed) {}
  ~TrackedStorage() override { *destroyed_ = true; }
  std::byte* data() const override { return const_cast<std::byte*>(bytes_.data()); }
  size_t size() const override { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
  bool* destroyed_;
};

struct DLCode {
  DType dtype;
  uint8_t code, bits;
};

// DLPack 0.6 codes, and DLPack 1.x kDLBool = 6, kDLFloat8_e4m3fn = 10, kDLFloat8_e5m2 = 12.
const DLCode kCodes[] = {
    {DType::BOOL, 6, 8},          {DType::U8, kDLUInt, 8},     {DType::I8, kDLInt, 8},
    {DType::I16, kDLInt, 16},     {DType::U16, kDLUInt, 16},   {DType::F16, kDLFloat, 16},
    {DType::BF16, kDLBfloat, 16}, {DType::I32, kDLInt, 32},    {DType::U32, kDLUInt, 32},
    {DType::F32, kDLFloat, 32},   {DType::I64, kDLInt, 64},    {DType::U64, kDLUInt, 64},
    {DType::F64, kDLFloat, 64},   {DType::F8_E4M3, 10, 8},     {DType::F8_E5M2, 12, 8},
};

std::vector<std::byte> contiguous_bytes(const Tensor& t) {
  const Tensor c = t.clone();
  return std::vector<std::byte>(c.data(), c.data() + c.nbytes());
}

TEST(DLPack, EveryDTypeRoundTripsWithoutACopy) {
  ASSERT_EQ(std::size(kCodes), static_cast<size_t>(hfport::kDTypeCount));
  std::mt19937 rng(6);
  for (const DLCode& c : kCodes) {
    SCOPED_TRACE(hfport::dtype_name(c.dtype));
    const size_t item = hfport::dtype_size(c.dtype);
    bool destroyed = false;
    auto storage = std::make_shared<TrackedStorage>(40 * item, &destroyed);
    for (size_t i = 0; i < storage->size(); ++i) storage->data()[i] = static_cast<std::byte>(rng());
    // A transposed view that starts two elements in: strides and offset must both survive.
    const Tensor t(storage, 2 * item, c.dtype, {3, 4}, {1, 5});
    const std::vector<std::byte> expected = contiguous_bytes(t);
    storage.reset();

    DLManagedTensor* managed = hfport::to_dlpack(t);
    const DLTensor& dl = managed->dl_tensor;
    EXPECT_EQ(dl.data, t.data());
    EXPECT_EQ(dl.byte_offset, 0u);
    EXPECT_EQ(dl.device.device_type, kDLCPU);
    EXPECT_EQ(dl.device.device_id, 0);
    ASSERT_EQ(dl.ndim, 2);
    EXPECT_EQ(dl.shape[0], 3);
    EXPECT_EQ(dl.shape[1], 4);
    ASSERT_NE(dl.strides, nullptr);
    EXPECT_EQ(dl.strides[0], 1);
    EXPECT_EQ(dl.strides[1], 5);
    EXPECT_EQ(dl.dtype.code, c.code);
    EXPECT_EQ(dl.dtype.bits, c.bits);
    EXPECT_EQ(dl.dtype.lanes, 1);

    Tensor back = hfport::from_dlpack(managed);
    EXPECT_EQ(back.dtype(), c.dtype);
    EXPECT_EQ(back.shape(), (Shape{3, 4}));
    EXPECT_EQ(back.strides(), (Shape{1, 5}));
    EXPECT_EQ(back.data(), t.data());
    EXPECT_EQ(back.device().type, hfport::DeviceType::CPU);
    EXPECT_EQ(contiguous_bytes(back), expected);
    back = Tensor();
    EXPECT_FALSE(destroyed);  // `t` still holds it
  }
}

TEST(DLPack, ZeroDimAndEmptyTensorsRoundTrip) {
  for (const Shape& shape : {Shape{}, Shape{0, 3}, Shape{2, 0}}) {
    const Tensor t = Tensor::zeros(DType::F32, shape);
    const Tensor back = hfport::from_dlpack(hfport::to_dlpack(t));
    EXPECT_EQ(back.shape(), shape);
    EXPECT_EQ(back.numel(), t.numel());
    EXPECT_EQ(back.clone().numel(), t.numel());
  }
}

TEST(DLPack, ExportOfNegativeStridesIsRefused) {
  // DLPack allows them but torch aborts on one; exporting a contiguous copy is the way.
  bool destroyed = false;
  Tensor t(std::make_shared<TrackedStorage>(16, &destroyed), 12, DType::I32, {4}, {-1});
  EXPECT_TRUE(throws_exactly<hfport::DLPackError>([&] { hfport::to_dlpack(t); },
                                                  {"[4]", "negative strides [-1]", "contiguous"}));
  const Tensor back = hfport::from_dlpack(hfport::to_dlpack(t.contiguous()));
  EXPECT_EQ(back.strides(), (Shape{1}));
  t = Tensor();
  EXPECT_TRUE(destroyed);  // the refused export kept nothing alive
}

// The exporter's deleter, wrapped to count calls.
void (*g_export_deleter)(DLManagedTensor*) = nullptr;
int g_export_deletes = 0;
void counting_deleter(DLManagedTensor* m) {
  ++g_export_deletes;
  g_export_deleter(m);
}

DLManagedTensor* counted_export(const Tensor& t) {
  DLManagedTensor* managed = hfport::to_dlpack(t);
  g_export_deleter = managed->deleter;
  managed->deleter = counting_deleter;
  g_export_deletes = 0;
  return managed;
}

TEST(DLPack, DeleterRunsOnceWhenTheLastViewIsGone) {
  bool destroyed = false;
  Tensor t(std::make_shared<TrackedStorage>(64, &destroyed), 0, DType::F64, {8}, {1});
  Tensor back = hfport::from_dlpack(counted_export(t));
  Tensor copy = back;
  Tensor view = back.slice(0, 2, 6, 2);
  t = Tensor();
  back = Tensor();
  copy = Tensor();
  EXPECT_EQ(g_export_deletes, 0);
  EXPECT_FALSE(destroyed);  // the capsule still holds the storage
  view = Tensor();
  EXPECT_EQ(g_export_deletes, 1);
  EXPECT_TRUE(destroyed);
}

TEST(DLPack, ExportKeepsTheStorageAlive) {
  bool destroyed = false;
  Tensor t(std::make_shared<TrackedStorage>(16, &destroyed), 0, DType::I32, {4}, {1});
  t.data_as<int32_t>()[3] = 1234;
  DLManagedTensor* managed = hfport::to_dlpack(t);
  t = Tensor();
  EXPECT_FALSE(destroyed);
  EXPECT_EQ(static_cast<int32_t*>(managed->dl_tensor.data)[3], 1234);
  managed->deleter(managed);
  EXPECT_TRUE(destroyed);
}

// A DLPack producer written here, as torch or numpy would fill the struct.
struct Producer {
  std::vector<int64_t> shape, strides;
  std::vector<std::byte> buffer;
  int* deletes;
  DLManagedTensor managed{};

  static DLManagedTensor* make(DLDataType dtype, DLDevice device, std::vector<int64_t> shape,
                               std::vector<int64_t> strides, size_t buffer_bytes, int* deletes,
                               uint64_t byte_offset = 0) {
    auto* p = new Producer{std::move(shape), std::move(strides),
                           std::vector<std::byte>(buffer_bytes), deletes};
    DLTensor& dl = p->managed.dl_tensor;
    dl.data = p->buffer.data();
    dl.device = device;
    dl.ndim = static_cast<int32_t>(p->shape.size());
    dl.dtype = dtype;
    dl.shape = p->shape.data();
    dl.strides = p->strides.empty() ? nullptr : p->strides.data();
    dl.byte_offset = byte_offset;
    p->managed.manager_ctx = p;
    p->managed.deleter = [](DLManagedTensor* m) {
      auto* self = static_cast<Producer*>(m->manager_ctx);
      ++*self->deletes;
      delete self;
    };
    return &p->managed;
  }
  static std::byte* data(DLManagedTensor* m) { return static_cast<std::byte*>(m->dl_tensor.data); }
};

TEST(DLPack, ImportHonoursNullStridesAndByteOffset) {
  int deletes = 0;
  DLManagedTensor* m =
      Producer::make({kDLFloat, 32, 1}, {kDLCPU, 0}, {2, 3}, {}, 8 + 24, &deletes, 8);
  for (int i = 0; i < 6; ++i) {
    const float v = static_cast<float>(i) + 0.5f;
    std::memcpy(Producer::data(m) + 8 + 4 * i, &v, 4);
  }
  Tensor t = hfport::from_dlpack(m);
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_EQ(t.data_as<float>()[4], 4.5f);
  EXPECT_TRUE(t.is_contiguous());
  t = Tensor();
  EXPECT_EQ(deletes, 1);
}

TEST(DLPack, ImportNegativeStrides) {
  int deletes = 0;
  // A reversed view of int16 [0..9]: data points at the last element, stride -1.
  DLManagedTensor* m = Producer::make({kDLInt, 16, 1}, {kDLCPU, 0}, {10}, {-1}, 20, &deletes);
  for (int16_t i = 0; i < 10; ++i) std::memcpy(Producer::data(m) + 2 * i, &i, 2);
  m->dl_tensor.data = Producer::data(m) + 18;
  const Tensor t = hfport::from_dlpack(m);
  EXPECT_EQ(t.strides(), (Shape{-1}));
  const Tensor c = t.clone();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.data_as<int16_t>()[i], 9 - i);
  // The storage spans the whole reachable range.
  EXPECT_EQ(t.storage()->size(), 20u);
}

TEST(DLPack, ImportDevices) {
  int deletes = 0;
  const Tensor pinned = hfport::from_dlpack(
      Producer::make({kDLFloat, 32, 1}, {kDLCUDAHost, 0}, {4}, {}, 16, &deletes));
  EXPECT_EQ(pinned.device().type, hfport::DeviceType::CPU);
  const Tensor gpu = hfport::from_dlpack(
      Producer::make({kDLBfloat, 16, 1}, {kDLCUDA, 3}, {4}, {}, 8, &deletes));
  EXPECT_EQ(gpu.device().type, hfport::DeviceType::CUDA);
  EXPECT_EQ(gpu.device().index, 3);
  // Exporting it again names the same device, without touching its memory.
  DLManagedTensor* exported = hfport::to_dlpack(gpu);
  EXPECT_EQ(exported->dl_tensor.device.device_type, kDLCUDA);
  EXPECT_EQ(exported->dl_tensor.device.device_id, 3);
  exported->deleter(exported);
  EXPECT_EQ(deletes, 0);
}

TEST(DLPack, RefusedImportsStillCallTheDeleterOnce) {
  struct Case {
    DLDataType dtype;
    DLDevice device;
    const char* needle;
  };
  const Case cases[] = {
      {{kDLFloat, 32, 4}, {kDLCPU, 0}, "4 lanes"},
      {{kDLFloat, 8, 1}, {kDLCPU, 0}, "8 bits"},
      {{kDLInt, 128, 1}, {kDLCPU, 0}, "128 bits"},
      {{kDLComplex, 64, 1}, {kDLCPU, 0}, "dtype code 5"},
      {{kDLBfloat, 32, 1}, {kDLCPU, 0}, "dtype code 4"},
      {{6, 16, 1}, {kDLCPU, 0}, "dtype code 6"},  // a 16-bit bool
      {{kDLFloat, 32, 1}, {kDLOpenCL, 0}, "device type 4"},
      {{kDLFloat, 32, 1}, {kDLVulkan, 0}, "device type 7"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.needle);
    int deletes = 0;
    DLManagedTensor* m = Producer::make(c.dtype, c.device, {2}, {}, 64, &deletes);
    EXPECT_TRUE(throws_exactly<hfport::DLPackError>([&] { hfport::from_dlpack(m); }, {c.needle}));
    EXPECT_EQ(deletes, 1);
  }
  int deletes = 0;
  DLManagedTensor* m = Producer::make({kDLFloat, 32, 1}, {kDLCPU, 0}, {}, {}, 4, &deletes);
  m->dl_tensor.ndim = -1;
  EXPECT_TRUE(throws_exactly<hfport::DLPackError>([&] { hfport::from_dlpack(m); }, {"ndim"}));
  EXPECT_EQ(deletes, 1);
}

// Issue 12, defect 2: a producer may hand a zero-element tensor a null data pointer (torch does)
// and any byte_offset or strides; nothing may be offset from null (UBSan's "applying non-zero
// offset to null pointer"), and the tensor must go on to slice, clone and export.
TEST(DLPack, ZeroElementImportFromANullPointer) {
  for (const auto& [shape, strides] :
       {std::pair{Shape{0, 8}, Shape{}}, std::pair{Shape{4, 0, 3}, Shape{-3, 1, -1}},
        std::pair{Shape{0, 2147483648, 2147483648}, Shape{}},
        // A 2^61 dim with strides of the producer's own: accepted, as its compact strides fit.
        std::pair{Shape{0, 2305843009213693952, 2}, Shape{1, 2, 1}}}) {
    SCOPED_TRACE(hfport::shape_to_string(shape));
    int deletes = 0;
    DLManagedTensor* m = Producer::make({kDLFloat, 32, 1}, {kDLCPU, 0}, shape, strides, 0, &deletes,
                                        /*byte_offset=*/64);
    m->dl_tensor.data = nullptr;
    Tensor t = hfport::from_dlpack(m);
    EXPECT_EQ(t.shape(), shape);
    EXPECT_EQ(t.numel(), 0);
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(t.data(), nullptr);
    EXPECT_EQ(t.clone().numel(), 0);
    EXPECT_EQ(t.select(-1, 1).numel(), 0);
    EXPECT_EQ(t.slice(-1, 1, 2).numel(), 0);
    DLManagedTensor* exported = hfport::to_dlpack(t.select(-1, 1));
    EXPECT_EQ(exported->dl_tensor.data, nullptr);
    exported->deleter(exported);
    t = Tensor();
    EXPECT_EQ(deletes, 1);
  }
}

TEST(DLPack, ImportsThatCannotBeViewedAreRefused) {
  struct Case {
    Shape shape, strides;
    bool null_data;
    const char* needle;
  };
  const Case cases[] = {
      {{2, -1}, {}, false, "negative dimension"},
      {{2, 3}, {}, true, "null data pointer"},
      {{3, 3}, {INT64_MAX / 2, 1}, false, "more bytes than fit in 64 bits"},
      {{2, 2}, {INT64_MIN, 1}, false, "more bytes than fit in 64 bits"},
      {{2, 4611686018427387904, 4}, {}, false, "strides that do not fit in 64 bits"},
      // Strides given, but a copy's compact strides would overflow (the sanitizer build saw
      // clone() do so): refused as torch refuses the shape.
      {{0, 4, 7782220156096217089}, {1, 7782220156096217089, 1}, false,
       "strides that do not fit in 64 bits"},
      // Found by fuzz_from_dlpack: zero strides reach one element, but numel() overflows.
      {{4294967296, 4294967296}, {0, 0}, false, "more elements than fit in 64 bits"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.needle);
    int deletes = 0;
    DLManagedTensor* m =
        Producer::make({kDLFloat, 32, 1}, {kDLCPU, 0}, c.shape, c.strides, 64, &deletes);
    if (c.null_data) m->dl_tensor.data = nullptr;
    EXPECT_TRUE(throws_exactly<hfport::DLPackError>([&] { hfport::from_dlpack(m); }, {c.needle}));
    EXPECT_EQ(deletes, 1);
  }
}

// DLPack 1.x: a producer of versioned structs, filled as the specification lays them out.
struct VersionedProducer {
  std::vector<int64_t> shape;
  std::vector<float> buffer;
  int* deletes;
  DLManagedTensorVersioned managed{};

  static DLManagedTensorVersioned* make(uint32_t major, uint64_t flags, int* deletes) {
    auto* p = new VersionedProducer{{2, 3}, {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f}, deletes};
    p->managed.version = {major, 3};
    p->managed.flags = flags;
    DLTensor& dl = p->managed.dl_tensor;
    dl.data = p->buffer.data();
    dl.device = {kDLCPU, 0};
    dl.ndim = 2;
    dl.dtype = {kDLFloat, 32, 1};
    dl.shape = p->shape.data();
    dl.strides = nullptr;
    dl.byte_offset = 0;
    p->managed.manager_ctx = p;
    p->managed.deleter = [](DLManagedTensorVersioned* m) {
      auto* self = static_cast<VersionedProducer*>(m->manager_ctx);
      ++*self->deletes;
      delete self;
    };
    return &p->managed;
  }
};

TEST(DLPackVersioned, StructLayoutIsTheSpecifications) {
  // The ABI: these offsets are what every other DLPack 1.x implementation reads.
  EXPECT_EQ(sizeof(DLTensor), 48u);
  EXPECT_EQ(offsetof(DLManagedTensorVersioned, manager_ctx), 8u);
  EXPECT_EQ(offsetof(DLManagedTensorVersioned, deleter), 16u);
  EXPECT_EQ(offsetof(DLManagedTensorVersioned, flags), 24u);
  EXPECT_EQ(offsetof(DLManagedTensorVersioned, dl_tensor), 32u);
  EXPECT_EQ(offsetof(DLManagedTensor, manager_ctx), 48u);
  EXPECT_EQ(sizeof(DLDevice), 8u);
}

TEST(DLPackVersioned, ExportCarriesVersionAndFlags) {
  const Tensor t = Tensor::zeros(DType::F32, {3, 4});
  DLManagedTensorVersioned* plain = hfport::to_dlpack_versioned(t);
  EXPECT_EQ(plain->version.major, 1u);
  EXPECT_EQ(plain->version.minor, 1u);
  EXPECT_EQ(plain->flags, 0u);
  EXPECT_EQ(plain->dl_tensor.data, t.data());
  EXPECT_EQ(plain->dl_tensor.ndim, 2);
  plain->deleter(plain);
  DLManagedTensorVersioned* copied =
      hfport::to_dlpack_versioned(t, DLPACK_FLAG_BITMASK_IS_COPIED);
  EXPECT_EQ(copied->flags, DLPACK_FLAG_BITMASK_IS_COPIED);
  // A versioned export comes back as the same view.
  const Tensor back = hfport::from_dlpack(copied);
  EXPECT_EQ(back.data(), t.data());
  EXPECT_EQ(back.shape(), t.shape());
  EXPECT_FALSE(back.storage()->read_only());
}

TEST(DLPackVersioned, ReadOnlyCrossesBothWays) {
  int deletes = 0;
  Tensor t = hfport::from_dlpack(
      VersionedProducer::make(1, DLPACK_FLAG_BITMASK_READ_ONLY, &deletes));
  EXPECT_TRUE(t.storage()->read_only());
  EXPECT_EQ(t.data_as<float>()[4], 4.5f);
  DLManagedTensorVersioned* again = hfport::to_dlpack_versioned(t.slice(1, 1, 3));
  EXPECT_EQ(again->flags, DLPACK_FLAG_BITMASK_READ_ONLY);
  again->deleter(again);
  // The copy is hfport's own memory.
  EXPECT_FALSE(t.clone().storage()->read_only());
  t = Tensor();
  EXPECT_EQ(deletes, 1);

  const Tensor writable = hfport::from_dlpack(VersionedProducer::make(1, 0, &deletes));
  EXPECT_FALSE(writable.storage()->read_only());
}

TEST(DLPackVersioned, AnotherMajorVersionIsRefusedAndDeleted) {
  int deletes = 0;
  EXPECT_TRUE(throws_exactly<hfport::DLPackError>(
      [&] { hfport::from_dlpack(VersionedProducer::make(2, 0, &deletes)); },
      {"version 2.3", "major version 1"}));
  EXPECT_EQ(deletes, 1);
}

TEST(TensorTranspose, SwapsShapeAndStridesOnly) {
  const Tensor t = Tensor::zeros(DType::F32, {2, 3, 4});
  const Tensor swapped = t.transpose(0, -1);
  EXPECT_EQ(swapped.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(swapped.strides(), (Shape{1, 4, 12}));
  EXPECT_EQ(swapped.data(), t.data());
  EXPECT_FALSE(swapped.is_contiguous());
  EXPECT_TRUE(throws_exactly<hfport::SliceError>([&] { t.transpose(0, 3); }, {"dimension 3"}));
}

}  // namespace
