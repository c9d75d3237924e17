// The process's one CPU thread pool and the fork-join loop every CPU op runs on.
//
// Workers are started once, on first use, and sleep on a condition variable between calls (no
// spinning after work), so a call costs a wake-up (a few microseconds) instead of creating and
// joining threads (about 10-50 microseconds a thread). The pool grows when HFPORT_NUM_THREADS asks
// for more threads than it has; it never shrinks. After fork() the child starts a fresh pool on
// its first call (the parent's workers do not exist there).
//
// One loop runs on the pool at a time. A parallel_for called from inside a chunk, or while another
// thread's loop holds the pool, runs on its calling thread alone: never a deadlock, never
// oversubscription.
#pragma once

#include <cstdint>
#include <functional>

namespace hfport {

// Threads to use: HFPORT_NUM_THREADS when set to a positive integer, else the hardware's count.
int default_thread_count();

// Calls fn(begin, end) over [0, n) in chunks of at least `grain` items, on up to
// default_thread_count() threads (the calling thread is one of them). The chunks are the same
// whichever thread runs them: thread count t splits [0, n) into t equal ranges. An exception
// thrown by any chunk is rethrown here after every chunk has finished.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace hfport
