// Counters for GET /metrics in the Prometheus text format: requests by route and status, a
// latency histogram, connections, the blocking pool, and database failures. Lock-free: every
// I/O thread updates them with relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "mongo.hpp"
#include "router.hpp"

namespace coroserve {

class blocking_pool;

class metrics {
  public:
    static constexpr std::array<unsigned, 13> statuses = {200, 400, 404, 405, 408, 413, 431,
                                                          499, 500, 502, 503, 504, 0};  // 0: other
    static constexpr std::array<double, 14> buckets = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};  // seconds

    void observe(route r, unsigned status, std::chrono::steady_clock::duration latency);

    std::atomic<std::int64_t> open_connections{0};
    std::atomic<std::uint64_t> accepted{0}, refused_connections{0}, accept_errors{0};
    std::atomic<std::uint64_t> header_timeouts{0}, idle_timeouts{0}, write_timeouts{0};
    std::atomic<std::uint64_t> bad_requests{0}, headers_too_large{0}, bodies_too_large{0};
    std::atomic<std::uint64_t> db_unavailable{0}, db_timeouts{0}, db_errors{0};
    // Database connections that could not be set up, by cause: [0] authentication, [1] TLS.
    std::array<std::atomic<std::uint64_t>, 2> db_connect_failures{};
    // Every failed database call once, by kind (db_failure, mongo.hpp); error path only.
    std::array<std::atomic<std::uint64_t>, db_failure_names.size()> db_failures{};
    void count_db_failure(db_failure kind) {
        db_failures[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
    }

    std::string render(const blocking_pool& pool) const;

  private:
    using counter = std::atomic<std::uint64_t>;
    std::array<std::array<counter, statuses.size()>, route_count> requests_{};
    std::array<counter, buckets.size() + 1> latency_buckets_{};  // last: +Inf
    std::atomic<std::uint64_t> latency_sum_us_{0};
};

}  // namespace coroserve
