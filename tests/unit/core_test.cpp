// Unit tests of the server's pure logic (routes, ids, configuration) and of the blocking
// pool's hand-off, driven on a real io_context.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <coroserve/blocking_pool.hpp>
#include <future>
#include <map>
#include <stdexcept>
#include <thread>

#include "config.hpp"
#include "log_limiter.hpp"
#include "metrics.hpp"
#include "router.hpp"

namespace asio = boost::asio;
using namespace coroserve;
using namespace std::chrono_literals;

namespace {

// Runs `ctx` until the coroutine is done (other work may stay pending) and rethrows what it
// threw. Bounded: a coroutine that never finishes fails the test instead of hanging it.
template <class T>
T run_coro(asio::io_context& ctx, asio::awaitable<T> coro) {
    std::future<T> result = asio::co_spawn(ctx, std::move(coro), asio::use_future);
    for (int i = 0; i < 1000 && result.wait_for(0s) != std::future_status::ready; ++i) {
        ctx.run_for(10ms);
        if (ctx.stopped()) ctx.restart();
    }
    REQUIRE(result.wait_for(0s) == std::future_status::ready);
    return result.get();
}

parsed_config parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
    return parse_config(args, [&](const char* name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional{it->second};
    });
}

}  // namespace

TEST_CASE("routes: each path maps to its route, with its parameters", "[unit]") {
    CHECK(match_route("GET", "/mongo").id == route::mongo);
    CHECK(match_route("HEAD", "/json").id == route::json);
    auto m = match_route("GET", "/mongo/big/5377cba55f41d42bc973d506");
    CHECK(m.id == route::mongo_document);
    CHECK(m.collection == "big");
    CHECK(m.id_text == "5377cba55f41d42bc973d506");
    CHECK(match_route("GET", "/mongo/small").collection == "small");
    auto s = match_route("GET", "/sleep/async?ms=5");
    CHECK(s.id == route::sleep_async);
    CHECK(s.query == "ms=5");
    CHECK(match_route("GET", "/metrics").id == route::metrics);
    CHECK(match_route("GET", "/healthz").id == route::healthz);
    CHECK(match_route("GET", "/readyz").id == route::readyz);
}

TEST_CASE("routes: unknown paths are 404, wrong methods 405, other targets 400", "[unit]") {
    for (auto target : {"/", "/mongo/a/b/c", "/jsonx", "/json/", "//json", "/sleep/sync"}) {
        auto m = match_route("GET", target);
        INFO(target);
        CHECK(m.id == route::none);
        CHECK(m.status == 404);
    }
    for (auto method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
        auto m = match_route(method, "/mongo");
        CHECK(m.id == route::none);
        CHECK(m.status == 405);
    }
    CHECK(match_route("GET", "http://host/mongo").status == 400);
    CHECK(match_route("GET", "*").status == 400);
    CHECK(match_route("GET", "").status == 400);
}

TEST_CASE("ids: 24 hex digits are an ObjectId, other safe names a string, the rest refused",
          "[unit]") {
    auto oid = parse_document_id("5377cba55f41d42bc973d506");
    REQUIRE(oid);
    CHECK(oid->object_id);
    auto str = parse_document_id("my-id_1");
    REQUIRE(str);
    CHECK_FALSE(str->object_id);
    CHECK(str->value == "my-id_1");
    CHECK_FALSE(parse_document_id("5377cba55f41d42bc973d50g")->object_id);  // 'g': a string id
    for (auto bad : {"", "..", "a.b", "$gt", "{\"$ne\":1}", "a%20b", "a b", "a/b", "\xc3\xa9"})
        CHECK_FALSE(parse_document_id(bad));
    CHECK_FALSE(parse_document_id(std::string(129, 'a')));
}

TEST_CASE("collection names: letters, digits, '_' and '-' only", "[unit]") {
    CHECK(valid_collection_name("articles"));
    CHECK(valid_collection_name("big_doc-2"));
    for (std::string bad : {"", "system.users", "$cmd", "a b", ".."})
        CHECK_FALSE(valid_collection_name(bad));
    CHECK_FALSE(valid_collection_name(std::string(65, 'a')));
}

