// A pool for the kernels' big buffers (saved activations, gradients), so they are reused instead of returned
// to the OS. glibc serves large allocations with mmap/munmap, so a training loop that allocates the same tens
// of megabytes every step page-faults on every 4 KiB of them every time; for a (16, 200, 64) layer-norm LSTM the
// faults cost more than the forward pass itself (benchmarks/speed.py). Buffers are matched by exact size, which
// is what a training loop asks for; the pool keeps at most 1 GiB and frees the rest normally.
#pragma once
#include <ATen/ATen.h>

#include <cstdlib>
#include <map>
#include <mutex>

namespace rnnkit {

class Workspace {
 public:
  static Workspace& get() {
    static Workspace* pool = new Workspace();  // never destroyed: tensors may outlive static destruction
    return *pool;
  }

  at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    int64_t numel = 1;
    for (auto s : sizes) numel *= s;
    const size_t bytes = ((numel * options.dtype().itemsize() + 4095) / 4096) * 4096;
    if (bytes < kMinBytes) return at::empty(sizes, options);
    void* ptr = take(bytes);
    if (ptr == nullptr) ptr = std::aligned_alloc(64, bytes);
    TORCH_CHECK(ptr != nullptr, "rnnkit: out of memory allocating ", bytes, " bytes");
    return at::from_blob(ptr, sizes, [this, bytes](void* p) { give(p, bytes); }, options);
  }

 private:
  static constexpr size_t kMinBytes = 256 * 1024;
  static constexpr size_t kMaxCached = size_t(1) << 30;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end()) return nullptr;
    void* ptr = it->second;
    free_.erase(it);
    cached_ -= bytes;
    return ptr;
  }

  void give(void* ptr, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + bytes > kMaxCached) {
      std::free(ptr);
      return;
    }
    free_.emplace(bytes, ptr);
    cached_ += bytes;
  }
};

inline at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return Workspace::get().empty(sizes, options);
}

}  // namespace rnnkit
