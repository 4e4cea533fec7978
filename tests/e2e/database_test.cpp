// Database faults, injected through the stand-in while the server runs: stopped (503 fast),
// restarted (recovers by itself), slowed past the deadline (504), failing commands (502),
// dropped and refused connections; /readyz follows the database. And a saturated pool: 503 +
// Retry-After at once while requests that need no worker are still served.
#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;

namespace {

void require_json_error(const response& r, unsigned status) {
    INFO("status " << r.status << ", body " << r.body);
    REQUIRE(r.status == status);
    REQUIRE(r.header("Content-Type") == "application/json");
    auto v = parse(r.body);
    REQUIRE(v.at("error").is_string());
    REQUIRE(v.at("status") == status);
}

// Server flags for fault tests: short deadlines so that faults show quickly.
std::vector<std::string> fault_flags() {
    return {"--server-selection-timeout-ms", "500", "--db-timeout-ms", "1000"};
}

}  // namespace

TEST_CASE("Database stopped: 503 quickly, and once restarted the server recovers by itself",
          "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    server srv{db.uri(), fault_flags()};
    connection c{srv.port()};
    REQUIRE(c.get("/mongo").status == 200);
    REQUIRE(c.get("/readyz").status == 200);

    db.standin().stop();
    for (int i = 0; i < 3; ++i) {
        response r;
        auto elapsed = time_ms([&] { r = c.get("/mongo", 10s); });
        INFO("attempt " << i << " took " << elapsed << " ms");
        require_json_error(r, 503);
        REQUIRE(r.has_header("Retry-After"));
        CHECK(elapsed < 3000);
        REQUIRE_FALSE(r.closes());
    }
    auto ready = c.get("/readyz", 10s);
    require_json_error(ready, 503);
    // What needs no database is unaffected.
    REQUIRE(c.get("/json").status == 200);
    REQUIRE(c.get("/healthz").status == 200);
    REQUIRE(metric(c.get("/metrics").body, "coroserve_db_unavailable_total") >= 3);

    db.standin().start();  // same port, no server restart
    auto r = poll_until(srv.port(), "/mongo", 200, 10s);
    REQUIRE(r.status == 200);
    REQUIRE(parse(r.body).at("canonicalUrl").as_string() == "http://foo.com");
    REQUIRE(poll_until(srv.port(), "/readyz", 200, 10s).status == 200);
    // The connection opened before the fault is still served.
    REQUIRE(c.get("/mongo").status == 200);
}

TEST_CASE("Start-up waits for a server, at most the selection timeout, then serves without one",
          "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    db.standin().stop();
    std::unique_ptr<server> srv;
    auto elapsed = time_ms([&] { srv = std::make_unique<server>(db.uri(), fault_flags()); });
    INFO("start-up took " << elapsed << " ms");
    CHECK(elapsed >= 450);  // it waited for the monitor's verdict (the timeout is 500 ms)...
    CHECK(elapsed < 5000);  // ...and not longer
    REQUIRE(get(srv->port(), "/healthz").status == 200);
    require_json_error(get(srv->port(), "/mongo", 10s), 503);

    db.standin().start();
    REQUIRE(poll_until(srv->port(), "/mongo", 200, 10s).status == 200);
}

TEST_CASE("/readyz is 200 with the database up and 503 with it down", "[e2e][mongo]") {
    database db;
    server srv{db.uri(), fault_flags()};
    auto r = get(srv.port(), "/readyz");
    REQUIRE(r.status == 200);
    REQUIRE(parse(r.body).at("status").as_string() == "ready");
    REQUIRE(get(srv.port(), "/healthz").status == 200);
    if (skip_without_standin(db)) return;

    db.standin().stop();
    response down;
    auto elapsed = time_ms([&] { down = get(srv.port(), "/readyz", 10s); });
    require_json_error(down, 503);
    CHECK(elapsed < 3000);
    REQUIRE(get(srv.port(), "/healthz").status == 200);  // alive, just not ready
    db.standin().start();
    REQUIRE(poll_until(srv.port(), "/readyz", 200, 10s).status == 200);

    // A server started while the database is down is alive but not ready.
    db.standin().stop();
    server early{db.uri(), fault_flags()};
    require_json_error(get(early.port(), "/readyz", 10s), 503);
    REQUIRE(get(early.port(), "/healthz").status == 200);
    db.standin().start();
    REQUIRE(poll_until(early.port(), "/readyz", 200, 10s).status == 200);
    REQUIRE(poll_until(early.port(), "/mongo", 200, 10s).status == 200);
}

