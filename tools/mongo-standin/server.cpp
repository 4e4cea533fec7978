// server: accept loop and per-connection coroutine. Malformed input ends only the
// connection it came on; a slow reply (injected latency) waits on a timer, never a thread.
#include "server.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffered_read_stream.hpp>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <iostream>
#include <optional>
#include <sstream>

#include "replset.hpp"
#include "wire.hpp"

namespace standin {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

uint64_t connection_registry::add(asio::any_io_executor ex, std::weak_ptr<live> conn) {
    std::lock_guard lock(mutex_);
    entries_.emplace(next_, entry{std::move(ex), std::move(conn)});
    return next_++;
}

void connection_registry::remove(uint64_t key) {
    std::lock_guard lock(mutex_);
    entries_.erase(key);
}

std::size_t connection_registry::close_all() {
    std::vector<entry> all;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, e] : entries_) all.push_back(e);
    }
    for (auto& [ex, weak] : all) {
        // The session and this close both run on the session's executor (one thread),
        // so the socket is either still open here or the session is gone (weak expired).
        asio::post(ex, [weak = weak] {  // clang 14 cannot capture a structured binding
            if (auto conn = weak.lock()) {
                boost::system::error_code ignored;
                conn->socket.shutdown(tcp::socket::shutdown_both, ignored);
                conn->socket.close(ignored);
            }
        });
    }
    return all.size();
}

std::size_t connection_registry::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

server::server(std::vector<asio::io_context*> contexts, std::vector<tcp::acceptor*> acceptors,
               services svc, std::chrono::milliseconds message_timeout, asio::ssl::context* tls,
               std::chrono::milliseconds auth_timeout)
    : contexts_(std::move(contexts)),
      acceptors_(std::move(acceptors)),
      svc_(svc),
      message_timeout_(message_timeout),
      tls_(tls),
      auth_timeout_(auth_timeout) {
    for (std::size_t i = 0; i < acceptors_.size(); ++i)
        connections_.push_back(std::make_unique<connection_registry>());
    // A member killed or partitioned loses its clients at once, as a dead host would.
    if (svc_.rs)
        svc_.rs->on_unreachable(
            [this](int member) { connections_[static_cast<std::size_t>(member)]->close_all(); });
}

bool server::serving(int member) const {
    return !svc_.rs || svc_.rs->reachable(member);
}

asio::awaitable<void> server::accept_loop(int member) {
    auto& acceptor = *acceptors_[static_cast<std::size_t>(member)];
    std::size_t next = static_cast<std::size_t>(member);  // members start on different threads
    for (;;) {
        auto& ctx = *contexts_[next++ % contexts_.size()];
        auto [ec, socket] = co_await acceptor.async_accept(ctx.get_executor(), use_tuple);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // e.g. EMFILE or a connection reset before accept: keep serving
        // Refused (or a member down or cut off): the socket closes as it goes out of scope.
        if (svc_.faults.refusing() || !serving(member)) continue;
        socket.set_option(tcp::no_delay(true), ec);
        const int32_t id = next_connection_id_++;
        asio::co_spawn(ctx, session(std::move(socket), id, member), asio::detached);
    }
}

namespace {

// Reads one whole message: its header into `h`, the rest into `payload`. False ends the
// session: the peer closed, or the message is too long or too slow (logged). With
// `header_within` set (a SASL conversation is waiting), the header must come in time too.
template <class Input>
asio::awaitable<bool> read_message(Input& input, wire::header& h, std::vector<uint8_t>& payload,
                                   asio::steady_timer& deadline, std::chrono::milliseconds timeout,
                                   int32_t id,
                                   std::optional<std::chrono::milliseconds> header_within) {
    std::array<uint8_t, wire::header_size> head;
    boost::system::error_code ec;
    std::size_t n = 0;
    if (header_within && input.in_avail() < head.size()) {
        deadline.expires_after(*header_within);
        auto first = co_await (asio::async_read(input, asio::buffer(head), use_tuple) ||
                               deadline.async_wait(use_tuple));
        if (first.index() == 1) {
            std::cerr << "mongo-standin: connection " << id
                      << ": authentication conversation not finished in time, closing\n";
            co_return false;
        }
        std::tie(ec, n) = std::get<0>(first);
    } else {
        std::tie(ec, n) = co_await asio::async_read(input, asio::buffer(head), use_tuple);
    }
    if (ec) co_return false;  // closed, reset or dropped: nothing to report
    h = wire::parse_header(head);
    if (h.length < int32_t(wire::header_size) || h.length > wire::max_message_size) {
        std::cerr << "mongo-standin: connection " << id << ": bad message length " << h.length
                  << ", closing\n";
        co_return false;
    }
    payload.resize(std::size_t(h.length) - wire::header_size);
    if (input.in_avail() >= payload.size()) {
        std::tie(ec, n) = co_await asio::async_read(input, asio::buffer(payload), use_tuple);
        co_return !ec;
    }
    // The rest of a started message must arrive in time: a peer that stops mid-message
    // would otherwise hold this coroutine and its buffer for ever.
    deadline.expires_after(timeout);
    auto first = co_await (asio::async_read(input, asio::buffer(payload), use_tuple) ||
                           deadline.async_wait(use_tuple));
    if (first.index() == 1) {
        std::cerr << "mongo-standin: connection " << id << ": incomplete message after "
                  << timeout.count() << " ms, closing\n";
        co_return false;
    }
    co_return !std::get<0>(std::get<0>(first));
}

// The topologyVersion.counter a hello reply carries (-1 without one: the next wait of an
// exhaust stream then ends at once).
int64_t topology_counter(const bson_t* reply) {
    bson_iter_t it, counter;
    if (bson_iter_init(&it, reply) &&
        bson_iter_find_descendant(&it, "topologyVersion.counter", &counter) &&
        BSON_ITER_HOLDS_INT64(&counter))
        return bson_iter_int64(&counter);
    return -1;
}

}  // namespace

