// http_client: a small blocking HTTP/1.1 client over a raw POSIX socket, for tests that must
// control every byte: send anything (half a header, pipelined requests, garbage), read and
// parse the answers one by one (Content-Length framing, or until close), and see whether
// and when the server closes the connection. Every wait is bounded by a timeout.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace e2e {

using std::chrono::milliseconds;

// A wait ran out of time, or the peer broke the protocol.
struct http_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct response {
    unsigned version = 0;  // 10 or 11
    unsigned status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, as received
    std::string body;

    // The first header with this name (case-insensitive), or nullopt.
    std::optional<std::string> header(std::string_view name) const;
    bool has_header(std::string_view name) const { return header(name).has_value(); }
    // True when the server said it will close: "Connection: close" (or HTTP/1.0 without
    // "Connection: keep-alive").
    bool closes() const;
};

// Formats a request: "METHOD target HTTP/1.x", Host, the extra header lines, an optional
// body (with its Content-Length).
std::string format_request(std::string_view method, std::string_view target,
                           std::vector<std::string> extra_headers = {}, std::string_view body = {},
                           unsigned version = 11);
inline std::string get_request(std::string_view target, unsigned version = 11) {
    return format_request("GET", target, {}, {}, version);
}

class connection {
  public:
    // Connects to 127.0.0.1:port; throws http_error if refused or not connected in time.
    explicit connection(unsigned short port, milliseconds timeout = milliseconds{5000});
    // Tries once; nullopt when the connection is refused (e.g. nothing listens any more).
    static std::optional<connection> try_connect(unsigned short port,
                                                 milliseconds timeout = milliseconds{5000});
    ~connection();
    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    int fd() const { return fd_; }

    // Writes all of `bytes`; throws http_error if the peer is gone or it takes too long.
    void send(std::string_view bytes, milliseconds timeout = milliseconds{5000});
    // Half-closes: the server sees end of stream, answers still arrive.
    void shutdown_write();
    // Abortive close (SO_LINGER 0): the server sees a reset (RST), not an end of stream. The
    // connection is unusable afterwards.
    void reset();

    // Reads the next response. `head` = the request was HEAD (no body, whatever the
    // Content-Length says). Returns nullopt if the connection ended (EOF or reset) before
    // the first byte of a response; throws http_error on timeout or a truncated/garbled
    // response.
    std::optional<response> read_response(milliseconds timeout = milliseconds{5000},
                                          bool head = false);
    // read_response that must succeed: throws http_error when the connection ended instead.
    response expect_response(milliseconds timeout = milliseconds{5000}, bool head = false);

    // Sends one request and reads its answer.
    response request(std::string_view method, std::string_view target,
                     std::vector<std::string> extra_headers = {},
                     milliseconds timeout = milliseconds{5000});
    response get(std::string_view target, milliseconds timeout = milliseconds{5000}) {
        return request("GET", target, {}, timeout);
    }

    // Waits until the peer closes (EOF or reset). Bytes that arrive meanwhile are kept (see
    // pending()). False if the connection is still open after `timeout`.
    bool wait_closed(milliseconds timeout);
    // True once EOF or a reset has been seen; peer_reset(): it was a reset (RST).
    bool peer_closed() const { return eof_; }
    bool peer_reset() const { return reset_; }
    // Received bytes not consumed by a response yet.
    const std::string& pending() const { return buffer_; }

  private:
    explicit connection(int fd) : fd_(fd) {}
    // Reads more bytes into buffer_ until `deadline`; false on EOF/reset, throws on timeout.
    bool fill(std::chrono::steady_clock::time_point deadline);
    void close();

    int fd_ = -1;
    std::string buffer_;
    bool eof_ = false;
    bool reset_ = false;
};

// One request on a fresh connection.
response get(unsigned short port, std::string_view target,
             milliseconds timeout = milliseconds{5000});

// Polls `target` until it answers `status`, for at most `patience`; the last answer.
response poll_until(unsigned short port, std::string_view target, unsigned status,
                    milliseconds patience);

}  // namespace e2e
