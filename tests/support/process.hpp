// child_process: runs another program for a test (posix_spawn), reads its stdout line by
// line, writes to its stdin, signals it, waits for it, and always reaps it on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace test_support {

// How a child ended: exited with a code, or was killed by a signal.
struct exit_status {
    bool exited = false;  // true: `code` is the exit code; false: `signal` killed it
    int code = 0;
    int signal = 0;
    bool ok() const { return exited && code == 0; }
};

class child_process {
  public:
    // argv[0] is the program path (not searched in PATH). `env` entries ("KEY=VALUE") are
    // added to (and override) this process's environment. stdout is a pipe read by a
    // background thread; stdin is a pipe (see write_line); stderr is inherited.
    explicit child_process(std::vector<std::string> argv, std::vector<std::string> env = {});
    ~child_process();  // SIGTERM, up to 5 s grace, then SIGKILL; always reaps
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return pid_; }

    // The first line the child wrote on stdout (without '\n'); waits for it. Throws
    // std::runtime_error if the child closes stdout or the timeout passes first.
    std::string first_line(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // The next stdout line after the first one (the first is only kept for first_line);
    // nullopt on timeout or end of output.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Writes `line` plus '\n' to the child's stdin. Throws if the pipe is closed.
    void write_line(std::string_view line);
    void close_stdin();

    void send_signal(int sig);
    // Waits for the child to end; nullopt if it is still running after `timeout`.
    std::optional<exit_status> wait(std::chrono::milliseconds timeout);
    bool running();
    // SIGTERM, waits `grace`, then SIGKILL; returns how it ended.
    exit_status terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));

  private:
    void read_stdout();

    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    int stdout_fd_ = -1;
    std::optional<exit_status> status_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<std::string> first_;
    std::deque<std::string> lines_;  // later lines not read yet, bounded (oldest dropped)
    bool eof_ = false;
    std::thread reader_;
};

}  // namespace test_support