TEST_CASE("A database slower than --db-timeout-ms gives 504, then recovers", "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    server srv{db.uri(), {"--server-selection-timeout-ms", "500", "--db-timeout-ms", "300"}};
    REQUIRE(get(srv.port(), "/mongo").status == 200);

    db.standin().set_latency_ms(3000);
    response r;
    auto elapsed = time_ms([&] { r = get(srv.port(), "/mongo", 10s); });
    INFO("took " << elapsed << " ms");
    require_json_error(r, 504);
    CHECK(elapsed >= 250);
    CHECK(elapsed < 2500);  // the deadline cut it, the 3000 ms reply was not awaited
    // While it stays slow, every answer is a quick 5xx: never a hang.
    for (int i = 0; i < 3; ++i) {
        auto e = time_ms([&] { r = get(srv.port(), "/mongo", 10s); });
        INFO("slow attempt " << i << ": " << r.status << " in " << e << " ms");
        CHECK((r.status == 504 || r.status == 503));
        CHECK(e < 3000);
    }
    REQUIRE(metric_now(srv.port(), "coroserve_db_timeouts_total") >= 1);

    db.standin().set_latency_ms(0);
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
}

TEST_CASE("Database command errors give 502 with a JSON error, then recover", "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    server srv{db.uri(), fault_flags()};
    connection c{srv.port()};
    REQUIRE(c.get("/mongo").status == 200);

    // The driver's monitor may take an injected failure meant for us (it sends hello now and
    // then): retry a few times rather than race it.
    response r;
    for (int attempt = 0; attempt < 3; ++attempt) {
        db.standin().fail_next(1, 8000, "injected failure with a secret detail");
        r = c.get("/mongo/big");
        if (r.status != 200) break;
    }
    require_json_error(r, 502);
    // Details go to the log, never to the client.
    REQUIRE(r.body.find("secret") == std::string::npos);
    REQUIRE(c.get("/mongo/big").status == 200);

    // Several in a row, each a 502, then back to normal.
    db.standin().fail_next(3, 2, "BadValue injected");
    int errors = 0;
    for (int i = 0; i < 6; ++i) {
        auto a = c.get("/mongo");
        if (a.status == 502)
            ++errors;
        else
            REQUIRE(a.status == 200);
    }
    CHECK(errors >= 2);
    REQUIRE(metric(c.get("/metrics").body, "coroserve_db_errors_total") >= 3);

    // MaxTimeMSExpired (50) from the database is a timeout: 504.
    for (int attempt = 0; attempt < 3; ++attempt) {
        db.standin().fail_next(1, 50, "operation exceeded time limit");
        r = c.get("/mongo");
        if (r.status != 200) break;
    }
    require_json_error(r, 504);
    REQUIRE(c.get("/mongo").status == 200);
}

TEST_CASE("Dropped and refused database connections: quick 5xx, then recovery", "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    server srv{db.uri(), fault_flags()};
    REQUIRE(get(srv.port(), "/mongo").status == 200);

    // Every open database connection dropped: the driver reconnects (or retries the read).
    db.standin().drop_connections();
    for (int i = 0; i < 5; ++i) {
        response r;
        auto e = time_ms([&] { r = get(srv.port(), "/mongo", 10s); });
        INFO("after drop " << i << ": " << r.status << " in " << e << " ms");
        CHECK((r.status == 200 || r.status == 503));
        CHECK(e < 3000);
    }
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);

    // New connections refused and the open ones dropped: 503 without a hang.
    db.standin().refuse_connections(true);
    db.standin().drop_connections();
    response r = poll_until(srv.port(), "/mongo", 503, 10s);
    require_json_error(r, 503);
    auto e = time_ms([&] { r = get(srv.port(), "/mongo", 10s); });
    CHECK(r.status == 503);
    CHECK(e < 3000);
    db.standin().refuse_connections(false);
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
}

