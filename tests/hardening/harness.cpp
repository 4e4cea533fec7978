// The hardening tests' shared pieces: raw sockets, response parsing, the server process, /proc.
#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace hardening {
namespace {

using clock_type = std::chrono::steady_clock;

std::string lower(std::string_view s) {
    std::string r{s};
    for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

int remaining_ms(clock_type::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now()).count();
    return static_cast<int>(std::max<long long>(left, 0));
}

}  // namespace

std::optional<std::string> response::header(std::string_view name) const {
    std::string_view h = head;
    std::string want = lower(name) + ":";
    for (auto pos = h.find("\r\n"); pos != std::string_view::npos;) {
        auto next = h.find("\r\n", pos + 2);
        auto line = h.substr(pos + 2, next == std::string_view::npos ? next : next - pos - 2);
        if (lower(line.substr(0, want.size())) == want) {
            auto v = line.substr(want.size());
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            return std::string{v};
        }
        pos = next;
    }
    return std::nullopt;
}

std::string outcome::describe() const {
    // Runs of one status ("200 x1000", "404, 200"), or totals by status when they alternate.
    std::vector<std::pair<unsigned, std::size_t>> runs;
    for (auto& r : responses) {
        if (runs.empty() || runs.back().first != r.status)
            runs.emplace_back(r.status, 1);
        else
            ++runs.back().second;
    }
    if (runs.size() > 4) {
        std::vector<std::pair<unsigned, std::size_t>> totals;
        for (auto& [status, n] : runs) {
            auto it = std::find_if(totals.begin(), totals.end(),
                                   [status = status](auto& t) { return t.first == status; });
            if (it == totals.end())
                totals.emplace_back(status, n);
            else
                it->second += n;
        }
        runs = std::move(totals);
    }
    std::string out;
    for (auto& [status, n] : runs) {
        if (!out.empty()) out += ", ";
        out += std::to_string(status);
        if (n > 1) out += " x" + std::to_string(n);
    }
    if (responses.empty())
        out = closed ? "closed, no answer" : "no answer, left open";
    else if (responses.back().closes)
        out += " + Connection: close";
    if (garbled) out += " (garbled bytes)";
    if (!foreign.empty()) out += " (foreign header: " + foreign + ")";
    return out;
}

outcome parse_responses(std::string_view bytes, const std::vector<bool>& head_requests) {
    static constexpr std::string_view known[] = {
        "server", "date", "content-type", "content-length", "allow", "retry-after", "connection"};
    outcome o;
    while (!bytes.empty()) {
        auto end = bytes.find("\r\n\r\n");
        if (bytes.substr(0, 7) != "HTTP/1." || end == std::string_view::npos || bytes.size() < 12) {
            o.garbled = true;
            break;
        }
        response r;
        r.head = std::string{bytes.substr(0, end)};
        std::from_chars(r.head.data() + 9, r.head.data() + 12, r.status);
        bool v10 = r.head[7] == '0';
        std::size_t length = 0;
        std::string_view h = r.head;
        for (auto pos = h.find("\r\n"); pos != std::string_view::npos;) {
            auto next = h.find("\r\n", pos + 2);
            auto line = h.substr(pos + 2, next == std::string_view::npos ? next : next - pos - 2);
            auto colon = line.find(':');
            auto name = lower(line.substr(0, colon));
            bool bad_bytes = std::any_of(line.begin(), line.end(), [](char c) {
                return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
            });
            if ((colon == std::string_view::npos || bad_bytes ||
                 std::find(std::begin(known), std::end(known), name) == std::end(known)) &&
                o.foreign.empty())
                o.foreign = std::string{line.substr(0, 80)};
            if (name == "content-length")
                std::from_chars(
                    line.data() + colon + 1 + (line.size() > colon + 1 && line[colon + 1] == ' '),
                    line.data() + line.size(), length);
            pos = next;
        }
        auto conn = r.header("Connection");
        r.closes = conn ? lower(*conn) == "close" : v10;
        bytes.remove_prefix(end + 4);
        bool head_only =
            o.responses.size() < head_requests.size() && head_requests[o.responses.size()];
        if (!head_only) {
            if (bytes.size() < length) {
                o.garbled = true;
                r.body = std::string{bytes};
                o.responses.push_back(std::move(r));
                break;
            }
            r.body = std::string{bytes.substr(0, length)};
            bytes.remove_prefix(length);
        }
        o.responses.push_back(std::move(r));
    }
    return o;
}

