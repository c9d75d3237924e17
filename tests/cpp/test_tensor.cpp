// Tensor views against index arithmetic. A reference array records, for each element of a view in
// row-major order, which element of the underlying storage it is; slice and select are applied to
// that list from their Python definitions, and every view's element addresses, clone(),
// contiguous() and copy_strided() are checked against it on random chains of views over strided
// bases (permuted, broadcast, reversed) of every element size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::throws_exactly;

// Elements in row-major order, each named by its element index in the storage.
struct Reference {
  Shape shape;
  std::vector<int64_t> source;
};

int64_t count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Row-major multi-index of position k.
std::vector<int64_t> unravel(int64_t k, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    index[d] = k % shape[d];
    k /= shape[d];
  }
  return index;
}

int64_t ravel(const std::vector<int64_t>& index, const Shape& shape) {
  int64_t k = 0;
  for (size_t d = 0; d < shape.size(); ++d) k = k * shape[d] + index[d];
  return k;
}

// The definition of a strided view: element `index` is at offset + sum(index[d] * stride[d]).
Reference strided_reference(int64_t offset, const Shape& shape, const Shape& strides) {
  Reference r{shape, {}};
  for (int64_t k = 0; k < count(shape); ++k) {
    const auto index = unravel(k, shape);
    int64_t at = offset;
    for (size_t d = 0; d < shape.size(); ++d) at += index[d] * strides[d];
    r.source.push_back(at);
  }
  return r;
}

// a[..., start:stop:step, ...] on dimension `dim`.
Reference ref_slice(const Reference& a, int64_t dim, int64_t start, int64_t stop, int64_t step) {
  Reference r{a.shape, {}};
  r.shape[dim] = stop > start ? (stop - start + step - 1) / step : 0;
  for (int64_t k = 0; k < count(r.shape); ++k) {
    auto index = unravel(k, r.shape);
    index[dim] = start + index[dim] * step;
    r.source.push_back(a.source[ravel(index, a.shape)]);
  }
  return r;
}

// a[..., i, ...] on dimension `dim`.
Reference ref_select(const Reference& a, int64_t dim, int64_t i) {
  Reference r{a.shape, {}};
  r.shape.erase(r.shape.begin() + dim);
  for (int64_t k = 0; k < count(r.shape); ++k) {
    auto index = unravel(k, r.shape);
    index.insert(index.begin() + dim, i);
    r.source.push_back(a.source[ravel(index, a.shape)]);
  }
  return r;
}

bool ref_is_contiguous(const Reference& a) {
  for (size_t k = 0; k < a.source.size(); ++k) {
    if (a.source[k] != a.source[0] + static_cast<int64_t>(k)) return false;
  }
  return true;
}

// A storage of random bytes; `base` is its first byte.
struct RandomStorage {
  std::shared_ptr<hfport::HostStorage> storage;
  std::byte* base;
  RandomStorage(size_t bytes, std::mt19937& rng)
      : storage(std::make_shared<hfport::HostStorage>(bytes)), base(storage->data()) {
    for (size_t i = 0; i < bytes; ++i) base[i] = static_cast<std::byte>(rng());
  }
};

