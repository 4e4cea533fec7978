// http_client: a non-blocking socket driven by poll(), so that every wait has a deadline.
#include "http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace e2e {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_head = 1 << 20;  // a response head larger than this is garbage

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

[[noreturn]] void fail(const std::string& what) {
    throw http_error{what};
}

[[noreturn]] void fail_errno(const std::string& what) {
    fail(what + ": " + std::strerror(errno));
}

// Milliseconds left until `deadline`, at least 0, for poll().
int millis_left(clock_type::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now()).count() + 1;
    return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

// Waits for `events` on fd; false on timeout.
bool wait_for(int fd, short events, clock_type::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, millis_left(deadline));
        if (n > 0) return true;
        if (n == 0) {
            if (clock_type::now() >= deadline) return false;
            continue;
        }
        if (errno != EINTR) fail_errno("poll");
    }
}

// Connects a non-blocking socket; -1 when refused or reset; throws on timeout or another error.
int connect_to(unsigned short port, milliseconds timeout) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno("socket");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    int err = errno;
    if (err == EINPROGRESS) {
        if (!wait_for(fd, POLLOUT, clock_type::now() + timeout)) {
            ::close(fd);
            fail("connect to port " + std::to_string(port) + ": timed out");
        }
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) return fd;
    }
    ::close(fd);
    // A reset during the handshake is a refusal too: a listener that closes with the
    // connection still in its accept queue (a draining server) resets it.
    if (err == ECONNREFUSED || err == ECONNRESET) return -1;
    errno = err;
    fail_errno("connect to port " + std::to_string(port));
}

}  // namespace

std::optional<std::string> response::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

bool response::closes() const {
    auto c = header("Connection");
    if (version == 10) return !(c && iequals(*c, "keep-alive"));
    return c && iequals(*c, "close");
}

std::string format_request(std::string_view method, std::string_view target,
                           std::vector<std::string> extra_headers, std::string_view body,
                           unsigned version) {
    std::string r;
    r.reserve(128 + body.size());
    r.append(method).append(" ").append(target).append(version == 10 ? " HTTP/1.0" : " HTTP/1.1");
    r += "\r\nHost: 127.0.0.1\r\n";
    for (const auto& h : extra_headers) r.append(h).append("\r\n");
    if (!body.empty()) r.append("Content-Length: ").append(std::to_string(body.size())) += "\r\n";
    r += "\r\n";
    r.append(body);
    return r;
}

connection::connection(unsigned short port, milliseconds timeout) {
    fd_ = connect_to(port, timeout);
    if (fd_ < 0) fail("connect to port " + std::to_string(port) + ": refused");
}

std::optional<connection> connection::try_connect(unsigned short port, milliseconds timeout) {
    int fd = connect_to(port, timeout);
    if (fd < 0) return std::nullopt;
    return connection{fd};
}

connection::~connection() {
    close();
}

connection::connection(connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      eof_(other.eof_),
      reset_(other.reset_) {}

connection& connection::operator=(connection&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        buffer_ = std::move(other.buffer_);
        eof_ = other.eof_;
        reset_ = other.reset_;
    }
    return *this;
}

void connection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void connection::send(std::string_view bytes, milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd_, POLLOUT, deadline)) fail("send: timed out");
            continue;
        }
        fail_errno("send");
    }
}

void connection::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

void connection::reset() {
    if (fd_ < 0) return;
    linger abort{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    close();
    eof_ = true;
}

bool connection::fill(clock_type::time_point deadline) {
    if (eof_) return false;
    char chunk[16384];
    for (;;) {
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
            eof_ = true;
            reset_ = n < 0;
            return false;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fail_errno("recv");
        if (!wait_for(fd_, POLLIN, deadline)) fail("read: timed out");
    }
}

std::optional<response> connection::read_response(milliseconds timeout, bool head) {
    const auto deadline = clock_type::now() + timeout;

    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (buffer_.size() > max_head) fail("response head too large");
        if (!fill(deadline)) {
            if (buffer_.empty()) return std::nullopt;
            fail("connection closed inside a response head: '" + buffer_.substr(0, 200) + "'");
        }
    }

    response r;
    std::string_view text{buffer_.data(), head_end};
    auto line_end = text.find("\r\n");
    std::string_view status_line = text.substr(0, line_end);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[6] != '.' ||
        status_line[8] != ' ')
        fail("bad status line: '" + std::string{status_line} + "'");
    r.version = static_cast<unsigned>((status_line[5] - '0') * 10 + (status_line[7] - '0'));
    auto [end, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, r.status);
    if (ec != std::errc{} || end != status_line.data() + 12)
        fail("bad status code: '" + std::string{status_line} + "'");
    r.reason = std::string{trim(status_line.substr(12))};

    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view{} : text.substr(line_end + 2);
    while (!rest.empty()) {
        auto eol = rest.find("\r\n");
        auto line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            fail("bad header line: '" + std::string{line} + "'");
        r.headers.emplace_back(std::string{line.substr(0, colon)},
                               std::string{trim(line.substr(colon + 1))});
    }
    buffer_.erase(0, head_end + 4);

    if (auto te = r.header("Transfer-Encoding")) fail("Transfer-Encoding not supported: " + *te);
    const bool no_body = head || r.status / 100 == 1 || r.status == 204 || r.status == 304;
    if (no_body) return r;

    if (auto cl = r.header("Content-Length")) {
        std::size_t length = 0;
        auto [e, err] = std::from_chars(cl->data(), cl->data() + cl->size(), length);
        if (err != std::errc{} || e != cl->data() + cl->size())
            fail("bad Content-Length: '" + *cl + "'");
        while (buffer_.size() < length)
            if (!fill(deadline))
                fail("connection closed after " + std::to_string(buffer_.size()) + " of " +
                     std::to_string(length) + " body bytes");
        r.body = buffer_.substr(0, length);
        buffer_.erase(0, length);
    } else {
        while (fill(deadline)) {
        }
        r.body = std::move(buffer_);
        buffer_.clear();
    }
    return r;
}

response connection::expect_response(milliseconds timeout, bool head) {
    auto r = read_response(timeout, head);
    if (!r)
        fail(std::string{"connection "} + (reset_ ? "reset" : "closed (EOF)") +
             " before a response");
    return std::move(*r);
}

response connection::request(std::string_view method, std::string_view target,
                             std::vector<std::string> extra_headers, milliseconds timeout) {
    send(format_request(method, target, std::move(extra_headers)), timeout);
    return expect_response(timeout, method == "HEAD");
}

bool connection::wait_closed(milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    try {
        while (fill(deadline)) {
        }
        return true;
    } catch (const http_error&) {
        if (clock_type::now() >= deadline) return false;  // still open
        throw;
    }
}

response get(unsigned short port, std::string_view target, milliseconds timeout) {
    connection c{port, timeout};
    return c.get(target, timeout);
}

response poll_until(unsigned short port, std::string_view target, unsigned status,
                    milliseconds patience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
        auto r = get(port, target, milliseconds{10000});
        if (r.status == status || std::chrono::steady_clock::now() >= deadline) return r;
        std::this_thread::sleep_for(milliseconds{100});
    }
}

}  // namespace e2e