raw_connection::raw_connection(std::uint16_t port, milliseconds timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        ::close(fd_);
        throw std::runtime_error(std::string{"connect: "} + std::strerror(err));
    }
    pollfd p{fd_, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string{"connect: "} +
                                 (err ? std::strerror(err) : "timed out"));
    }
}

raw_connection::~raw_connection() {
    if (fd_ >= 0) ::close(fd_);
}

bool raw_connection::send(std::string_view bytes, std::size_t chunk, milliseconds pause,
                          milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    if (chunk == 0) chunk = bytes.size();
    while (!bytes.empty()) {
        pollfd p{fd_, POLLOUT | POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
        if (p.revents & POLLIN) {  // keep our receive side drained: the server may answer early
            char buf[65536];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) pending_.append(buf, static_cast<std::size_t>(n));
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                closed_ = true;
                return false;
            }
        }
        if (!(p.revents & POLLOUT)) continue;
        auto n = ::send(fd_, bytes.data(), std::min(chunk, bytes.size()), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) continue;
            closed_ = true;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
        if (pause.count() && !bytes.empty()) std::this_thread::sleep_for(pause);
    }
    return true;
}

void raw_connection::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

std::string raw_connection::read_some(std::size_t n, milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    while (!closed_ && pending_.size() < n) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) break;
        char buf[65536];
        auto got = ::recv(fd_, buf, sizeof buf, 0);
        if (got > 0)
            pending_.append(buf, static_cast<std::size_t>(got));
        else if (got == 0 || errno != EAGAIN)
            closed_ = true;
    }
    return std::exchange(pending_, {});
}

std::string raw_connection::read_all(milliseconds timeout) {
    return read_some(std::string::npos, timeout);
}

bool raw_connection::wait_closed(milliseconds timeout) {
    pending_ += read_all(timeout);
    return closed_;
}

void raw_connection::reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
    closed_ = true;
}

outcome exchange(std::uint16_t port, std::string_view bytes, std::size_t chunk,
                 milliseconds timeout) {
    raw_connection c{port};
    c.send(bytes, chunk, 0ms, timeout);
    if (!c.closed()) c.shutdown_write();
    std::string got = c.read_all(timeout);
    auto o = parse_responses(got);
    o.closed = c.closed();
    return o;
}

std::optional<response> get(std::uint16_t port, std::string_view target, milliseconds timeout) {
    try {
        raw_connection c{port, timeout};
        c.send(request(target, {"Connection: close"}), 0, 0ms, timeout);
        auto o = parse_responses(c.read_all(timeout));
        if (o.responses.empty()) return std::nullopt;
        return o.responses.front();
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::string request(std::string_view target, std::vector<std::string> extra,
                    std::string_view method) {
    std::string r{method};
    r += ' ';
    r += target;
    r += " HTTP/1.1\r\nHost: localhost\r\n";
    for (auto& line : extra) r += line + "\r\n";
    return r + "\r\n";
}

std::unique_ptr<test_support::standin> make_standin(std::vector<std::string> extra) {
    auto args = test_support::standin::benchmark_seed_args();
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<test_support::standin>(args);
}

std::string server::executable() {
    return COROSERVE_EXE;
}

server::server(const std::string& mongodb_uri, server_options options) {
    static std::atomic<unsigned> counter{0};
    stderr_path_ = (std::filesystem::temp_directory_path() /
                    ("coroserve-hardening-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++) + ".stderr"))
                       .string();
    std::filesystem::remove(stderr_path_);
    // The shell opens the log as us, sets the limit, then becomes the server (exec): the pid
    // we hold is the server's.
    std::string script;
    if (options.nofile > 0)
        script += "ulimit -n " + std::to_string(options.nofile) + " || exit 3; ";
    script += "exec ";
    if (options.unprivileged && ::geteuid() == 0)
        script += "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups ";
    script += "\"$0\" \"$@\" 2>>\"$COROSERVE_HARDENING_STDERR\"";
    std::vector<std::string> argv = {"/bin/sh",
                                     "-c",
                                     script,
                                     executable(),
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--mongodb-uri",
                                     mongodb_uri,
                                     "--collections",
                                     "articles,small,big",
                                     "--io-threads",
                                     "2",
                                     "--server-selection-timeout-ms",
                                     "3000",
                                     "--db-timeout-ms",
                                     "3000"};
    argv.insert(argv.end(), options.args.begin(), options.args.end());
    process_ = std::make_unique<test_support::child_process>(
        argv, std::vector<std::string>{"COROSERVE_HARDENING_STDERR=" + stderr_path_});
    std::string line;
    try {
        line = process_->first_line(20s);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string{"coroserve did not start: "} + e.what() +
                                 "; stderr: " + stderr_text());
    }
    int got = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), got);
    if (ec != std::errc{} || got <= 0 || got > 65535)
        throw std::runtime_error("coroserve: expected the port on stdout, got '" + line + "'");
    port_ = static_cast<std::uint16_t>(got);
}

server::~server() {
    process_.reset();  // SIGTERM, then SIGKILL
    std::error_code ignored;
    std::filesystem::remove(stderr_path_, ignored);
}

std::string server::stderr_text() const {
    std::ifstream in{stderr_path_, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

long rss_kib(pid_t pid) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            long v = 0;
            in >> v;
            return v;
        }
        in.ignore(4096, '\n');
    }
    return -1;
}