// Every element of `t` is where the reference says, holds those bytes, and every way of making a
// contiguous copy copies exactly those elements in row-major order.
void expect_matches(const Tensor& t, const Reference& r, const std::byte* base) {
  ASSERT_EQ(t.shape(), r.shape);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(r.source.size()));
  const size_t item = hfport::dtype_size(t.dtype());
  for (int64_t k = 0; k < t.numel(); ++k) {
    const auto index = unravel(k, r.shape);
    int64_t offset = 0;
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] * t.strides()[d];
    ASSERT_EQ(t.data() + offset * static_cast<int64_t>(item), base + r.source[k] * item)
        << "element " << k;
  }
  EXPECT_EQ(t.is_contiguous(), ref_is_contiguous(r) || r.source.empty());

  std::vector<std::byte> expected(r.source.size() * item);
  for (size_t k = 0; k < r.source.size(); ++k) {
    std::memcpy(expected.data() + k * item, base + r.source[k] * item, item);
  }
  auto bytes_of = [&](const Tensor& c) {
    return std::vector<std::byte>(c.data(), c.data() + c.numel() * static_cast<int64_t>(item));
  };
  const Tensor cloned = t.clone();
  EXPECT_TRUE(cloned.is_contiguous());
  EXPECT_EQ(cloned.shape(), r.shape);
  EXPECT_EQ(cloned.strides(), hfport::contiguous_strides(r.shape));
  EXPECT_NE(cloned.storage(), t.storage());
  EXPECT_EQ(bytes_of(cloned), expected);

  const Tensor contiguous = t.contiguous();
  EXPECT_EQ(bytes_of(contiguous), expected);
  if (t.is_contiguous()) {
    EXPECT_EQ(contiguous.data(), t.data());  // no copy
  } else {
    EXPECT_NE(contiguous.storage(), t.storage());
  }

  const Tensor dst = Tensor::zeros(t.dtype(), t.shape());
  hfport::copy_strided(t, dst);
  EXPECT_EQ(bytes_of(dst), expected);
}

const DType kOneOfEachSize[] = {DType::U8, DType::BF16, DType::F32, DType::I64};

TEST(TensorViews, HandWorkedSliceAndSelect) {
  // A 3 x 4 int32 matrix holding 0..11.
  std::mt19937 rng(1);
  RandomStorage s(12 * 4, rng);
  for (int32_t i = 0; i < 12; ++i) std::memcpy(s.base + 4 * i, &i, 4);
  const Tensor m(s.storage, 0, DType::I32, {3, 4}, {4, 1});
  auto at = [](const Tensor& t, std::vector<int64_t> index) {
    int64_t offset = 0;
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] * t.strides()[d];
    return t.data_as<int32_t>()[offset];
  };
  const Tensor cols = m.slice(1, 1, 4, 2);  // m[:, 1:4:2] = [[1, 3], [5, 7], [9, 11]]
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  EXPECT_EQ(cols.strides(), (Shape{4, 2}));
  EXPECT_EQ(at(cols, {0, 0}), 1);
  EXPECT_EQ(at(cols, {2, 1}), 11);
  const Tensor row = m.select(0, -1);  // m[-1] = [8, 9, 10, 11]
  EXPECT_EQ(row.shape(), (Shape{4}));
  EXPECT_EQ(at(row, {0}), 8);
  const Tensor col = m.select(1, 2);  // m[:, 2] = [2, 6, 10]
  EXPECT_EQ(col.strides(), (Shape{4}));
  EXPECT_EQ(at(col, {2}), 10);
  const Tensor scalar = col.select(0, 1);  // 6, a 0-d view
  EXPECT_TRUE(scalar.shape().empty());
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.data_as<int32_t>()[0], 6);
  EXPECT_EQ(scalar.clone().data_as<int32_t>()[0], 6);
  const Tensor transposed(s.storage, 0, DType::I32, {4, 3}, {1, 4});
  const Tensor t = transposed.clone();  // [[0, 4, 8], [1, 5, 9], ...]
  const std::vector<int32_t> want = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
  EXPECT_EQ(std::vector<int32_t>(t.data_as<int32_t>(), t.data_as<int32_t>() + 12), want);
  const Tensor empty = m.slice(0, 3, 3);  // m[3:3]
  EXPECT_EQ(empty.shape(), (Shape{0, 4}));
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.clone().numel(), 0);
}

