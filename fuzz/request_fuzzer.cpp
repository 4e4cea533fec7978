// libFuzzer target over the whole request path: the input is what a client sends on one
// connection (then it half-closes); the real session coroutine (serve_socket) parses, routes
// and answers it through the real handlers and blocking pool, with a fake data source. Besides
// the sanitizers, the bytes that come back are checked: well-framed responses with known
// headers and no stray CR/LF, nothing after a response that announced a close, and no 2xx
// for a first request whose length is ambiguous (Content-Length with Transfer-Encoding, two
// different Content-Lengths, or a Transfer-Encoding that does not end in chunked).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <coroserve/blocking_pool.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config.hpp"
#include "handlers.hpp"
#include "metrics.hpp"
#include "mongo.hpp"
#include "server.hpp"

namespace {

using namespace coroserve;

constexpr std::string_view small_doc =
    R"({"_id":{"$oid":"537416b501d53a77bb94135c"},"canonicalUrl":"http://foo.com"})";
constexpr std::string_view small_oid = "537416b501d53a77bb94135c";

// Answers like a seeded database; a few collection names stand for the failures.
class fake_source final : public document_source {
  public:
    std::optional<std::string> find_one(std::string_view collection,
                                        const std::optional<document_id>& id) const override {
        if (collection == "unavailable") throw db_unavailable{"fake: no server"};
        if (collection == "timeout") throw db_timeout{"fake: deadline passed"};
        if (collection == "broken") throw db_error{"fake: command failed"};
        if (collection == "empty") return std::nullopt;
        if (id && id->value != small_oid) return std::nullopt;
        if (collection == "big") return std::string(64 * 1024, 'x');
        return std::string{small_doc};
    }
    void ping() const override {}
};

struct world {
    world() {
        cfg.collections = {"articles", "small", "big", "unavailable", "timeout", "broken", "empty"};
        cfg.header_timeout = std::chrono::milliseconds{2000};
        cfg.idle_timeout = std::chrono::milliseconds{2000};
        cfg.write_timeout = std::chrono::milliseconds{2000};
        cfg.sleep_max_ms = 5;
    }
    config cfg;
    fake_source db;
    blocking_pool pool{2, 4};
    metrics stats;
    handlers routes{cfg, pool, db, stats};
};

[[noreturn]] void fail(const char* what, std::string_view out) {
    std::fprintf(stderr, "request_fuzzer: %s\n--- output (%zu bytes) ---\n%.*s\n---\n", what,
                 out.size(), static_cast<int>(std::min<std::size_t>(out.size(), 4096)), out.data());
    std::abort();
}

std::string lower(std::string_view s) {
    std::string r{s};
    for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// True when the first request's header block frames its body ambiguously.
bool ambiguous_first_request(std::string_view in) {
    auto end = in.find("\r\n\r\n");
    if (end == std::string_view::npos) return false;
    std::string_view head = in.substr(0, end);
    std::vector<std::string> lengths;
    bool transfer_encoding = false;
    std::string codings;  // every Transfer-Encoding value, in order
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        auto next = head.find("\r\n", pos + 2);
        auto line = head.substr(pos + 2, next == std::string_view::npos ? next : next - pos - 2);
        auto colon = line.find(':');
        if (colon != std::string_view::npos) {
            auto name = lower(line.substr(0, colon));
            auto value = std::string{trim(line.substr(colon + 1))};
            if (name == "content-length") lengths.push_back(value);
            if (name == "transfer-encoding") {
                transfer_encoding = true;
                codings += "," + value;
            }
        }
        pos = next;
    }
    bool differing =
        std::adjacent_find(lengths.begin(), lengths.end(), std::not_equal_to<>{}) != lengths.end();
    // The last non-empty element of the list (empty elements are allowed and ignored).
    std::string last;
    for (std::size_t pos = 0; pos <= codings.size();) {
        auto comma = codings.find(',', pos);
        if (comma == std::string::npos) comma = codings.size();
        auto element = trim(std::string_view{codings}.substr(pos, comma - pos));
        if (!element.empty()) last = lower(element);
        pos = comma + 1;
    }
    bool not_chunked = transfer_encoding && last != "chunked";
    return (transfer_encoding && !lengths.empty()) || differing || not_chunked;
}

// Walks the responses in `out`; aborts on the first thing that should never be sent.
void check_output(std::string_view out, bool ambiguous_first) {
    static constexpr std::string_view known[] = {
        "server", "date", "content-type", "content-length", "allow", "retry-after", "connection"};
    const std::string_view all = out;
    bool first = true;
    while (!out.empty()) {
        if (out.substr(0, 9) != "HTTP/1.1 " && out.substr(0, 9) != "HTTP/1.0 ")
            fail("response does not start with a status line", all);
        const bool v10 = out[7] == '0';
        auto head_end = out.find("\r\n\r\n");
        if (head_end == std::string_view::npos) fail("response head not terminated", all);
        std::string_view head = out.substr(0, head_end + 2);
        for (char c : head)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\n') || c == 0x7f)
                fail("control byte in a response head", all);
        unsigned status = 0;
        for (std::size_t i = 9; i < 12 && i < head.size(); ++i) {
            if (head[i] < '0' || head[i] > '9') fail("bad status code", all);
            status = status * 10 + static_cast<unsigned>(head[i] - '0');
        }
        if (status == 500) fail("500: an unexpected exception on the request path", all);
        if (first && ambiguous_first && status < 400)
            fail("non-error answer to an ambiguously framed request", all);

        std::optional<std::size_t> length;
        bool close = v10;
        std::size_t pos = head.find("\r\n") + 2;
        while (pos < head.size()) {
            auto eol = head.find("\r\n", pos);
            auto line = head.substr(pos, eol - pos);
            pos = eol + 2;
            if (line.find('\n') != std::string_view::npos ||
                line.find('\r') != std::string_view::npos)
                fail("bare CR or LF inside a response header", all);
            auto colon = line.find(": ");
            if (colon == std::string_view::npos) fail("response header without ': '", all);
            auto name = lower(line.substr(0, colon));
            auto value = line.substr(colon + 2);
            if (std::find(std::begin(known), std::end(known), name) == std::end(known))
                fail("unexpected response header", all);
            if (name == "content-length")
                length = std::strtoull(std::string{value}.c_str(), nullptr, 10);
            if (name == "connection") close = lower(value) == "close";
        }
        if (!length) fail("response without Content-Length", all);
        out.remove_prefix(head_end + 4);
        // A HEAD answer has no body: the next response (or the end) follows at once.
        bool head_only = out.empty() || out.substr(0, 7) == "HTTP/1.";
        if (!head_only && *length > 0) {
            if (out.size() < *length) fail("response body shorter than its Content-Length", all);
            out.remove_prefix(*length);
        }
        if (close && !out.empty()) fail("bytes after a response that announced a close", all);
        first = false;
    }
}

// Plays the client: sends `input`, half-closes, and collects everything the server sends
// until it closes. Non-blocking both ways, so that neither side can stall the other.
std::string play_client(int fd, std::string_view input) {
    std::string out;
    std::size_t sent = 0;
    bool write_open = true;
    char buf[16384];
    for (;;) {
        if (write_open && sent == input.size()) {
            ::shutdown(fd, SHUT_WR);
            write_open = false;
        }
        pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
        if (::poll(&p, 1, 10'000) <= 0) break;  // the fuzzer's -timeout catches a hang first
        if (write_open && (p.revents & POLLOUT)) {
            auto n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
            if (n < 0)
                write_open = false;  // the server closed: it may not read everything
            else
                sent += static_cast<std::size_t>(n);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN)) break;
            if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static world* w = new world;  // never destroyed: the pool's threads outlive every input
    std::string_view input{reinterpret_cast<const char*>(data), size};

    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) std::abort();
    std::string out;
    std::thread client{[&] {
        out = play_client(fds[1], input);
        ::close(fds[1]);
    }};
    coroserve::serve_socket(fds[0], w->cfg, w->routes, w->stats);  // closes fds[0]
    client.join();
    check_output(out, ambiguous_first_request(input));
    return 0;
}
