// harness: what the hardening tests share. A raw-socket client that sends exact bytes (whole,
// in 1-byte writes, or vanishing halfway) and collects whatever comes back; a loose response
// parser that also checks that no header outside coroserve's own set was sent; the server
// started through a shell (stderr to a file, a lower RLIMIT_NOFILE, an unprivileged user);
// /proc sampling of RSS and descriptors; and a well-behaved client that runs beside a test.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "process.hpp"
#include "standin.hpp"

namespace hardening {

using namespace std::chrono_literals;

// The tests and the server are built with the same flags. Under ASan, freed memory sits in a
// quarantine (256 MB) and RSS says nothing about leaks or bounds: RSS checks are skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized_build = true;
#else
inline constexpr bool sanitized_build = false;
#endif
using std::chrono::milliseconds;

struct response {
    unsigned status = 0;
    std::string head;  // status line and headers, up to and without the blank line
    std::string body;
    bool closes = false;  // "Connection: close", or HTTP/1.0 without keep-alive
    std::optional<std::string> header(std::string_view name) const;
};

// What one exchange produced.
struct outcome {
    std::vector<response> responses;
    bool closed = false;           // the server closed (EOF or reset) before our deadline
    bool garbled = false;          // bytes that are not a well-framed response
    std::string foreign;           // first response header line that coroserve never sends, if any
    std::string describe() const;  // e.g. "400 + close", "200 x1000", "close, no answer"
};

// Parses back-to-back responses. `head_requests`: the i-th answer is to a HEAD (no body).
outcome parse_responses(std::string_view bytes, const std::vector<bool>& head_requests = {});

// A TCP connection to 127.0.0.1:port with exact control of the bytes.
class raw_connection {
  public:
    explicit raw_connection(std::uint16_t port, milliseconds timeout = 5s);
    ~raw_connection();
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    int fd() const { return fd_; }
    // Sends everything, `chunk` bytes per write with `pause` between writes; false if the
    // server closed first (what it sent meanwhile is kept for read_all).
    bool send(std::string_view bytes, std::size_t chunk = 0, milliseconds pause = 0ms,
              milliseconds timeout = 10s);
    void shutdown_write();
    // Reads until the server closes or `timeout` passes; returns everything received.
    std::string read_all(milliseconds timeout);
    // Reads until `n` bytes arrived, the server closed, or `timeout`.
    std::string read_some(std::size_t n, milliseconds timeout);
    // True if the server closed within `timeout` (bytes meanwhile are kept for read_all).
    bool wait_closed(milliseconds timeout);
    bool closed() const { return closed_; }
    // Closes with a reset (SO_LINGER 0), as a client that vanishes.
    void reset();

  private:
    int fd_ = -1;
    bool closed_ = false;
    std::string pending_;
};

// Sends `bytes`, half-closes, and parses everything the server sends until it closes.
outcome exchange(std::uint16_t port, std::string_view bytes, std::size_t chunk = 0,
                 milliseconds timeout = 10s);
// One GET on a fresh connection; nullopt if nothing came back.
std::optional<response> get(std::uint16_t port, std::string_view target, milliseconds timeout = 5s);

// The benchmark seed on a fresh stand-in (stdin fault control), plus `extra` arguments.
std::unique_ptr<test_support::standin> make_standin(std::vector<std::string> extra = {});

struct server_options {
    std::vector<std::string> args;  // after the defaults; later flags win
    int nofile = 0;                 // RLIMIT_NOFILE for the server, 0 = inherited
    bool unprivileged = false;      // as uid/gid 65534 (only when we are root)
};

// The coroserve binary on 127.0.0.1 and an ephemeral port, its stderr going to a file.
class server {
  public:
    server(const std::string& mongodb_uri, server_options options = {});
    ~server();
    std::uint16_t port() const { return port_; }
    pid_t pid() const { return process_->pid(); }
    test_support::child_process& process() { return *process_; }
    bool running() { return process_->running(); }
    std::string stderr_text() const;
    static std::string executable();

  private:
    std::unique_ptr<test_support::child_process> process_;
    std::string stderr_path_;
    std::uint16_t port_ = 0;
};

// From /proc/<pid>: resident set size in KiB, open descriptors, and the real uid.
long rss_kib(pid_t pid);
int open_fds(pid_t pid);
int real_uid(pid_t pid);

std::string metrics_text(std::uint16_t port);
// The value of one sample (exact name with labels); 0 if absent.
double metric(std::string_view text, std::string_view sample);

// A polite client beside a test: keep-alive GET `target` in a loop on its own thread,
// reconnecting when the server closes; counts answers by kind.
class steady_client {
  public:
    steady_client(std::uint16_t port, std::string target = "/json", milliseconds pause = 5ms);
    ~steady_client();  // stop()
    void stop();
    std::uint64_t ok() const { return ok_; }
    std::uint64_t not_ok() const { return not_ok_; }      // an answer other than 200
    std::uint64_t failures() const { return failures_; }  // no answer in 5 s, or a refusal
    std::string last_problem() const;

  private:
    void run();
    std::uint16_t port_;
    std::string target_;
    milliseconds pause_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> ok_{0}, not_ok_{0}, failures_{0};
    mutable std::mutex mutex_;
    std::string last_problem_;
    std::thread thread_;
};

// "GET target HTTP/1.1" with Host, optional extra lines ("Name: value").
std::string request(std::string_view target, std::vector<std::string> extra = {},
                    std::string_view method = "GET");

// Waits up to `timeout` for `pred` to hold, polling every 20 ms.
template <class Pred>
bool eventually(Pred pred, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

}  // namespace hardening