TEST(TensorViews, SliceSelectOnRandomStridedBases) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 400; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const DType dtype = kOneOfEachSize[rng() % 4];
    const int64_t item = static_cast<int64_t>(hfport::dtype_size(dtype));
    // A base view: random shape, a permutation of its contiguous strides, some dims broadcast
    // (stride 0), some reversed (negative stride, offset moved to the last element).
    const size_t rank = 1 + rng() % 4;
    Shape shape(rank);
    for (auto& d : shape) d = 1 + static_cast<int64_t>(rng() % 5);
    Shape packed = hfport::contiguous_strides(shape);
    std::vector<size_t> order(rank);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    Shape permuted_shape(rank), strides(rank);
    for (size_t d = 0; d < rank; ++d) {
      permuted_shape[d] = shape[order[d]];
      strides[d] = packed[order[d]];
    }
    int64_t offset = 3;  // elements before the view's first one
    for (size_t d = 0; d < rank; ++d) {
      const int kind = static_cast<int>(rng() % 5);
      if (kind == 0) strides[d] = 0;
      if (kind == 1) {
        offset += (permuted_shape[d] - 1) * strides[d];
        strides[d] = -strides[d];
      }
    }
    const int64_t storage_elements = offset + count(shape) + 3;
    RandomStorage s(static_cast<size_t>(storage_elements * item), rng);
    Tensor t(s.storage, static_cast<size_t>(offset * item), dtype, permuted_shape, strides);
    Reference r = strided_reference(offset, permuted_shape, strides);
    expect_matches(t, r, s.base);

    for (int step = 0; step < 3 && t.ndim() > 0; ++step) {
      const int64_t dim = static_cast<int64_t>(rng() % t.ndim());
      const int64_t size = t.shape()[dim];
      const bool negative_dim = rng() % 2 == 0;
      const int64_t dim_arg = negative_dim ? dim - t.ndim() : dim;
      if (rng() % 3 != 0) {
        const int64_t start = static_cast<int64_t>(rng() % (size + 1));
        const int64_t stop = start + static_cast<int64_t>(rng() % (size - start + 1));
        const int64_t stride = 1 + static_cast<int64_t>(rng() % 3);
        t = t.slice(dim_arg, start, stop, stride);
        r = ref_slice(r, dim, start, stop, stride);
      } else {
        if (size == 0) continue;
        const int64_t i = static_cast<int64_t>(rng() % size);
        const bool from_end = rng() % 2 == 0;
        t = t.select(dim_arg, from_end ? i - size : i);
        r = ref_select(r, dim, i);
      }
      expect_matches(t, r, s.base);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(TensorViews, ViewReshapesContiguousTensors) {
  std::mt19937 rng(5);
  for (DType dtype : kOneOfEachSize) {
    const int64_t item = static_cast<int64_t>(hfport::dtype_size(dtype));
    RandomStorage s(static_cast<size_t>(64 * item), rng);
    const Tensor t(s.storage, static_cast<size_t>(4 * item), dtype, {2, 3, 4}, {12, 4, 1});
    for (const Shape& shape : {Shape{24}, Shape{4, 6}, Shape{1, 24, 1}, Shape{2, 2, 2, 3}}) {
      const Tensor v = t.view(shape);
      expect_matches(v, strided_reference(4, shape, hfport::contiguous_strides(shape)), s.base);
      EXPECT_EQ(v.storage(), t.storage());
    }
    // A contiguous slice (whole rows) can be viewed too; its size-1 dims' strides do not matter.
    const Tensor rows = t.slice(0, 1, 2);
    expect_matches(rows.view({12}), strided_reference(16, {12}, {1}), s.base);
    const Tensor odd(s.storage, 0, dtype, {1, 6}, {99, 1});
    EXPECT_TRUE(odd.is_contiguous());
    expect_matches(odd.view({2, 3}), strided_reference(0, {2, 3}, {3, 1}), s.base);
  }
}

TEST(TensorViews, ViewRefusals) {
  const Tensor t = Tensor::zeros(DType::F32, {2, 3});
  EXPECT_TRUE(throws_exactly<hfport::SliceError>([&] { t.view({5}); }, {"[2, 3]", "[5]"}));
  const Tensor transposed(t.storage(), 0, DType::F32, {3, 2}, {1, 3});
  EXPECT_FALSE(transposed.is_contiguous());
  EXPECT_TRUE(throws_exactly<hfport::SliceError>([&] { transposed.view({6}); }, {"contiguous"}));
  EXPECT_TRUE(throws_exactly<hfport::SliceError>([&] { t.slice(1, 0, 3, 2).view({4}); }));
}

TEST(TensorViews, ViewDType) {
  const Tensor t = Tensor::zeros(DType::BF16, {2, 2});
  const Tensor u = t.view_dtype(DType::U16);
  EXPECT_EQ(u.dtype(), DType::U16);
  EXPECT_EQ(u.data(), t.data());
  EXPECT_EQ(u.shape(), t.shape());
  EXPECT_EQ(t.view_dtype(DType::F16).dtype(), DType::F16);
  EXPECT_TRUE(throws_exactly<hfport::DTypeConversionError>([&] { t.view_dtype(DType::F32); },
                                                           {"BF16", "F32", "sizes differ"}));
  EXPECT_TRUE(throws_exactly<hfport::DTypeConversionError>([&] { t.view_dtype(DType::U8); }));
}

TEST(TensorViews, OutOfRangeArgumentsAreSliceErrors) {
  const Tensor t = Tensor::zeros(DType::F32, {4, 5});
  auto slice_error = [](auto fn, std::initializer_list<std::string> needles) {
    return throws_exactly<hfport::SliceError>(fn, needles);
  };
  EXPECT_TRUE(slice_error([&] { t.slice(2, 0, 1); }, {"dimension 2", "[4, 5]"}));
  EXPECT_TRUE(slice_error([&] { t.slice(-3, 0, 1); }, {"dimension -3"}));
  EXPECT_TRUE(slice_error([&] { t.select(2, 0); }, {"dimension 2"}));
  EXPECT_TRUE(slice_error([&] { t.slice(0, 0, 5); }, {"[0:5]", "size 4"}));
  EXPECT_TRUE(slice_error([&] { t.slice(0, -1, 2); }, {"[-1:2]"}));
  EXPECT_TRUE(slice_error([&] { t.slice(0, 3, 2); }, {"[3:2]"}));
  EXPECT_TRUE(slice_error([&] { t.slice(0, 0, 4, 0); }, {"step", "0"}));
  EXPECT_TRUE(slice_error([&] { t.slice(0, 0, 4, -1); }, {"step", "-1"}));
  EXPECT_TRUE(slice_error([&] { t.select(1, 5); }, {"index 5", "size 5"}));
  EXPECT_TRUE(slice_error([&] { t.select(1, -6); }, {"index -6"}));
  EXPECT_NO_THROW(t.select(1, -5));
  EXPECT_NO_THROW(t.slice(-1, 5, 5));
  const Tensor scalar = t.select(0, 0).select(0, 0);
  EXPECT_TRUE(slice_error([&] { scalar.select(0, 0); }, {"[]"}));
}

// Transposed views larger than copy_strided's 16 x 16 tiles (partial tiles at both edges), of
// every element size, one reversed: each element lands where the index arithmetic says.
TEST(TensorCopy, TransposedViewsAcrossTiles) {
  std::mt19937 rng(7);
  for (DType dtype : kOneOfEachSize) {
    SCOPED_TRACE(std::string(hfport::dtype_name(dtype)));
    const int64_t item = static_cast<int64_t>(hfport::dtype_size(dtype));
    const int64_t batch = 2, rows = 70, cols = 45;  // the base is [batch, cols, rows]
    RandomStorage s(static_cast<size_t>(batch * cols * rows * item), rng);
    for (const bool reversed : {false, true}) {
      // view[b][r][c] = base[b][c][r], or base[b][cols - 1 - c][r] when reversed.
      const int64_t first = reversed ? (cols - 1) * rows : 0;
      const Tensor view(s.storage, static_cast<size_t>(first * item), dtype, {batch, rows, cols},
                        {cols * rows, 1, reversed ? -rows : rows});
      Reference r{view.shape(), {}};
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t row = 0; row < rows; ++row) {
          for (int64_t c = 0; c < cols; ++c) {
            r.source.push_back(b * cols * rows + (reversed ? cols - 1 - c : c) * rows + row);
          }
        }
      }
      expect_matches(view, r, s.base);
    }
  }
}

