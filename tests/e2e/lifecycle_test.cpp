// The process as a whole: graceful shutdown on SIGTERM/SIGINT with requests in flight, the
// drain deadline, refusal of bad flags at start, and /metrics counters that move.
#include <signal.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// True once a connection to the port is refused (polls for up to `patience`).
bool refuses_connections(unsigned short port, std::chrono::milliseconds patience) {
    const auto deadline = clock_type::now() + patience;
    for (;;) {
        if (!connection::try_connect(port, 1s)) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace

TEST_CASE("SIGTERM with requests in flight: each completes, idle ones close, exit 0",
          "[e2e][mongo]") {
    database db;
    server srv{db.uri(), {"--workers", "8", "--drain-timeout-ms", "5000", "--demo-endpoints"}};
    const auto port = srv.port();

    std::vector<connection> idle;
    for (int i = 0; i < 3; ++i) {
        idle.emplace_back(port);
        REQUIRE(idle.back().get("/mongo").status == 200);  // kept alive, now idle
    }
    std::vector<connection> busy;
    std::vector<std::string> targets;
    for (int i = 0; i < 6; ++i) targets.push_back("/sleep?ms=1500");        // on the pool
    for (int i = 0; i < 3; ++i) targets.push_back("/sleep/async?ms=1500");  // on a timer
    for (const auto& t : targets) {
        busy.emplace_back(port);
        busy.back().send(get_request(t));
    }
    REQUIRE(wait_for_metric(port, "coroserve_pool_busy", 6) == 6);

    srv.process().send_signal(SIGTERM);
    const auto signalled = clock_type::now();

    // Idle connections are closed at once, without an answer.
    for (auto& c : idle) {
        REQUIRE(c.wait_closed(3s));
        REQUIRE(c.pending().empty());
    }
    // No new connections.
    REQUIRE(refuses_connections(port, 3s));
    // Every request in flight completes, told that the connection closes.
    for (std::size_t i = 0; i < busy.size(); ++i) {
        INFO("in-flight request " << i << ": " << targets[i]);
        auto r = busy[i].expect_response(10s);
        REQUIRE(r.status == 200);
        REQUIRE(parse(r.body).at("slept_ms") == 1500);
        REQUIRE(r.closes());
        REQUIRE(busy[i].wait_closed(5s));
    }
    auto status = srv.process().wait(10s);
    REQUIRE(status);
    REQUIRE(status->exited);
    REQUIRE(status->code == 0);
    auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - signalled)
            .count();
    INFO("exited " << elapsed << " ms after SIGTERM");
    CHECK(elapsed < 4500);  // done when the last request is, not at the 5 s drain deadline
}

TEST_CASE("SIGTERM with pool jobs still queued: they run and are answered", "[e2e]") {
    server srv{no_database_uri, {"--workers", "1", "--queue", "8", "--demo-endpoints"}};
    std::vector<connection> conns;
    for (int i = 0; i < 3; ++i) {
        conns.emplace_back(srv.port());
        conns.back().send(get_request("/sleep?ms=800"));
    }
    REQUIRE(wait_for_metric(srv.port(), "coroserve_pool_queue_depth", 2) == 2);
    srv.process().send_signal(SIGTERM);
    for (auto& c : conns) {
        auto r = c.expect_response(10s);
        REQUIRE(r.status == 200);
        REQUIRE(r.closes());
    }
    auto status = srv.process().wait(10s);
    REQUIRE(status);
    REQUIRE(status->ok());
}

TEST_CASE("A blocking job past the drain deadline: the server still exits cleanly", "[e2e]") {
    server srv{no_database_uri,
               {"--drain-timeout-ms", "200", "--workers", "1", "--demo-endpoints"}};
    connection c{srv.port()};
    c.send(get_request("/sleep?ms=1500"));
    REQUIRE(wait_for_metric(srv.port(), "coroserve_pool_busy", 1) == 1);
    srv.process().send_signal(SIGTERM);
    std::optional<test_support::exit_status> status;
    auto elapsed = time_ms([&] { status = srv.process().wait(10s); });
    INFO("exited " << elapsed << " ms after SIGTERM");
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    // The running job cannot be interrupted: the exit waits for it, not longer.
    CHECK(elapsed < 5000);
    REQUIRE(c.wait_closed(3s));
}

TEST_CASE("SIGINT on an idle server: prompt exit 0", "[e2e]") {
    server srv{no_database_uri};
    connection c{srv.port()};
    REQUIRE(c.get("/json").status == 200);
    srv.process().send_signal(SIGINT);
    REQUIRE(c.wait_closed(3s));
    auto status = srv.process().wait(5s);
    REQUIRE(status);
    REQUIRE(status->ok());
}

TEST_CASE("SIGTERM right after the port is printed: still a clean exit 0", "[e2e]") {
    // Scripts and tests signal as soon as they have the port: the signal must not find the
    // server before its handler exists (that once killed it by signal 15).
    for (int i = 0; i < 10; ++i) {
        server srv{no_database_uri};
        srv.process().send_signal(SIGTERM);
        auto status = srv.process().wait(5s);
        REQUIRE(status);
        INFO("start " << i << ": exited " << status->exited << " code " << status->code
                      << " signal " << status->signal);
        REQUIRE(status->ok());
    }
}

TEST_CASE("A pipelined request behind one in flight at SIGTERM is not started", "[e2e]") {
    server srv{no_database_uri, {"--demo-endpoints"}};
    connection c{srv.port()};
    c.send(get_request("/sleep/async?ms=400") + get_request("/json"));
    std::this_thread::sleep_for(100ms);
    srv.process().send_signal(SIGTERM);
    auto r = c.expect_response(5s);
    REQUIRE(r.status == 200);
    REQUIRE(r.closes());
    // The second request was read from the socket but the server said it closes: it may not
    // answer it.
    auto next = c.read_response(5s);
    CHECK_FALSE(next);
    auto status = srv.process().wait(5s);
    REQUIRE(status);
    REQUIRE(status->ok());
}

TEST_CASE("Requests longer than --drain-timeout-ms are cut off and the server exits", "[e2e]") {
    server srv{no_database_uri,
               {"--drain-timeout-ms", "300", "--sleep-max-ms", "20000", "--demo-endpoints"}};
    connection c{srv.port()};
    c.send(get_request("/sleep/async?ms=10000"));
    std::this_thread::sleep_for(100ms);
    srv.process().send_signal(SIGTERM);
    std::optional<test_support::exit_status> status;
    auto elapsed = time_ms([&] { status = srv.process().wait(5s); });
    REQUIRE(status);
    CHECK(status->ok());
    CHECK(elapsed >= 250);
    CHECK(elapsed < 3000);
    // The connection ended without an answer.
    REQUIRE(c.wait_closed(3s));
    CHECK(c.pending().empty());
}

TEST_CASE("Bad flags are refused at start with a message and exit code 2", "[e2e]") {
    for (std::vector<std::string> args :
         std::vector<std::vector<std::string>>{{"--port", "abc"},
                                               {"--port", "70000"},
                                               {"--workers", "0"},
                                               {"--io-model", "fancy"},
                                               {"--collections", "a,b/c"},
                                               {"--no-such-flag"},
                                               {"--port"}}) {
        args.insert(args.begin(), server::executable());
        INFO(args[1]);
        test_support::child_process p{args};
        auto status = p.wait(10s);
        REQUIRE(status);
        REQUIRE(status->exited);
        REQUIRE(status->code == 2);
    }
    test_support::child_process help{{server::executable(), "--help"}};
    REQUIRE(help.first_line().starts_with("Usage: coroserve"));
    auto status = help.wait(10s);
    REQUIRE(status);
    REQUIRE(status->ok());
}

TEST_CASE("/metrics counters move as requests are made", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    const std::string json_ok = R"(coroserve_requests_total{route="/json",status="200"})";
    const std::string mongo_ok = R"(coroserve_requests_total{route="/mongo",status="200"})";
    const std::string doc_404 =
        R"(coroserve_requests_total{route="/mongo/{collection}/{id}",status="404"})";
    const std::string none_404 = R"(coroserve_requests_total{route="none",status="404"})";
    const std::string none_405 = R"(coroserve_requests_total{route="none",status="405"})";
    const std::string count = "coroserve_request_duration_seconds_count";

    auto before = get(srv.port(), "/metrics");
    REQUIRE(before.status == 200);
    REQUIRE(before.header("Content-Type")->starts_with("text/plain; version=0.0.4"));
    REQUIRE(before.body.find("# TYPE coroserve_requests_total counter") != std::string::npos);

    connection c{srv.port()};
    for (int i = 0; i < 7; ++i) REQUIRE(c.get("/json").status == 200);
    for (int i = 0; i < 4; ++i) REQUIRE(c.get("/mongo").status == 200);
    for (int i = 0; i < 3; ++i) REQUIRE(c.get("/nope").status == 404);
    for (int i = 0; i < 2; ++i) REQUIRE(c.request("POST", "/json").status == 405);
    REQUIRE(c.get("/mongo/small/000000000000000000000000").status == 404);
    // Read on the same connection: a request is counted once its answer is written, so
    // another connection could read the page before the last answer above was counted.
    auto after = c.get("/metrics");

    auto delta = [&](const std::string& sample) {
        return metric(after.body, sample) - metric(before.body, sample);
    };
    CHECK(delta(json_ok) == 7);
    CHECK(delta(mongo_ok) == 4);
    CHECK(delta(none_404) == 3);
    CHECK(delta(none_405) == 2);
    CHECK(delta(doc_404) == 1);
    CHECK(delta(count) >= 17);
    CHECK(metric(after.body, "coroserve_open_connections") >= 1);
    CHECK(metric(after.body, "coroserve_connections_accepted_total") >= 2);
    // The histogram is cumulative: +Inf holds every request counted.
    CHECK(metric(after.body, R"(coroserve_request_duration_seconds_bucket{le="+Inf"})") ==
          metric(after.body, count));
}

namespace {

// coroserve with stderr sent to the same pipe as stdout, so that the test can read its log.
// The first line is still the port (printed and flushed before anything else).
std::unique_ptr<test_support::child_process> logging_server(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "/bin/sh", "-c", R"(exec "$0" "$@" 2>&1)", server::executable(), "--host", "127.0.0.1",
        "--port",  "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<test_support::child_process>(argv);
}

// The bound port from a logging_server. It is the first line coroserve itself writes, but
// libmongoc's monitor thread may log to the shared pipe before it (seen with libmongoc 1.30):
// the port is the first line that is only digits (bounded wait).
unsigned short port_of(test_support::child_process& p) {
    std::string line = p.first_line();
    const auto deadline = clock_type::now() + 10s;
    while (line.empty() || line.find_first_not_of("0123456789") != std::string::npos) {
        if (clock_type::now() > deadline) throw std::runtime_error("no port line; last: " + line);
        if (auto next = p.read_line(1s)) line = *next;
    }
    return static_cast<unsigned short>(std::stoi(line));
}

// The next log line containing `text`, or nullopt (bounded wait).
std::optional<std::string> find_line(test_support::child_process& p, std::string_view text) {
    const auto deadline = clock_type::now() + 5s;
    while (clock_type::now() < deadline) {
        auto line = p.read_line(1s);
        if (line && line->find(text) != std::string::npos) return line;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("The start-up line hides the MongoDB password", "[e2e]") {
    auto p = logging_server({"--mongodb-uri", "mongodb://alice:s3cr3t-pw@127.0.0.1:1/"});
    REQUIRE(port_of(*p) > 0);
    auto line = find_line(*p, "listening on");
    REQUIRE(line);
    INFO(*line);
    CHECK(line->find("s3cr3t-pw") == std::string::npos);
    CHECK(line->find("alice") != std::string::npos);
    REQUIRE(p->terminate().ok());
}

TEST_CASE("The access log (--access-log) logs each request and is off by default", "[e2e]") {
    {
        auto p = logging_server({"--mongodb-uri", no_database_uri, "--access-log"});
        auto port = port_of(*p);
        REQUIRE(get(port, "/json?from=access-log-test").status == 200);
        REQUIRE(get(port, "/nope").status == 404);
        // Lines are written after the answers, from two I/O threads: in either order.
        std::optional<std::string> json, missing;
        const auto deadline = clock_type::now() + 5s;
        while ((!json || !missing) && clock_type::now() < deadline) {
            auto line = p->read_line(1s);
            if (line && line->find("/json?from=access-log-test") != std::string::npos) json = line;
            if (line && line->find("/nope") != std::string::npos) missing = line;
        }
        REQUIRE(json);
        CHECK(json->find("GET") != std::string::npos);
        CHECK(json->find("200") != std::string::npos);
        REQUIRE(missing);
        CHECK(missing->find("404") != std::string::npos);
        REQUIRE(p->terminate().ok());
    }
    {
        auto p = logging_server({"--mongodb-uri", no_database_uri});
        auto port = port_of(*p);
        REQUIRE(get(port, "/json?from=access-log-test").status == 200);
        p->send_signal(SIGTERM);
        // Everything it logs until it stops: no request line.
        bool logged = false;
        for (int i = 0; i < 50; ++i) {
            auto line = p->read_line(200ms);
            if (!line) {
                if (!p->running()) break;
                continue;
            }
            if (line->find("access-log-test") != std::string::npos) logged = true;
        }
        CHECK_FALSE(logged);
        auto st = p->wait(5s);
        REQUIRE(st);
        REQUIRE(st->ok());
    }
}
