// Sets HFPORT_NUM_THREADS for one scope (parallel_for reads it on every call).
#pragma once

#include <stdlib.h>

#include <optional>
#include <string>

namespace hfport_test {

class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) {
    if (const char* old = std::getenv("HFPORT_NUM_THREADS")) old_ = old;
    ::setenv("HFPORT_NUM_THREADS", std::to_string(threads).c_str(), 1);
  }
  ~ScopedThreads() {
    if (old_) {
      ::setenv("HFPORT_NUM_THREADS", old_->c_str(), 1);
    } else {
      ::unsetenv("HFPORT_NUM_THREADS");
    }
  }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  std::optional<std::string> old_;
};

}  // namespace hfport_test