TEST_CASE("query: whole unsigned numbers only", "[unit]") {
    CHECK(query_uint("ms=250", "ms") == 250u);
    CHECK(query_uint("x=1&ms=7", "ms") == 7u);
    CHECK_FALSE(query_uint("ms=", "ms"));
    CHECK_FALSE(query_uint("ms=-1", "ms"));
    CHECK_FALSE(query_uint("ms=1e3", "ms"));
    CHECK_FALSE(query_uint("mss=1", "ms"));
    CHECK_FALSE(query_uint("", "ms"));
}

TEST_CASE("error replies are JSON with the status", "[unit]") {
    auto r = error_reply(404, "no \"such\" document");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"no \"such\" document","status":404})");
}

TEST_CASE("config: defaults, flags over environment, clear refusals", "[unit]") {
    auto d = parse({});
    REQUIRE(d.cfg);
    CHECK(d.cfg->port == 5000);
    CHECK(d.cfg->host == "0.0.0.0");
    CHECK(d.cfg->mongodb_uri == "mongodb://127.0.0.1:27017");
    CHECK(d.cfg->collections == std::vector<std::string>{"articles", "small", "big"});
    CHECK_FALSE(d.cfg->demo_endpoints);
    // Every open connection may have a job waiting; refusals come from queueing delay.
    CHECK(d.cfg->resolved_queue() == d.cfg->max_connections);
    CHECK(d.cfg->resolved_admission_target() == d.cfg->db_timeout / 4);

    auto e =
        parse({"--workers", "4"}, {{"COROSERVE_WORKERS", "8"}, {"MONGODB_URI", "mongodb://db:1"}});
    REQUIRE(e.cfg);
    CHECK(e.cfg->workers == 4);  // the flag wins
    CHECK(e.cfg->mongodb_uri == "mongodb://db:1");

    auto f = parse({"--port=0", "--collections", "a,b-c", "--access-log", "--io-model", "shared",
                    "--db-timeout-ms", "150"});
    REQUIRE(f.cfg);
    CHECK(f.cfg->port == 0);
    CHECK(f.cfg->collections == std::vector<std::string>{"a", "b-c"});
    CHECK(f.cfg->access_log);
    CHECK_FALSE(f.cfg->reuse_port);
    CHECK(f.cfg->db_timeout == 150ms);
    CHECK(f.cfg->resolved_admission_target() == 37ms);

    auto g = parse({"--demo-endpoints", "--max-connections", "20000", "--admission-target-ms", "0",
                    "--admission-interval-ms", "250"});
    REQUIRE(g.cfg);
    CHECK(g.cfg->demo_endpoints);
    CHECK(g.cfg->resolved_queue() == 20000);
    CHECK(g.cfg->resolved_admission_target() == 0ms);
    CHECK(g.cfg->admission_interval == 250ms);
    CHECK(parse({"--queue", "0"}).cfg->resolved_queue() == 0);

    for (auto args : std::vector<std::vector<const char*>>{{"--port", "70000"},
                                                           {"--workers", "0"},
                                                           {"--workers", "x"},
                                                           {"--port"},
                                                           {"--nope"},
                                                           {"--collections", "a,,b"},
                                                           {"--collections", "a.b"},
                                                           {"--io-model", "other"},
                                                           {"--header-timeout-ms", "-5"},
                                                           {"--admission-target-ms", "x"},
                                                           {"--admission-interval-ms", "0"},
                                                           {"--queue", "-1"}}) {
        auto bad = parse(args);
        INFO(args[0]);
        CHECK_FALSE(bad.cfg);
        CHECK_FALSE(bad.help);
        CHECK_THAT(bad.message, Catch::Contains(args[0]));
    }
    auto env_bad = parse({}, {{"COROSERVE_PORT", "http"}});
    CHECK_FALSE(env_bad.cfg);
    CHECK_THAT(env_bad.message, Catch::Contains("COROSERVE_PORT"));

    auto help = parse({"--help"});
    CHECK(help.help);
    CHECK_THAT(help.message, Catch::Contains("--mongodb-uri") && Catch::Contains("MONGODB_URI"));
}