TEST(TensorCopy, CopyStridedRefusesMismatches) {
  const Tensor src = Tensor::zeros(DType::F32, {2, 3});
  EXPECT_TRUE(throws_exactly<hfport::SliceError>(
      [&] { hfport::copy_strided(src, Tensor::zeros(DType::F32, {3, 2})); }, {"shape"}));
  EXPECT_TRUE(throws_exactly<hfport::SliceError>(
      [&] { hfport::copy_strided(src, Tensor::zeros(DType::I32, {2, 3})); }, {"dtype"}));
  const Tensor big = Tensor::zeros(DType::F32, {3, 2});
  const Tensor strided_dst(big.storage(), 0, DType::F32, {2, 3}, {1, 2});
  EXPECT_TRUE(throws_exactly<hfport::SliceError>([&] { hfport::copy_strided(src, strided_dst); },
                                                 {"contiguous"}));
}

TEST(TensorCopy, HostOperationsRefuseDeviceTensors) {
  std::vector<float> host(4);
  auto device_storage = std::make_shared<hfport::ExternalStorage>(
      reinterpret_cast<std::byte*>(host.data()), sizeof(float) * 4,
      hfport::Device{hfport::DeviceType::CUDA, 0}, nullptr);
  const Tensor on_gpu(device_storage, 0, DType::F32, {2, 2}, {1, 2});
  EXPECT_EQ(on_gpu.device().type, hfport::DeviceType::CUDA);
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { on_gpu.clone(); }, {"CUDA"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::copy_strided(on_gpu, Tensor::empty(DType::F32, {2, 2})); }));
}

