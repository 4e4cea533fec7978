// Listening sockets, accept loops, and the per-connection coroutine. Each connection is one
// coroutine that reads a request, awaits its reply, writes it and loops, with a watchdog
// beside it that enforces the deadline of whatever the connection is waiting for.
#include "server.hpp"

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "handlers.hpp"
#include "metrics.hpp"
#include "router.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace coroserve {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto never = clock_type::time_point::max();
constexpr std::size_t small_buffer = 1024;  // read buffer an idle connection keeps

// One open connection: its socket, and the deadline of what it is waiting for. The watchdog
// sleeps on `timer` until the deadline; moving the deadline earlier re-arms the timer.
struct connection {
    explicit connection(tcp::socket s)
        : socket(std::move(s)), timer(socket.get_executor(), never) {}

    void expire_after(clock_type::duration d) {
        deadline = clock_type::now() + d;
        timed_out = false;
        if (deadline < timer.expiry()) timer.expires_at(deadline);  // wakes the watchdog early
    }
    // Also forgets a timeout that came after the operation it was meant for had completed.
    void expire_never() {
        deadline = never;
        timed_out = false;
    }

    tcp::socket socket;
    asio::steady_timer timer;
    clock_type::time_point deadline = never;
    bool timed_out = false;  // the last cancelled operation was cancelled by the watchdog
    bool idle = false;       // waiting for a request: closed at once when the server drains
};

// Every open connection, so that a draining server can close the idle ones. Touched once per
// connection, never per request.
class connection_registry {
  public:
    std::uint64_t add(connection& c) {
        std::lock_guard lock{mutex_};
        map_.emplace(++last_id_, &c);
        return last_id_;
    }
    void remove(std::uint64_t id) {
        std::lock_guard lock{mutex_};
        map_.erase(id);
    }
    std::size_t size() const {
        std::lock_guard lock{mutex_};
        return map_.size();
    }
    // Cancels the read of each idle connection, on the connection's own executor: the lookup
    // there is safe because a connection leaves the registry on that same executor.
    void close_idle() {
        std::lock_guard lock{mutex_};
        for (auto& [id, c] : map_) {
            asio::post(c->socket.get_executor(), [this, id = id] {
                std::lock_guard lock{mutex_};
                if (auto it = map_.find(id); it != map_.end() && it->second->idle)
                    it->second->socket.cancel();
            });
        }
    }

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, connection*> map_;
    std::uint64_t last_id_ = 0;
};

// What every connection shares.
struct shared_state {
    shared_state(const config& c, handlers& h, metrics& m) : cfg(c), routes(h), stats(m) {}
    const config& cfg;
    handlers& routes;
    metrics& stats;
    connection_registry registry;
    std::atomic<bool> draining{false};
};

