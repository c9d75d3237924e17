// The staged, overlapped upload. See cuda_upload.h for the pipeline and its guarantees.
#include "core/cuda_upload.h"

#include <algorithm>
#include <utility>

#include "core/cast.h"
#include "core/device.h"
#include "core/error.h"

#ifdef HFPORT_WITH_CUDA
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "core/cuda/convert.h"
#include "core/cuda_call.h"
#include "core/cuda_storage.h"
#include "core/parallel.h"
#endif

namespace hfport {

namespace {

constexpr int kMaxStagingBuffers = 64;
constexpr int64_t kMaxStagingBytes = int64_t{1} << 34;

std::string describe(const UploadRequest& r) {
  return "tensor '" + r.name + "' (" + std::string(dtype_name(r.source.dtype())) + " " +
         shape_to_string(r.source.shape()) + ")";
}

void check_requests(const std::vector<UploadRequest>& requests) {
  for (const UploadRequest& r : requests) {
    if (!r.source.defined()) {
      throw ArgumentError("upload_to_device: tensor '" + r.name + "' is undefined");
    }
    if (r.source.device().type != DeviceType::CPU) {
      throw DeviceError("upload_to_device: " + describe(r) + " is on " +
                        device_name(r.source.device()) + "; uploads read host tensors");
    }
    if (!device_cast_supported(r.source.dtype(), r.dtype)) {
      throw ArgumentError("upload_to_device: " + describe(r) + " cannot be converted to " +
                          std::string(dtype_name(r.dtype)) + " on the device (it converts "
                          "between F32, F16, BF16 and F64); cast it on the host first");
    }
  }
}

}  // namespace

void validate_upload_options(const UploadOptions& options) {
  if (options.staging_bytes < 1 || options.staging_bytes > kMaxStagingBytes) {
    throw ArgumentError("staging_bytes must be 1 to " + std::to_string(kMaxStagingBytes) +
                        " (16 GiB) bytes per pinned buffer, got " +
                        std::to_string(options.staging_bytes));
  }
  if (options.staging_buffers < 1 || options.staging_buffers > kMaxStagingBuffers) {
    throw ArgumentError("staging_buffers must be 1 to " + std::to_string(kMaxStagingBuffers) +
                        ", got " + std::to_string(options.staging_buffers));
  }
}

bool device_cast_supported(DType from, DType to) {
  if (from == to) return true;
#ifdef HFPORT_WITH_CUDA
  return cuda::convert_supports(from) && cuda::convert_supports(to);
#else
  return false;
#endif
}

UploadRequest upload_request(std::string name, const Tensor& source, DType dtype) {
  if (device_cast_supported(source.dtype(), dtype)) return {std::move(name), source, dtype};
  return {std::move(name), cast(source, dtype), dtype};
}

#ifdef HFPORT_WITH_CUDA

namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Where each source lies in the byte stream, and how the stream is cut into chunks.
struct StreamLayout {
  std::vector<size_t> begin, end;  // per source: [begin, end) in the stream; begin 256-aligned
  size_t stream_bytes = 0;         // the end of the last source
  uint64_t payload = 0;            // the sources' bytes, without the alignment gaps
  size_t chunk_bytes = 0;          // a multiple of 256
  size_t chunks = 0;
  int buffers = 0;                 // staging buffers in use: at most one per chunk

  StreamLayout(const std::vector<Tensor>& sources, const UploadOptions& options) {
    for (const Tensor& t : sources) {
      begin.push_back(align_up(stream_bytes));
      end.push_back(begin.back() + t.nbytes());
      stream_bytes = end.back();
      payload += t.nbytes();
    }
    if (stream_bytes == 0) return;
    const size_t n = static_cast<size_t>(options.staging_buffers);
    // A small load gets smaller buffers rather than pinning memory it never fills.
    chunk_bytes = std::min(align_up(static_cast<size_t>(options.staging_bytes)),
                           align_up((stream_bytes + n - 1) / n));
    chunks = (stream_bytes + chunk_bytes - 1) / chunk_bytes;
    buffers = static_cast<int>(std::min(n, chunks));
  }

