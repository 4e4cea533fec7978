// faults: what a test asked the stand-in to do wrong (latency, refused or dropped
// connections, failing commands). Read on every command, so the common path is atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace standin {

class fault_state {
  public:
    struct failure {
        int32_t code;
        std::string message;
    };

    int latency_ms() const { return latency_ms_.load(std::memory_order_relaxed); }
    void set_latency_ms(int ms) { latency_ms_.store(ms < 0 ? 0 : ms); }
    bool refusing() const { return refusing_.load(std::memory_order_relaxed); }
    void set_refusing(bool on) { refusing_.store(on); }

    void fail_next(int n, int32_t code, std::string message) {
        std::lock_guard lock(mutex_);
        fail_code_ = code;
        fail_message_ = std::move(message);
        fail_remaining_.store(n < 0 ? 0 : n);
    }
    // Consumes one injected failure if any is pending.
    std::optional<failure> take_failure() {
        if (fail_remaining_.load(std::memory_order_relaxed) == 0) return std::nullopt;
        std::lock_guard lock(mutex_);
        int left = fail_remaining_.load();
        if (left == 0) return std::nullopt;
        fail_remaining_.store(left - 1);
        return failure{fail_code_, fail_message_};
    }

    struct snapshot {
        int latency_ms;
        bool refusing;
        int fail_remaining;
        int32_t fail_code;
        std::string fail_message;
    };
    snapshot state() const {
        std::lock_guard lock(mutex_);
        return {latency_ms(), refusing(), fail_remaining_.load(), fail_code_, fail_message_};
    }

  private:
    std::atomic<int> latency_ms_{0};
    std::atomic<bool> refusing_{false};
    std::atomic<int> fail_remaining_{0};
    mutable std::mutex mutex_;  // guards the code and message, and the decrement
    int32_t fail_code_ = 0;
    std::string fail_message_;
};

}  // namespace standin