// "Thu, 26 Nov 2026 15:47:23 GMT", formatted once a second per thread.
std::string_view http_date() {
    thread_local std::array<char, 32> text{};
    thread_local std::time_t cached = 0;
    std::time_t now = std::time(nullptr);
    if (now != cached) {
        cached = now;
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return text.data();
}

// The status line and headers of a reply, written by hand into a fixed array: Beast's response
// type allocates once per header field, a std::string once per reply, and ours are few, short
// and made of our own constants.
class response_head {
  public:
    response_head(const reply& r, unsigned version, bool keep_alive) {
        add(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
        add(r.status);
        add(" ");
        add(http::obsolete_reason(static_cast<http::status>(r.status)));
        add("\r\nServer: coroserve\r\nDate: ");
        add(http_date());
        add("\r\nContent-Type: ");
        add(r.content_type);
        add("\r\nContent-Length: ");
        add(r.body.size());
        if (!r.allow.empty()) {
            add("\r\nAllow: ");
            add(r.allow);
        }
        if (r.retry_after) {
            add("\r\nRetry-After: ");
            add(r.retry_after);
        }
        if (!keep_alive && version != 10) add("\r\nConnection: close");
        if (keep_alive && version == 10) add("\r\nConnection: keep-alive");
        add("\r\n\r\n");
    }
    asio::const_buffer buffer() const { return {text_.data(), size_}; }

  private:
    // A head that does not fit is a bug (a long content type), not bad input.
    void add(std::string_view s) {
        if (s.size() > text_.size() - size_) throw std::length_error{"reply head too long"};
        std::memcpy(text_.data() + size_, s.data(), s.size());
        size_ += s.size();
    }
    void add(std::size_t n) {
        auto [end, ec] = std::to_chars(text_.data() + size_, text_.data() + text_.size(), n);
        if (ec != std::errc{}) throw std::length_error{"reply head too long"};
        size_ = static_cast<std::size_t>(end - text_.data());
    }

    std::array<char, 512> text_;
    std::size_t size_ = 0;
};

void log_access(const http::request<http::string_body>& req, const reply& r) {
    std::fprintf(stderr, "%.*s %.*s %u %zu\n", static_cast<int>(req.method_string().size()),
                 req.method_string().data(), static_cast<int>(req.target().size()),
                 req.target().data(), r.status, r.body.size());
}

// Cancels the connection's pending operation when its deadline passes. The socket stays
// open, so the session can still answer 408 before it closes.
asio::awaitable<void> watchdog(connection& c) {
    for (;;) {
        c.timer.expires_at(c.deadline);
        co_await c.timer.async_wait(use_tuple);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return;  // the session ended
        if (c.deadline <= clock_type::now()) {
            c.timed_out = true;
            c.deadline = never;
            c.socket.cancel();
        }
    }
}

// Waits for the next request and reads its first bytes (usually all of it) into the empty
// `buffer`, which holds at most the small buffer meanwhile: an idle connection costs its
// coroutine frames and little else. A read rather than a wait for readability: a read leaves
// the socket registered with epoll as it is, where Asio re-arms it (epoll_ctl) for every wait.
// False when the client left, the idle time ran out, or the server is draining.
asio::awaitable<bool> wait_for_request(connection& c, beast::flat_buffer& buffer, shared_state& s,
                                       clock_type::duration patience) {
    if (s.draining) co_return false;
    c.idle = true;
    c.expire_after(patience);
    // As much as Beast's first read would take (512 bytes, or what the kept buffer holds): the
    // header limit counts from what the first parse did not consume, so the size matters.
    auto space = buffer.prepare(beast::read_size(buffer, small_buffer));
    auto [ec, n] = co_await c.socket.async_read_some(space, use_tuple);
    c.idle = false;
    if (ec) {
        if (c.timed_out) s.stats.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
        co_return false;
    }
    buffer.commit(n);
    c.expire_never();  // until the request needs more bytes
    co_return true;
}

// Writes a reply; false if the client did not take it in time.
asio::awaitable<bool> write_reply(connection& c, const reply& r, unsigned version, bool keep_alive,
                                  bool head_only, shared_state& s) {
    const response_head head{r, version, keep_alive};
    std::array<asio::const_buffer, 2> buffers{head.buffer(),
                                              asio::buffer(r.body, head_only ? 0 : r.body.size())};
    c.expire_after(s.cfg.write_timeout);
    auto [ec, n] = co_await asio::async_write(c.socket, buffers, use_tuple);
    if (ec && c.timed_out) s.stats.write_timeouts.fetch_add(1, std::memory_order_relaxed);
    co_return !ec;
}

// Closes after an error answer: stop sending, then read and drop what the client still sends
// for a moment, so that the answer is not lost to a reset.
asio::awaitable<void> close_gently(connection& c) {
    beast::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    c.expire_after(std::chrono::seconds{1});
    std::array<char, 4096> sink;
    for (std::size_t dropped = 0; dropped < 64 * 1024;) {
        auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) break;
        dropped += n;
    }
}

// A request that could not be read: answer what can be answered (408, 413, 431, 400), then
// close. A client that simply left gets nothing.
asio::awaitable<void> reject(connection& c, beast::error_code ec, unsigned version,
                             shared_state& s) {
    reply r;
    auto& stats = s.stats;
    if (c.timed_out) {
        stats.header_timeouts.fetch_add(1, std::memory_order_relaxed);
        r = error_reply(408, "request not received in time");
    } else if (ec == http::error::header_limit) {
        stats.headers_too_large.fetch_add(1, std::memory_order_relaxed);
        r = error_reply(431, "request header too large");
    } else if (ec == http::error::body_limit) {
        stats.bodies_too_large.fetch_add(1, std::memory_order_relaxed);
        r = error_reply(413, "request body too large");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
        stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
        r = error_reply(400, "malformed request");
    } else {
        co_return;  // the client closed or reset the connection
    }
    stats.observe(route::none, r.status, {});
    if (co_await write_reply(c, r, version == 10 ? 10 : 11, false, false, s))
        co_await close_gently(c);
}

// Reads one whole request, with Beast's header and body limits. The header is parsed from
// what the buffer holds (usually the whole request: the wait read it, or it came pipelined);
// only a request still incomplete, or one with a body, goes on with http::async_read, within
// the header deadline. (Not eager: after need_more in a chunked body, Beast's parser must be
// given more bytes before it looks again, which http::async_read would not do.)
asio::awaitable<beast::error_code> read_request(connection& c, beast::flat_buffer& buffer,
                                                http::request_parser<http::string_body>& parser,
                                                const config& cfg) {
    parser.header_limit(static_cast<std::uint32_t>(cfg.header_limit));
    parser.body_limit(cfg.body_limit);
    beast::error_code ec;
    buffer.consume(parser.put(buffer.data(), ec));
    if (ec == http::error::need_more) ec.clear();
    if (!ec && !parser.is_done()) {
        c.expire_after(cfg.header_timeout);
        auto [read_ec, n] = co_await http::async_read(c.socket, buffer, parser, use_tuple);
        ec = read_ec;
    }
    // A Transfer-Encoding that does not end in chunked leaves the body length unknown: Beast
    // reads no body, a proxy may read one. 400 and close (RFC 9112 6.3), no smuggling.
    if (!ec && parser.get().count(http::field::transfer_encoding) && !parser.chunked())
        ec = http::error::bad_transfer_encoding;
    co_return ec;
}

// One connection, from its first request to its close: read a request, await the reply,
// write it, loop. Pipelined requests wait in `buffer` and are answered in order.
asio::awaitable<void> serve(connection& c, shared_state& s) {
    const config& cfg = s.cfg;
    // Bounded: Beast limits header and body but not chunk extensions or trailers (then 400).
    beast::flat_buffer buffer{cfg.header_limit + cfg.body_limit};
    for (bool first = true;; first = false) {
        auto patience = first ? cfg.header_timeout : cfg.idle_timeout;
        if (buffer.size() == 0) {
            // A big buffer (a large request) is freed before the wait; the usual small one is
            // kept, which saves a malloc and free per request and keeps an idle connection
            // within its memory bound.
            if (buffer.capacity() > small_buffer) buffer.shrink_to_fit();
            if (!co_await wait_for_request(c, buffer, s, patience)) co_return;
        }

        http::request_parser<http::string_body> parser;
        if (auto ec = co_await read_request(c, buffer, parser, cfg))
            co_return co_await reject(c, ec, parser.get().version(), s);

        const auto start = clock_type::now();
        const auto& req = parser.get();
        c.expire_never();  // the database calls carry deadlines of their own
        auto match = match_route(req.method_string(), req.target());
        match.client_fd = c.socket.native_handle();
        match.received = start;
        reply r = co_await dispatch_request(s.routes, match);

        bool keep_alive = req.keep_alive() && !r.close && !s.draining;
        bool sent = co_await write_reply(c, r, req.version(), keep_alive,
                                         req.method() == http::verb::head, s);
        s.stats.observe(match.id, r.status, clock_type::now() - start);
        if (cfg.access_log) log_access(req, r);
        if (!sent || !keep_alive) break;
    }
    beast::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
}

// Registers the connection for its lifetime and runs it beside its watchdog.
asio::awaitable<void> session(tcp::socket socket, shared_state& s) {
    using namespace asio::experimental::awaitable_operators;
    connection c{std::move(socket)};
    auto id = s.registry.add(c);
    s.stats.open_connections.fetch_add(1, std::memory_order_relaxed);
    struct leave {
        shared_state& s;
        std::uint64_t id;
        ~leave() {
            s.registry.remove(id);
            s.stats.open_connections.fetch_sub(1, std::memory_order_relaxed);
        }
    } on_exit{s, id};

    beast::error_code ignored;
    c.socket.set_option(tcp::no_delay(true), ignored);
    co_await (serve(c, s) || watchdog(c));
}

// Over the connection limit: a short 503 instead of a silent stall, then close.
void refuse(tcp::socket socket) {
    static constexpr std::string_view body =
        R"({"error":"too many connections, retry later","status":503})";
    static const std::string answer =
        "HTTP/1.1 503 Service Unavailable\r\nServer: coroserve\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" +
        std::string{body};
    beast::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(answer), ignored);  // a fresh socket's send buffer takes it
    socket.shutdown(tcp::socket::shutdown_both, ignored);
}