asio::awaitable<void> server::session(tcp::socket socket, int32_t id, int member) {
    auto conn = std::make_shared<connection_registry::live>(
        connection_registry::live{socket});  // no aggregate ()-init in clang 14
    auto& registry = *connections_[static_cast<std::size_t>(member)];
    const uint64_t key = registry.add(socket.get_executor(), conn);
    struct unregister {
        connection_registry& r;
        uint64_t key;
        ~unregister() { r.remove(key); }
    } guard{registry, key};

    if (!tls_) co_return co_await serve(socket, socket, id, member);

    asio::ssl::stream<tcp::socket&> stream(socket, *tls_);
    asio::steady_timer deadline(socket.get_executor());
    deadline.expires_after(message_timeout_);
    auto first = co_await (stream.async_handshake(asio::ssl::stream_base::server, use_tuple) ||
                           deadline.async_wait(use_tuple));
    if (first.index() == 1) {
        std::cerr << "mongo-standin: connection " << id << ": no TLS handshake in time, closing\n";
        co_return;
    }
    if (auto [ec] = std::get<0>(first); ec) {
        // A plain client, an unknown CA, a missing client certificate: one line, one close.
        std::cerr << "mongo-standin: connection " << id
                  << ": TLS handshake failed: " << ec.message() << ", closing\n";
        co_return;
    }
    co_await serve(stream, socket, id, member);
}

template <class Stream>
asio::awaitable<void> server::serve(Stream& stream, tcp::socket& socket, int32_t id, int member) {
    services svc = svc_;  // this connection's member of the set (0 when standalone)
    svc.member = member;
    // Reads go through a buffer: a header and its small body cost one recv, not two.
    asio::buffered_read_stream<Stream&> input(stream, 64 * 1024);
    asio::steady_timer latency_timer(socket.get_executor()), deadline(socket.get_executor());
    std::vector<uint8_t> payload, out;
    int32_t next_reply_id = 1;
    auth_state auth;
    for (;;) {
        // One big insert must not pin its buffer for the life of a pooled connection.
        constexpr std::size_t kept_buffer = 1024 * 1024;
        if (payload.capacity() > kept_buffer) payload = {};
        if (out.capacity() > kept_buffer) out = {};

        std::optional<std::chrono::milliseconds> header_within;
        if (auth.in_conversation()) header_within = auth_timeout_;
        wire::header h;
        if (!co_await read_message(input, h, payload, deadline, message_timeout_, id,
                                   header_within))
            co_return;
        auto parsed = wire::parse_request(h, payload);
        if (!parsed.ok) {
            std::cerr << "mongo-standin: connection " << id << ": " << parsed.error
                      << ", closing\n";
            co_return;
        }
        // A member killed or cut off while this connection was being set up or its message
        // was on the way: its clients are gone.
        if (!serving(member)) co_return;
        const wire::request& req = *parsed.ok;
        bson_doc reply;
        command_result result = run_command(svc, req.body(), id, auth, reply.get());
        const std::optional<hello_wait> awaitable = result.wait;
        if (awaitable && awaitable->must_wait) {
            // Awaitable hello: answered when the set changes or the wait is over.
            co_await svc.rs->wait_for_change(awaitable->counter, awaitable->max_wait);
            if (!socket.is_open() || !serving(member)) co_return;
            reply = bson_doc{};
            result = run_command(svc, req.body(), id, auth, reply.get(), false);
        }
        if (req.more_to_come) continue;

        // An awaitable hello with exhaustAllowed (a streaming monitor) gets a stream: each
        // reply has moreToCome and answers the one before it, and the next one is sent when
        // the set changes or maxAwaitTimeMS has passed. The client sends nothing more here.
        const bool exhaust = awaitable && req.exhaust_allowed;
        int32_t response_to = req.request_id;
        for (;;) {
            if (int ms = svc_.faults.latency_ms(); ms > 0) {
                latency_timer.expires_after(std::chrono::milliseconds(ms));
                co_await latency_timer.async_wait(use_tuple);
                if (!socket.is_open()) co_return;  // dropped while waiting
            }
            const int32_t reply_id = next_reply_id++;
            if (req.legacy)
                wire::build_op_reply(out, reply_id, response_to, reply.get());
            else
                wire::build_op_msg(out, reply_id, response_to, reply.get(), exhaust);
            auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
            if (ec) co_return;
            if (result.drop_connections) close_all();
            if (!exhaust) break;
            response_to = reply_id;
            co_await svc.rs->wait_for_change(topology_counter(reply.get()), awaitable->max_wait);
            if (!socket.is_open() || !serving(member)) co_return;
            reply = bson_doc{};
            result = run_command(svc, req.body(), id, auth, reply.get(), false);
        }
    }
}