TEST_CASE("URIs are logged without their password", "[unit]") {
    CHECK(redact_uri("mongodb://user:s3cret@db.example:27017/articles?authSource=admin") ==
          "mongodb://user:***@db.example:27017/articles?authSource=admin");
    CHECK(redact_uri("mongodb+srv://u:p%40ss@cluster0/") == "mongodb+srv://u:***@cluster0/");
    CHECK(redact_uri("mongodb://127.0.0.1:27017") == "mongodb://127.0.0.1:27017");
    CHECK(redact_uri("mongodb://onlyuser@h/") == "mongodb://onlyuser@h/");
    CHECK(redact_uri("mongodb://a:b@h1,c@h2/") == "mongodb://a:***@h2/");
}

TEST_CASE("pool: the result comes back on the caller's executor thread", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{2, 4};
    auto caller = std::this_thread::get_id();
    auto [worker, resumed] =
        run_coro(ctx, [&]() -> asio::awaitable<std::pair<std::thread::id, std::thread::id>> {
            auto id = co_await pool.run([] { return std::this_thread::get_id(); });
            co_return std::pair{id, std::this_thread::get_id()};
        }());
    CHECK(worker != caller);   // ran on a pool thread
    CHECK(resumed == caller);  // and came back to the io_context's thread
}

TEST_CASE("pool: a worker's exception is rethrown in the coroutine", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 1};
    auto coro = [&]() -> asio::awaitable<int> {
        co_return co_await pool.run([]() -> int { throw std::domain_error{"from the worker"}; });
    };
    CHECK_THROWS_MATCHES(run_coro(ctx, coro()), std::domain_error,
                         Catch::Message("from the worker"));
    // void jobs too
    auto v = [&]() -> asio::awaitable<void> {
        co_await pool.run([] { throw std::logic_error{"void"}; });
    };
    CHECK_THROWS_AS(run_coro(ctx, v()), std::logic_error);
}

TEST_CASE("pool: beyond workers + queue, run() throws pool_overloaded at once", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 1};
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<int> done{0}, overloaded{0};
    auto wait_for_gate = [gate] { gate.wait(); };
    auto job = [&]() -> asio::awaitable<void> {
        try {
            co_await pool.run(wait_for_gate);
            ++done;
        } catch (const pool_overloaded& e) {
            if (e.why == refusal::queue_full) ++overloaded;
        }
    };
    for (int i = 0; i < 5; ++i) asio::co_spawn(ctx, job(), asio::detached);
    // 1 running + 1 queued are admitted; the other 3 are refused without waiting.
    auto until = std::chrono::steady_clock::now() + 5s;
    while (overloaded < 3 && std::chrono::steady_clock::now() < until) ctx.run_for(10ms);
    CHECK(overloaded == 3);
    CHECK(done == 0);
    CHECK(pool.rejected(refusal::queue_full) == 3);
    release.set_value();
    while (done < 2 && std::chrono::steady_clock::now() < until) ctx.run_for(10ms);
    CHECK(done == 2);
}

TEST_CASE("pool: a job still queued at its deadline is refused then and never runs", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 4, {.target = 0ms}};
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<int> ran{0};
    auto wait_for_gate = [gate] { gate.wait(); };
    auto blocker = [&]() -> asio::awaitable<void> { co_await pool.run(wait_for_gate); };
    auto late = [&]() -> asio::awaitable<refusal> {
        try {
            co_await pool.run([&ran] { ++ran; },
                              {.deadline = std::chrono::steady_clock::now() + 100ms});
        } catch (const pool_overloaded& e) {
            co_return e.why;
        }
        co_return refusal::queue_full;
    };
    asio::co_spawn(ctx, blocker(), asio::detached);
    const auto start = std::chrono::steady_clock::now();
    // Answered while the only worker is still held: the pool does not wait for a worker.
    CHECK(run_coro(ctx, late()) == refusal::deadline);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= 100ms);
    CHECK(waited < 2s);
    CHECK(pool.rejected(refusal::deadline) == 1);
    CHECK(pool.queued() == 0);
    release.set_value();
    pool.shutdown();
    ctx.run();
    CHECK(ran == 0);
}