  // Calls fn(source index, byte offset in the source, bytes, offset in the chunk) for each piece
  // of a source in chunk c, in stream order.
  template <typename Fn>
  void for_each_piece(size_t c, Fn&& fn) const {
    const size_t lo = c * chunk_bytes;
    const size_t hi = std::min(lo + chunk_bytes, stream_bytes);
    // `end` never decreases (each source starts at or after the previous one's end).
    size_t i = std::upper_bound(end.begin(), end.end(), lo) - end.begin();
    for (; i < begin.size() && begin[i] < hi; ++i) {
      const size_t from = std::max(begin[i], lo), to = std::min(end[i], hi);
      if (from < to) fn(i, from - begin[i], to - from, from - lo);
    }
  }
};

// One staging buffer: its pinned memory, its stream, the event that says its last copies out
// have finished, and its device scratch for pieces that are converted (null until needed).
struct StagingSlot {
  std::byte* pinned = nullptr;
  std::byte* scratch = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t copied = nullptr;
};

// Owns the slots and releases them on every path. Lives inside a DeviceScope of the upload's
// device, so its constructor and destructor run with that device current.
class StagingRing {
 public:
  explicit StagingRing(int count) : slots_(count) {
    try {
      for (StagingSlot& s : slots_) {
        HFPORT_CORE_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
        // Blocking sync: a thread waiting for its buffer sleeps, leaving the core to the
        // threads that are filling theirs.
        HFPORT_CORE_CUDA(cudaEventCreateWithFlags(
            &s.copied, cudaEventDisableTiming | cudaEventBlockingSync));
      }
    } catch (...) {
      release();
      throw;
    }
  }
  ~StagingRing() { release(); }
  StagingRing(const StagingRing&) = delete;
  StagingRing& operator=(const StagingRing&) = delete;

  StagingSlot& operator[](size_t b) { return slots_[b]; }

  // Makes hfport's work stream wait, on the GPU, for everything queued on every upload stream.
  void hand_over_to_work_stream() {
    for (StagingSlot& s : slots_) {
      cudaEvent_t done = nullptr;
      HFPORT_CORE_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
      cudaError_t status = cudaEventRecord(done, s.stream);
      if (status == cudaSuccess) status = cudaStreamWaitEvent(cudaStreamLegacy, done, 0);
      // The runtime keeps an event alive until the waits queued on it are satisfied.
      cudaEventDestroy(done);
      cuda_call::check(status, "cudaEventRecord + cudaStreamWaitEvent (upload -> work stream)");
    }
    handed_over_ = true;
  }

 private:
  // Errors have nowhere to go here: each call is made, and whatever it leaves is cleared.
  void release() noexcept {
    for (StagingSlot& s : slots_) {
      // After a failure, copies may still read pinned memory and write results: wait for all.
      if (!handed_over_ && s.stream) cudaStreamSynchronize(s.stream);
      if (s.copied) cudaEventSynchronize(s.copied);  // the last copy out of s.pinned
      if (s.pinned) cudaFreeHost(s.pinned);
      if (s.scratch) cudaFreeAsync(s.scratch, s.stream);  // after the stream's conversions
      if (s.copied) cudaEventDestroy(s.copied);
      if (s.stream) cudaStreamDestroy(s.stream);  // pending work still runs to its end
      s = StagingSlot{};
    }
    cudaGetLastError();
  }

  std::vector<StagingSlot> slots_;
  bool handed_over_ = false;
};

// The results, before any byte is copied: views into one allocation, or one allocation each.
std::vector<Tensor> allocate_results(const std::vector<UploadRequest>& requests,
                                     const Device& device, bool one_allocation) {
  std::vector<Tensor> results;
  results.reserve(requests.size());
  if (!one_allocation) {
    for (const UploadRequest& r : requests) {
      results.push_back(Tensor::empty(r.dtype, r.source.shape(), device));
    }
    return results;
  }
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const UploadRequest& r : requests) {
    offsets.push_back(align_up(total));
    total = offsets.back() + static_cast<size_t>(r.source.numel()) * dtype_size(r.dtype);
  }
  auto arena = std::make_shared<CudaStorage>(total, device.index);
  for (size_t i = 0; i < requests.size(); ++i) {
    const Shape& shape = requests[i].source.shape();
    results.emplace_back(arena, offsets[i], requests[i].dtype, shape, contiguous_strides(shape));
  }
  return results;
}

// The sources as contiguous host tensors; strided ones gathered, one tensor per thread.
std::vector<Tensor> contiguous_sources(const std::vector<UploadRequest>& requests) {
  std::vector<Tensor> sources;
  std::vector<size_t> strided;
  for (size_t i = 0; i < requests.size(); ++i) {
    sources.push_back(requests[i].source);
    if (!requests[i].source.is_contiguous()) strided.push_back(i);
  }
  parallel_for(static_cast<int64_t>(strided.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) sources[strided[k]] = sources[strided[k]].contiguous();
  });
  return sources;
}

class Uploader {
 public:
  Uploader(const std::vector<UploadRequest>& requests, const std::vector<Tensor>& sources,
           const std::vector<Tensor>& results, const StreamLayout& layout, StagingRing& ring,
           const Device& device, const UploadOptions& options)
      : requests_(requests), sources_(sources), results_(results), layout_(layout), ring_(ring),
        device_(device), options_(options), caller_(std::this_thread::get_id()) {}

  void run() {
    parallel_for(layout_.buffers, 1, [this](int64_t first, int64_t last) {
      try {
        run_buffers(static_cast<size_t>(first), static_cast<size_t>(last));
      } catch (...) {
        stop_.store(true);
        throw;
      }
    });
    if (options_.progress) options_.progress(layout_.payload, layout_.payload);
  }