// Starts the session of a new connection, or refuses it when the server is full.
void start_session(tcp::socket socket, shared_state& s) {
    s.stats.accepted.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<std::size_t>(s.stats.open_connections.load()) >= s.cfg.max_connections) {
        s.stats.refused_connections.fetch_add(1, std::memory_order_relaxed);
        refuse(std::move(socket));
        return;
    }
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket), s), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::fprintf(stderr, "coroserve: session ended by an exception: %s\n", x.what());
        }
    });
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, shared_state& s,
                                  bool strand_per_connection) {
    auto ex = acceptor.get_executor();
    // With one io_context run by many threads, each connection gets a strand so that its
    // session and watchdog never run at the same time.
    auto next_executor = [&] {
        return strand_per_connection ? asio::any_io_executor{asio::make_strand(ex)} : ex;
    };
    // Each await of an accept waits its turn behind every handler already queued: with
    // thousands of busy connections that is one accept per pass over all of them, and
    // newcomers would wait seconds in the listen queue (1,000s of them at c=5000). So each
    // turn also takes what is already waiting there, up to a bound that keeps the turn short.
    constexpr int batch = 256;
    acceptor.non_blocking(true);
    asio::steady_timer backoff{ex};
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(next_executor(), use_tuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        for (int taken = 1; !ec; ++taken) {
            start_session(std::move(socket), s);
            if (taken == batch) break;
            socket = acceptor.accept(next_executor(), ec);  // would_block: the queue is empty
        }
        if (ec && ec != asio::error::would_block) {
            // Out of descriptors (EMFILE/ENFILE): keep serving the open connections, retry soon.
            s.stats.accept_errors.fetch_add(1, std::memory_order_relaxed);
            backoff.expires_after(std::chrono::milliseconds{50});
            co_await backoff.async_wait(use_tuple);
        }
    }
}

}  // namespace

