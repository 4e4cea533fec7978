// At most one log line a second from one place: failures (a database that refuses us, a
// driver that warns on every connection attempt) can come thousands of times a second.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace coroserve {

class log_limiter {
  public:
    // How many lines were suppressed since the last one let through, or nullopt: suppress
    // this one too.
    std::optional<unsigned> allow() {
        using namespace std::chrono;
        auto now = duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
        auto next = next_ms_.load(std::memory_order_relaxed);
        if (now < next || !next_ms_.compare_exchange_strong(next, now + 1000)) {
            suppressed_.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
        return suppressed_.exchange(0);
    }

  private:
    std::atomic<std::int64_t> next_ms_{0};
    std::atomic<unsigned> suppressed_{0};
};

}  // namespace coroserve