 private:
  // One host thread's share: buffers [first, last), visited in turn, so a thread with several
  // buffers fills one while the copies out of the others run.
  void run_buffers(size_t first, size_t last) {
    cuda_call::DeviceScope scope(device_.index);  // the device is per thread
    const size_t n = static_cast<size_t>(layout_.buffers);
    for (size_t round = 0; round + first < layout_.chunks; round += n) {
      for (size_t b = first; b < last && round + b < layout_.chunks; ++b) {
        if (stop_.load()) return;
        stage_chunk(ring_[b], round + b);
      }
    }
  }

  void stage_chunk(StagingSlot& slot, size_t c) {
    if (slot.pinned == nullptr) {
      void* pinned = nullptr;
      HFPORT_CORE_CUDA(cudaHostAlloc(&pinned, layout_.chunk_bytes, cudaHostAllocPortable));
      slot.pinned = static_cast<std::byte*>(pinned);
    }
    HFPORT_CORE_CUDA(cudaEventSynchronize(slot.copied));  // a never-recorded event is complete
    uint64_t staged = 0;
    bool converts = false;
    layout_.for_each_piece(c, [&](size_t i, size_t offset, size_t bytes, size_t at) {
      std::memcpy(slot.pinned + at, sources_[i].data() + offset, bytes);
      staged += bytes;
      converts = converts || requests_[i].dtype != sources_[i].dtype();
    });
    if (converts && slot.scratch == nullptr) {
      void* scratch = nullptr;
      HFPORT_CORE_CUDA(cudaMallocAsync(&scratch, layout_.chunk_bytes, slot.stream));
      slot.scratch = static_cast<std::byte*>(scratch);
    }
    // Every copy first and the event right after them, so the buffer is free for refilling
    // without waiting for the conversions queued behind.
    layout_.for_each_piece(c, [&](size_t i, size_t offset, size_t bytes, size_t at) {
      std::byte* to = requests_[i].dtype == sources_[i].dtype()
                          ? results_[i].data() + offset
                          : slot.scratch + at;
      HFPORT_CORE_CUDA(cudaMemcpyAsync(to, slot.pinned + at, bytes, cudaMemcpyHostToDevice,
                                       slot.stream));
    });
    HFPORT_CORE_CUDA(cudaEventRecord(slot.copied, slot.stream));
    if (converts) {
      layout_.for_each_piece(c, [&](size_t i, size_t offset, size_t bytes, size_t at) {
        const DType from = sources_[i].dtype(), to = requests_[i].dtype;
        if (from == to) return;
        const size_t from_size = dtype_size(from);
        cuda::ConvertParams p;
        p.ndim = 1;
        p.sizes[0] = static_cast<int64_t>(bytes / from_size);
        p.src_strides[0] = 1;
        p.src_dtype = from;
        p.src = slot.scratch + at;
        p.dst_dtype = to;
        p.dst = results_[i].data() + offset / from_size * dtype_size(to);
        cuda::convert(p, slot.stream);
      });
    }
    const uint64_t total = staged_.fetch_add(staged) + staged;
    if (options_.progress && std::this_thread::get_id() == caller_) {
      options_.progress(total, layout_.payload);
    }
  }

  const std::vector<UploadRequest>& requests_;
  const std::vector<Tensor>& sources_;
  const std::vector<Tensor>& results_;
  const StreamLayout& layout_;
  StagingRing& ring_;
  const Device device_;
  const UploadOptions& options_;
  const std::thread::id caller_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> staged_{0};
};

std::vector<Tensor> upload_cuda(const std::vector<UploadRequest>& requests, const Device& device,
                                const UploadOptions& options) {
  cuda_call::DeviceScope scope(device.index);
  const std::vector<Tensor> sources = contiguous_sources(requests);
  const StreamLayout layout(sources, options);
  // Declared before the ring, so destroyed after it: after a failure the ring waits for the
  // streams before the results' memory goes back to the device.
  std::vector<Tensor> results = allocate_results(requests, device, options.one_allocation);
  if (layout.chunks == 0) return results;  // nothing but empty tensors
  StagingRing ring(layout.buffers);
  Uploader(requests, sources, results, layout, ring, device, options).run();
  ring.hand_over_to_work_stream();
  return results;
}

}  // namespace

#endif  // HFPORT_WITH_CUDA

std::vector<Tensor> upload_to_device(const std::vector<UploadRequest>& requests,
                                     const Device& device, const UploadOptions& options) {
  validate_upload_options(options);
  if (device.type != DeviceType::CUDA) {
    throw ArgumentError("upload_to_device: the target must be a CUDA device, got " +
                        device_name(device));
  }
  check_requests(requests);
  require_usable_device(device, "upload_to_device");
#ifdef HFPORT_WITH_CUDA
  return upload_cuda(requests, device, options);
#else
  throw DeviceError("upload_to_device: unreachable without CUDA");  // require_usable_device threw
#endif
}

}  // namespace hfport