struct server::impl {
    impl(const config& c, handlers& h, metrics& m) : state{c, h, m} {}

    shared_state
        state;  // declared first: sessions still queued in a context leave it on destruction
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<tcp::acceptor> acceptors;
    // Registered in listen(), before the port is announced: whoever reads the port may signal
    // at once, and a signal that comes before run() then waits here instead of killing us.
    std::optional<asio::signal_set> signals;

    // On SIGINT/SIGTERM: stop accepting, close idle connections, give the busy ones the drain
    // time, then stop every I/O thread.
    asio::awaitable<void> drain_on_signal() {
        auto ex = co_await asio::this_coro::executor;
        auto [ec, signo] = co_await signals->async_wait(use_tuple);
        if (ec) co_return;
        state.draining = true;
        std::fprintf(stderr, "coroserve: signal %d, draining %zu connections\n", signo,
                     state.registry.size());
        for (auto& a : acceptors) asio::post(a.get_executor(), [&a] { a.close(); });
        state.registry.close_idle();

        const auto deadline = clock_type::now() + state.cfg.drain_timeout;
        asio::steady_timer poll{ex};
        while (state.registry.size() > 0 && clock_type::now() < deadline) {
            poll.expires_after(std::chrono::milliseconds{10});
            co_await poll.async_wait(use_tuple);
        }
        if (auto left = state.registry.size())
            std::fprintf(stderr, "coroserve: drain time over, closing %zu connections\n", left);
        for (auto& ctx : contexts) ctx->stop();
    }
};

server::server(const config& cfg, handlers& h, metrics& stats)
    : impl_(std::make_unique<impl>(cfg, h, stats)) {}
server::~server() = default;

std::uint16_t server::listen() {
    const config& cfg = impl_->state.cfg;
    const unsigned threads = cfg.resolved_io_threads();
    const unsigned listeners = cfg.reuse_port ? threads : 1;
    tcp::endpoint endpoint{asio::ip::make_address(cfg.host), cfg.port};
    for (unsigned i = 0; i < listeners; ++i) {
        auto& ctx = *impl_->contexts.emplace_back(
            std::make_unique<asio::io_context>(cfg.reuse_port ? 1 : threads));
        tcp::acceptor& a = impl_->acceptors.emplace_back(ctx);
        a.open(endpoint.protocol());
        a.set_option(asio::socket_base::reuse_address(true));
        if (cfg.reuse_port) {
            int on = 1;
            if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
                throw std::system_error{errno, std::generic_category(), "SO_REUSEPORT"};
        }
        a.bind(endpoint);
        a.listen(asio::socket_base::max_listen_connections);
        endpoint.port(a.local_endpoint().port());  // port 0: the others join the one picked
    }
    impl_->signals.emplace(*impl_->contexts[0], SIGINT, SIGTERM);
    return endpoint.port();
}

void serve_socket(int fd, const config& cfg, handlers& h, metrics& stats) {
    asio::io_context ctx{1};
    shared_state state{cfg, h, stats};
    tcp::socket socket{ctx};
    socket.assign(tcp::v4(), fd);
    asio::co_spawn(ctx, session(std::move(socket), state), asio::detached);
    ctx.run();
}

void server::run() {
    auto& self = *impl_;
    const unsigned threads = self.state.cfg.resolved_io_threads();
    for (std::size_t i = 0; i < self.acceptors.size(); ++i)
        asio::co_spawn(*self.contexts[i],
                       accept_loop(self.acceptors[i], self.state, !self.state.cfg.reuse_port),
                       asio::detached);
    asio::co_spawn(*self.contexts[0], self.drain_on_signal(), asio::detached);

    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) {
        auto& ctx = *self.contexts[self.state.cfg.reuse_port ? t : 0];
        pool.emplace_back([&ctx] { ctx.run(); });
    }
    self.contexts[0]->run();
    for (auto& t : pool) t.join();
}

}  // namespace coroserve