TEST_CASE("pool: refuses by queueing delay once it stays over the target, admits again after",
          "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 100, {.target = 200ms, .interval = 100ms}};
    std::promise<void> release;
    auto gate = release.get_future().share();
    auto wait_for_gate = [gate] { gate.wait(); };
    std::atomic<int> done{0};
    auto job = [&]() -> asio::awaitable<void> {
        co_await pool.run([] {});
        ++done;
    };
    auto refused_for = [&]() -> asio::awaitable<std::optional<refusal>> {
        try {
            co_await pool.run([] {});
        } catch (const pool_overloaded& e) {
            co_return e.why;
        }
        co_return std::nullopt;
    };
    auto blocker = [&]() -> asio::awaitable<void> { co_await pool.run(wait_for_gate); };
    asio::co_spawn(ctx, blocker(), asio::detached);
    ctx.run_for(20ms);
    asio::co_spawn(ctx, job(), asio::detached);  // waits behind the blocker
    ctx.run_for(50ms);
    // The oldest queued job has waited less than the target: admitted.
    asio::co_spawn(ctx, job(), asio::detached);
    ctx.run_for(400ms);
    // Now the head has waited past the target for longer than the interval: refused at once.
    CHECK(run_coro(ctx, refused_for()) == refusal::queue_delay);
    CHECK(pool.rejected(refusal::queue_delay) == 1);
    CHECK(pool.rejected(refusal::queue_full) == 0);
    release.set_value();
    auto until = std::chrono::steady_clock::now() + 5s;
    while (done < 2 && std::chrono::steady_clock::now() < until) ctx.run_for(10ms);
    CHECK(done == 2);
    // The queue drained: jobs are admitted again.
    CHECK(run_coro(ctx, refused_for()) == std::nullopt);
}

TEST_CASE("pool: jobs that wait less than the target are never refused", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{2, 1000, {.target = 1000ms, .interval = 1ms}};
    std::atomic<int> done{0}, refused{0};
    auto job = [&]() -> asio::awaitable<void> {
        try {
            co_await pool.run([] { std::this_thread::sleep_for(100us); });
            ++done;
        } catch (const pool_overloaded&) {
            ++refused;
        }
    };
    // 1000 jobs queued at once (a long queue), each served quickly.
    for (int i = 0; i < 1000; ++i) asio::co_spawn(ctx, job(), asio::detached);
    auto until = std::chrono::steady_clock::now() + 20s;
    while (done + refused < 1000 && std::chrono::steady_clock::now() < until) ctx.run_for(10ms);
    CHECK(refused == 0);
    CHECK(done == 1000);
}

TEST_CASE("pool: cancelling the await skips a job that has not started", "[unit]") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context ctx;
    blocking_pool pool{1, 4};
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<int> ran{0};
    auto wait_for_gate = [gate] { gate.wait(); };
    auto blocker = [&]() -> asio::awaitable<void> { co_await pool.run(wait_for_gate); };
    auto queued_then_timed_out = [&]() -> asio::awaitable<bool> {
        asio::steady_timer t{co_await asio::this_coro::executor, 50ms};
        auto r = co_await (pool.run([&ran] { return ++ran; }) || t.async_wait(asio::use_awaitable));
        co_return r.index() == 1;  // the timer won
    };
    asio::co_spawn(ctx, blocker(), asio::detached);
    CHECK(run_coro(ctx, queued_then_timed_out()));
    release.set_value();
    pool.shutdown();
    ctx.run();
    CHECK(ran == 0);  // the worker dropped the cancelled job
}

TEST_CASE("pool: shutdown with jobs queued completes them with pool_stopped", "[unit]") {
    asio::io_context ctx;
    auto pool = std::make_unique<blocking_pool>(1, 8);
    std::promise<void> started, release;
    auto gate = release.get_future().share();
    std::atomic<int> stopped{0}, finished{0};
    auto start_then_wait = [&started, gate] {
        started.set_value();
        gate.wait();
    };
    auto running = [&]() -> asio::awaitable<void> {
        co_await pool->run(start_then_wait);
        ++finished;
    };
    auto waiting = [&]() -> asio::awaitable<void> {
        try {
            co_await pool->run([] {});
        } catch (const pool_stopped&) {
            ++stopped;
        }
    };
    asio::co_spawn(ctx, running(), asio::detached);
    ctx.run_for(10ms);
    started.get_future().wait();
    for (int i = 0; i < 3; ++i) asio::co_spawn(ctx, waiting(), asio::detached);
    ctx.run_for(10ms);
    CHECK(pool->queued() == 3);
    std::thread stopper{[&] { pool->shutdown(); }};  // waits for the running job
    std::this_thread::sleep_for(20ms);
    release.set_value();
    stopper.join();
    ctx.run();
    CHECK(finished == 1);  // the running job was allowed to finish
    CHECK(stopped == 3);
}

