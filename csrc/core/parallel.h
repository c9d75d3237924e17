// A minimal fork-join parallel loop. hfport owns no global thread pool: each call starts its
// workers and joins them before returning, so only work large enough to amortise thread start-up
// (about 10-50 microseconds a thread) should come here.
#pragma once

#include <cstdint>
#include <functional>

namespace hfport {

// Threads to use: HFPORT_NUM_THREADS when set to a positive integer, else the hardware's count.
int default_thread_count();

// Calls fn(begin, end) over [0, n) in chunks of at least `grain` items, on up to
// default_thread_count() threads (the calling thread is one of them). An exception thrown by any
// chunk is rethrown here after every thread has joined.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace hfport
