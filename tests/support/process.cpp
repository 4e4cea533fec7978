// child_process: posix_spawn with pipes for stdin/stdout, a reader thread that keeps the
// child's stdout drained (a full pipe would block the child), and reaping with timeouts.
#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace test_support {
namespace {

constexpr std::size_t max_kept_lines = 10000;

std::runtime_error sys_error(const std::string& what, int err) {
    return std::runtime_error(what + ": " + std::strerror(err));
}

// Our environment with `extra` ("KEY=VALUE") added or overriding.
std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        bool overridden = false;
        for (const auto& x : extra) overridden = overridden || key_of(x) == key_of(kv);
        if (!overridden) env.push_back(std::move(kv));
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

exit_status decode(int status) {
    exit_status st;
    if (WIFEXITED(status)) {
        st.exited = true;
        st.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        st.signal = WTERMSIG(status);
    }
    return st;
}

}  // namespace

child_process::child_process(std::vector<std::string> argv, std::vector<std::string> env) {
    if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
    // Writing to a child that died must be an error, not the death of the test process.
    static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
    (void)sigpipe_ignored;
    int in[2], out[2];
    // O_CLOEXEC: children spawned concurrently by other threads must not inherit our ends.
    if (pipe2(in, O_CLOEXEC) != 0) throw sys_error("pipe2", errno);
    if (pipe2(out, O_CLOEXEC) != 0) {
        int err = errno;
        ::close(in[0]);
        ::close(in[1]);
        throw sys_error("pipe2", err);
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);

    auto env_strings = merged_environment(env);
    auto c_argv = c_strings(argv);
    auto c_env = c_strings(env_strings);
    int rc = posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
        ::close(in[1]);
        ::close(out[0]);
        throw sys_error("posix_spawn " + argv[0], rc);
    }
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];
    reader_ = std::thread([this] { read_stdout(); });
}

child_process::~child_process() {
    try {
        terminate();
    } catch (const std::exception&) {
        // Nothing more can be done from a destructor; the reader join below still ends
        // once the pipe closes.
    }
    close_stdin();
    // The child is gone, but a grandchild could still hold the pipe: closing our end
    // would race the reader, so only join (the reader sees EOF when all writers are gone).
    if (reader_.joinable()) reader_.join();
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

void child_process::read_stdout() {
    std::string partial;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::lock_guard lock(mutex_);
            std::string line = partial.substr(0, nl);
            partial.erase(0, nl + 1);
            if (!first_) {
                first_ = std::move(line);
            } else {
                if (lines_.size() == max_kept_lines) lines_.pop_front();
                lines_.push_back(std::move(line));
            }
            cv_.notify_all();
        }
    }
    std::lock_guard lock(mutex_);
    eof_ = true;
    cv_.notify_all();
}

std::string child_process::first_line(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return first_ || eof_; }))
        throw std::runtime_error("child_process: no first line on stdout in time");
    if (!first_) throw std::runtime_error("child_process: stdout closed before a first line");
    return *first_;
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !lines_.empty() || eof_; })) return {};
    if (lines_.empty()) return {};
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
}

void child_process::write_line(std::string_view line) {
    if (stdin_fd_ < 0) throw std::runtime_error("child_process: stdin is closed");
    std::string data(line);
    data += '\n';
    std::size_t done = 0;
    while (done < data.size()) {
        // A dead child gives EPIPE here, not SIGPIPE: the constructor ignores SIGPIPE.
        ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw sys_error("child_process: write to stdin", errno);
        done += static_cast<std::size_t>(n);
    }
}

void child_process::close_stdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
}

void child_process::send_signal(int sig) {
    if (!status_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<exit_status> child_process::wait(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = decode(status);
            return status_;
        }
        if (r < 0 && errno != EINTR) throw sys_error("waitpid", errno);
        if (std::chrono::steady_clock::now() >= deadline) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

bool child_process::running() {
    return !wait(std::chrono::milliseconds(0));
}

exit_status child_process::terminate(std::chrono::milliseconds grace) {
    if (status_) return *status_;
    send_signal(SIGTERM);
    if (auto st = wait(grace)) return *st;
    send_signal(SIGKILL);
    // SIGKILL cannot be ignored; the bound only guards against a kernel stall.
    if (auto st = wait(std::chrono::seconds(30))) return *st;
    throw std::runtime_error("child_process: child survived SIGKILL");
}

}  // namespace test_support