TEST_CASE("metrics: counters by route and status, and a histogram", "[unit]") {
    metrics m;
    blocking_pool pool{1, 1};
    m.observe(route::json, 200, 300us);
    m.observe(route::json, 200, 2ms);
    m.observe(route::mongo, 503, 1ms);
    m.observe(route::none, 418, 1ms);
    auto text = m.render(pool);
    CHECK_THAT(text, Catch::Contains(R"(coroserve_requests_total{route="/json",status="200"} 2)"));
    CHECK_THAT(text, Catch::Contains(R"(coroserve_requests_total{route="/mongo",status="503"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(coroserve_requests_total{route="none",status="other"} 1)"));
    CHECK_THAT(text,
               Catch::Contains(R"(coroserve_request_duration_seconds_bucket{le="0.0005"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(coroserve_request_duration_seconds_bucket{le="+Inf"} 4)"));
    CHECK_THAT(text, Catch::Contains("coroserve_pool_workers 1"));
}

namespace {

// A connected loopback TCP pair: {client, server side}.
std::pair<int, int> tcp_pair() {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    int client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    int server = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    REQUIRE(server >= 0);
    return {client, server};
}

}  // namespace

TEST_CASE("pool: a queued job whose client reset its connection is skipped", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 4};
    std::promise<void> release;
    auto gate = release.get_future().share();
    auto [client, server_side] = tcp_pair();
    std::atomic<int> ran{0};
    auto wait_for_gate = [gate] { gate.wait(); };
    auto blocker = [&]() -> asio::awaitable<void> { co_await pool.run(wait_for_gate); };
    auto for_client = [&, fd = server_side]() -> asio::awaitable<bool> {
        try {
            co_await pool.run([&ran] { ++ran; }, {.client_fd = fd});
        } catch (const client_gone&) {
            co_return true;
        }
        co_return false;
    };
    asio::co_spawn(ctx, blocker(), asio::detached);
    auto skipped = asio::co_spawn(ctx, for_client(), asio::use_future);
    ctx.run_for(20ms);
    linger abort_on_close{1, 0};  // close with a reset, as a vanished client's kernel would
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    ::close(client);
    std::this_thread::sleep_for(20ms);
    release.set_value();
    for (int i = 0; i < 500 && skipped.wait_for(0s) != std::future_status::ready; ++i)
        ctx.run_for(10ms);
    REQUIRE(skipped.wait_for(0s) == std::future_status::ready);
    CHECK(skipped.get());
    CHECK(ran == 0);
    CHECK(pool.skipped() == 1);
    ::close(server_side);
}

TEST_CASE("pool: a client that only half-closed still gets its job run", "[unit]") {
    asio::io_context ctx;
    blocking_pool pool{1, 4};
    auto [client, server_side] = tcp_pair();
    ::shutdown(client, SHUT_WR);  // FIN: it may still be reading
    std::this_thread::sleep_for(20ms);
    CHECK(run_coro(ctx, pool.run([] { return 42; }, {.client_fd = server_side})) == 42);
    CHECK(pool.skipped() == 0);
    ::close(client);
    ::close(server_side);
}

TEST_CASE("log_limiter lets one line a second through and counts the ones it held back", "[unit]") {
    log_limiter limit;
    REQUIRE(limit.allow() == 0u);  // the first line goes out
    for (int i = 0; i < 5; ++i) REQUIRE_FALSE(limit.allow().has_value());
    std::this_thread::sleep_for(1100ms);
    REQUIRE(limit.allow() == 5u);  // the next second's line says how many were dropped
    REQUIRE_FALSE(limit.allow().has_value());
}