int open_fds(pid_t pid) {
    int n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator{"/proc/" + std::to_string(pid) + "/fd", ec};
         !ec && it != std::filesystem::directory_iterator{}; it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

int real_uid(pid_t pid) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
    std::string key;
    while (in >> key) {
        if (key == "Uid:") {
            int v = -1;
            in >> v;
            return v;
        }
        in.ignore(4096, '\n');
    }
    return -1;
}

std::string metrics_text(std::uint16_t port) {
    auto r = get(port, "/metrics", 10s);
    if (!r || r->status != 200) throw std::runtime_error("GET /metrics failed");
    return r->body;
}

double metric(std::string_view text, std::string_view sample) {
    std::string want = std::string{sample} + " ";
    for (std::size_t pos = 0; pos < text.size();) {
        auto eol = text.find('\n', pos);
        auto line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        if (line.substr(0, want.size()) == want)
            return std::strtod(std::string{line.substr(want.size())}.c_str(), nullptr);
        if (eol == std::string_view::npos) break;
        pos = eol + 1;
    }
    return 0;
}

steady_client::steady_client(std::uint16_t port, std::string target, milliseconds pause)
    : port_(port), target_(std::move(target)), pause_(pause), thread_([this] { run(); }) {}

steady_client::~steady_client() {
    stop();
}

void steady_client::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

std::string steady_client::last_problem() const {
    std::lock_guard lock{mutex_};
    return last_problem_;
}

void steady_client::run() {
    const std::string req = request(target_);
    std::unique_ptr<raw_connection> c;
    std::string buffer;
    unsigned served = 0;  // on this connection
    auto problem = [&](std::atomic<std::uint64_t>& counter, std::string what) {
        ++counter;
        std::lock_guard lock{mutex_};
        last_problem_ = std::move(what);
    };
    while (!stop_) {
        try {
            if (!c) c = std::make_unique<raw_connection>(port_, 5s), buffer.clear(), served = 0;
            if (!c->send(req, 0, 0ms, 5s)) {
                c.reset();
                continue;  // the server closed an idle keep-alive connection: reconnect
            }
            // One answer: read until a whole response is buffered.
            auto deadline = clock_type::now() + 5s;
            std::optional<response> got;
            while (clock_type::now() < deadline && !c->closed()) {
                buffer += c->read_some(1, 200ms);
                auto o = parse_responses(buffer);
                if (!o.responses.empty() && !o.garbled) {
                    got = o.responses.front();
                    buffer.clear();
                    break;
                }
            }
            if (!got && c->closed() && buffer.empty() && served > 0) {
                c.reset();  // an idle keep-alive connection closed as we reused it: retry
                continue;
            }
            if (!got) {
                problem(failures_, c->closed() ? "connection closed without an answer"
                                               : "no answer within 5 s");
                c.reset();
            } else if (got->status != 200) {
                problem(not_ok_, got->head.substr(0, got->head.find('\r')));
            } else {
                ++ok_;
                ++served;
            }
            if (got && got->closes) c.reset();
        } catch (const std::exception& e) {
            problem(failures_, e.what());
            c.reset();
            std::this_thread::sleep_for(50ms);
        }
        std::this_thread::sleep_for(pause_);
    }
}

}  // namespace hardening