void server::close_all() {
    for (auto& registry : connections_) registry->close_all();
}

asio::awaitable<void> server::drop_all_and_wait() {
    close_all();
    co_await flush_contexts();
}

asio::awaitable<void> server::flush_contexts() {
    // Each context runs one thread in FIFO order: once a no-op posted after the closes
    // has run there, the closes have too.
    for (auto* ctx : contexts_)
        co_await asio::co_spawn(
            *ctx, []() -> asio::awaitable<void> { co_return; }, asio::use_awaitable);
}

namespace {

template <typename T>
bool parse_number(std::string_view word, T& out) {
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), out);
    return ec == std::errc() && end == word.data() + word.size();
}

}  // namespace

std::string server::state_line() const {
    std::size_t open = 0;
    for (const auto& registry : connections_) open += registry->size();
    auto st = svc_.faults.state();
    std::ostringstream out;
    out << "ok latency=" << st.latency_ms << " refuse=" << (st.refusing ? "on" : "off")
        << " fail=" << st.fail_remaining << " code=" << st.fail_code << " connections=" << open;
    if (svc_.rs) out << ' ' << svc_.rs->describe();
    return out.str();
}

std::string server::replset_control(const std::string& verb, std::istream& in, then& next) {
    replica_set& rs = *svc_.rs;
    std::string error;
    if (verb == "stepdown") {
        error = rs.step_down();
    } else if (verb != "rs") {
        std::string word;
        int member = -1;
        if (!(in >> word) || !parse_number(word, member)) return "error usage: " + verb + " MEMBER";
        if (verb == "kill") error = rs.kill(member);
        if (verb == "revive") error = rs.revive(member);
        if (verb == "partition") error = rs.partition(member);
        if (verb == "heal") error = rs.heal(member);
        // Answer once the member's connections are closed, as "drop" does.
        if (error.empty() && (verb == "kill" || verb == "partition")) next = then::flush_closes;
    }
    return error.empty() ? state_line() : "error " + error;
}

std::string server::apply_control(std::string_view line, then& next) {
    std::istringstream in{std::string(line)};
    std::string verb, a, b;
    in >> verb;
    if (svc_.rs && (verb == "rs" || verb == "stepdown" || verb == "kill" || verb == "revive" ||
                    verb == "partition" || verb == "heal"))
        return replset_control(verb, in, next);
    if (verb == "latency") {
        int ms = 0;
        if (!(in >> a) || !parse_number(a, ms) || ms < 0) return "error usage: latency MS";
        svc_.faults.set_latency_ms(ms);
    } else if (verb == "refuse") {
        in >> a;
        if (a != "on" && a != "off") return "error usage: refuse on|off";
        svc_.faults.set_refusing(a == "on");
    } else if (verb == "drop") {
        next = then::drop_all;
    } else if (verb == "fail") {
        int n = 0;
        int32_t code = 0;
        if (!(in >> a >> b) || !parse_number(a, n) || !parse_number(b, code) || n < 0)
            return "error usage: fail N CODE [message]";
        std::string message;
        std::getline(in >> std::ws, message);
        if (message.empty()) message = "injected by mongo-standin";
        svc_.faults.fail_next(n, code, std::move(message));
    } else if (verb != "state") {
        return "error unknown control '" + verb + "' (latency, refuse, drop, fail, state" +
               (svc_.rs ? ", rs, stepdown, kill, revive, partition, heal)" : ")");
    }
    return state_line();
}

asio::awaitable<void> server::control_loop(int fd, std::function<void()> stop) {
    asio::posix::stream_descriptor input(co_await asio::this_coro::executor, fd);
    asio::streambuf buffer(4096);  // a longer line is an error, and ends the loop
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(input, buffer, '\n', use_tuple);
        if (ec) break;
        std::string line(asio::buffers_begin(buffer.data()),
                         asio::buffers_begin(buffer.data()) + std::ptrdiff_t(n) - 1);
        buffer.consume(n);
        if (line.empty()) continue;
        then next = then::answer;
        std::string answer = apply_control(line, next);
        if (next == then::drop_all) {
            co_await drop_all_and_wait();
            answer = state_line();
        } else if (next == then::flush_closes) {
            co_await flush_contexts();
            answer = state_line();
        }
        std::cout << answer << std::endl;
    }
    input.release();  // stdin stays open: it is not ours to close
    std::cerr << "mongo-standin: end of control input, stopping\n";
    stop();
}

}  // namespace standin