TEST(TensorBasics, ShapeHelpers) {
  EXPECT_EQ(hfport::shape_to_string({4096, 1024}), "[4096, 1024]");
  EXPECT_EQ(hfport::shape_to_string({}), "[]");
  EXPECT_EQ(hfport::shape_to_string({0}), "[0]");
  EXPECT_EQ(hfport::contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(hfport::contiguous_strides({}), (Shape{}));
  EXPECT_EQ(hfport::contiguous_strides({2, 0, 3}), (Shape{3, 3, 1}));  // as torch.empty(2, 0, 3)
  EXPECT_EQ(hfport::contiguous_strides({5}), (Shape{1}));
  EXPECT_EQ(hfport::shape_numel({}), 1);
  EXPECT_EQ(hfport::shape_numel({3, 0, 7}), 0);
  EXPECT_EQ(hfport::shape_numel({3, 5, 7}), 105);
  // A header may validly declare a zero dim beside dims whose product alone would overflow.
  EXPECT_EQ(hfport::shape_numel({int64_t{1} << 62, int64_t{1} << 62, 0}), 0);
  EXPECT_EQ(hfport::shape_numel({3, int64_t{1} << 62, 0, 5}), 0);
}

TEST(TensorBasics, EmptyAndZeros) {
  const Tensor z = Tensor::zeros(DType::F64, {3, 5});
  EXPECT_TRUE(z.defined());
  EXPECT_EQ(z.nbytes(), 120u);
  EXPECT_EQ(z.strides(), (Shape{5, 1}));
  EXPECT_EQ(z.device().type, hfport::DeviceType::CPU);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(z.data_as<double>()[i], 0.0);
  const Tensor e = Tensor::empty(DType::BF16, {7});
  EXPECT_EQ(e.nbytes(), 14u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(e.data()) % 64, 0u);  // HostStorage is 64-byte aligned
  // Large enough for the mmap path: still zeroed, still aligned.
  const Tensor big = Tensor::zeros(DType::U8, {5 << 20});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % 64, 0u);
  EXPECT_TRUE(std::all_of(big.data(), big.data() + big.nbytes(),
                          [](std::byte b) { return b == std::byte{0}; }));
  const Tensor none;
  EXPECT_FALSE(none.defined());
  const Tensor scalar = Tensor::zeros(DType::I32, {});
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_TRUE(scalar.is_contiguous());
}

}  // namespace

TEST(TensorViews, UndefinedTensorRefusesDataAccess) {
  const hfport::Tensor undefined;
  EXPECT_FALSE(undefined.defined());
  EXPECT_THROW(undefined.data(), hfport::Error);
  EXPECT_THROW(undefined.clone(), hfport::Error);
}
