// Fuzzes parse_safetensors_header (core/safetensors_header.h) with the input as a whole file:
// 8-byte length, JSON header, data buffer.
//
// A bug is a crash, a sanitizer report (ASan, UBSan, LeakSanitizer), a hang past -timeout, or an
// exception that is not an hfport::Error: only those may leave the API for bad input, and any
// other one reaches std::terminate here, which libFuzzer reports as a crash.
//
// When the parser accepts an input, the promises the rest of hfport relies on are checked as well
// (a broken one aborts with a message): names sorted and unique, every [begin, end) inside the
// data buffer and exactly numel * item bytes long, the spans tiling the buffer from 0 with no gap
// or overlap. Then each tensor is viewed the way SafetensorsFile::view does it and copied out
// through the strided copy, and the copy is compared with the raw bytes. libFuzzer hands the
// input over in an allocation of exactly its size, so ASan sees a read one byte past the end.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors_header.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace {

[[noreturn]] void broken_promise(const std::string& tensor, const std::string& what) {
  std::fprintf(stderr, "parse_safetensors_header accepted the input, but tensor '%s' %s\n",
               tensor.c_str(), what.c_str());
  std::abort();
}

// numel * item in 128 bits, so the check itself cannot overflow whatever shape came back.
unsigned __int128 byte_size(const hfport::TensorInfo& t) {
  unsigned __int128 n = hfport::dtype_size(t.dtype);
  for (int64_t dim : t.shape) {
    if (dim < 0) broken_promise(t.name, "has a negative dimension");
    n *= static_cast<uint64_t>(dim);
    if (n == 0) return 0;
    if (n > (static_cast<unsigned __int128>(1) << 64)) broken_promise(t.name, "overflows 64 bits");
  }
  return n;
}

void check_accepted_header(const hfport::SafetensorsHeader& header, const std::byte* file,
                           size_t file_size) {
  if (header.header_size > file_size - 8) broken_promise("", "(header) ends beyond the file");
  const size_t data_offset = header.data_offset();
  const uint64_t data_size = file_size - data_offset;

  std::vector<const hfport::TensorInfo*> by_begin;
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const hfport::TensorInfo& t = header.tensors[i];
    if (i > 0 && !(header.tensors[i - 1].name < t.name)) {
      broken_promise(t.name, "is out of name order or repeated");
    }
    if (t.begin > t.end || t.end > data_size) broken_promise(t.name, "spans bytes past the data");
    if (byte_size(t) != t.end - t.begin) broken_promise(t.name, "has a span != numel * item");
    by_begin.push_back(&t);
  }
  std::sort(by_begin.begin(), by_begin.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const hfport::TensorInfo* t : by_begin) {
    if (t->begin != expected) broken_promise(t->name, "leaves a gap or overlaps its neighbour");
    expected = t->end;
  }
  if (expected != data_size) broken_promise("", "(the last) does not end the data buffer");

  // Borrowed bytes: nothing to release, the fuzzer owns them.
  auto storage = std::make_shared<hfport::ExternalStorage>(const_cast<std::byte*>(file), file_size,
                                                           hfport::Device{}, nullptr);
  for (const hfport::TensorInfo& t : header.tensors) {
    const hfport::Tensor view(storage, data_offset + t.begin, t.dtype, t.shape,
                              hfport::contiguous_strides(t.shape));
    if (view.nbytes() != t.end - t.begin) broken_promise(t.name, "views as a different size");
    const hfport::Tensor copy = view.clone();
    if (std::memcmp(copy.data(), file + data_offset + t.begin, t.end - t.begin) != 0) {
      broken_promise(t.name, "copies out different bytes than the file holds");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* file = reinterpret_cast<const std::byte*>(data);
  hfport::SafetensorsHeader header;
  try {
    header = hfport::parse_safetensors_header(file, size, "fuzz");
  } catch (const hfport::Error&) {
    return 0;
  }
  check_accepted_header(header, file, size);
  return 0;
}
