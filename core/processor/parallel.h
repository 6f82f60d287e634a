// Internal: runs work items on a few std::threads. Each item writes only its own output, so results do not
// depend on the thread count. The first exception (lowest item index) is rethrown after all threads finish.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace vlm::processor_detail {

inline int available_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Calls body(i) for i in [0, count), on up to `threads` threads (<= 0 means the available CPUs).
template <class Body>
void parallel_for(std::size_t count, int threads, Body&& body) {
  if (threads <= 0) threads = available_threads();
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(threads), count);
  if (workers <= 1) {
    for (std::size_t i = 0; i < count; ++i) body(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(count);
  auto run = [&]() {
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        body(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Splits [0, total) into about `threads` contiguous ranges and calls body(begin, end) for each.
template <class Body>
void parallel_ranges(std::size_t total, int threads, Body&& body) {
  if (threads <= 0) threads = available_threads();
  const std::size_t parts = std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(threads), total));
  parallel_for(parts, static_cast<int>(parts), [&](std::size_t p) {
    body(total * p / parts, total * (p + 1) / parts);
  });
}

}  // namespace vlm::processor_detail