TEST_CASE("A saturated pool answers 503 + Retry-After at once, and other requests are served",
          "[e2e][mongo]") {
    database db;
    server srv{db.uri(), {"--workers", "1", "--queue", "0", "--demo-endpoints"}};
    REQUIRE(get(srv.port(), "/mongo").status == 200);
    // The worker counts as busy until just after its answer was handed back: wait until it is
    // idle, or the wait below could see that job instead of the /sleep.
    for (int i = 0; i < 100 && metric_now(srv.port(), "coroserve_pool_busy") > 0; ++i)
        std::this_thread::sleep_for(10ms);

    // Hold the only worker (long enough for a loaded machine to do the rest meanwhile).
    connection holder{srv.port()};
    holder.send(get_request("/sleep?ms=3000"));
    double busy = 0;
    for (int i = 0; i < 100 && busy < 1; ++i) {
        busy = metric_now(srv.port(), "coroserve_pool_busy");
        if (busy < 1) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(busy == 1);

    connection c{srv.port()};
    for (const char* target : {"/mongo", "/mongo/big", "/sleep?ms=1", "/readyz"}) {
        INFO("target " << target);
        response r;
        auto elapsed = time_ms([&] { r = c.get(target); });
        REQUIRE(r.status == 503);
        REQUIRE(r.has_header("Retry-After"));
        REQUIRE(r.header("Content-Type") == "application/json");
        REQUIRE(parse(r.body).at("status") == 503);
        CHECK(elapsed < 1000);  // at once, not after the worker frees up
    }
    // Requests that need no worker are served on other connections meanwhile.
    std::vector<connection> others;
    for (int i = 0; i < 5; ++i) others.emplace_back(srv.port());
    for (int round = 0; round < 10; ++round)
        for (auto& o : others) {
            REQUIRE(o.get("/json").status == 200);
            REQUIRE(o.get("/healthz").status == 200);
        }
    REQUIRE(c.get("/sleep/async?ms=20").status == 200);
    // All of that happened while the worker was still held.
    REQUIRE(holder.pending().empty());
    REQUIRE_FALSE(holder.peer_closed());

    auto held = holder.expect_response(10s);
    REQUIRE(held.status == 200);
    REQUIRE(parse(held.body).at("slept_ms") == 3000);
    // The pool is free again once the worker has handed its answer back (as above).
    for (int i = 0; i < 100 && metric_now(srv.port(), "coroserve_pool_busy") > 0; ++i)
        std::this_thread::sleep_for(10ms);
    REQUIRE(c.get("/mongo").status == 200);
    REQUIRE(metric_now(srv.port(), "coroserve_pool_rejections_total{reason=\"queue_full\"}") >= 3);
}

TEST_CASE("With a bounded queue, waiting jobs are served and the one past it gets 503",
          "[e2e][mongo]") {
    database db;
    // A deadline longer than the holder's sleep: the queued /mongo job may wait it out.
    server srv{db.uri(),
               {"--workers", "1", "--queue", "2", "--demo-endpoints", "--db-timeout-ms", "10000"}};
    connection holder{srv.port()};
    holder.send(get_request("/sleep?ms=2500"));
    for (int i = 0; i < 100 && metric_now(srv.port(), "coroserve_pool_busy") < 1; ++i)
        std::this_thread::sleep_for(10ms);

    connection q1{srv.port()}, q2{srv.port()};
    q1.send(get_request("/mongo"));
    q2.send(get_request("/sleep?ms=10"));
    double depth = 0;
    for (int i = 0; i < 100 && depth < 2; ++i) {
        depth = metric_now(srv.port(), "coroserve_pool_queue_depth");
        if (depth < 2) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(depth == 2);
    auto over = get(srv.port(), "/mongo");
    REQUIRE(over.status == 503);
    REQUIRE(over.has_header("Retry-After"));

    REQUIRE(holder.expect_response(10s).status == 200);
    auto a = q1.expect_response(10s);
    REQUIRE(a.status == 200);
    REQUIRE(parse(a.body).at("canonicalUrl").as_string() == "http://foo.com");
    REQUIRE(q2.expect_response(10s).status == 200);
}

TEST_CASE("A slow database is queried by the workers in parallel", "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    server srv{db.uri(), {"--workers", "8"}};
    // Warm the driver's connection pool first, so the timing below is the queries'.
    {
        std::vector<connection> warm;
        for (int i = 0; i < 8; ++i) {
            warm.emplace_back(srv.port());
            warm.back().send(get_request("/mongo"));
        }
        for (auto& c : warm) REQUIRE(c.expect_response(10s).status == 200);
    }
    db.standin().set_latency_ms(300);
    std::vector<connection> conns;
    for (int i = 0; i < 8; ++i) conns.emplace_back(srv.port());
    auto elapsed = time_ms([&] {
        for (auto& c : conns) c.send(get_request("/mongo/big"));
        for (auto& c : conns) REQUIRE(c.expect_response(10s).status == 200);
    });
    INFO("8 queries of 300 ms on 8 workers took " << elapsed << " ms");
    CHECK(elapsed >= 290);
    CHECK(elapsed < 1800);  // one at a time would be 2400 ms
}
