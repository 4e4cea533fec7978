// The blocking pool seen from outside: /sleep holds a worker, so T workers serve T sleeps at
// a time; /sleep/async holds none, so it is not limited by the pool at all.
#include <poll.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("/sleep with --workers 2 serves two at a time", "[e2e]") {
    server srv{no_database_uri, {"--workers", "2", "--queue", "16", "--demo-endpoints"}};
    constexpr int n = 4;
    std::vector<connection> conns;
    for (int i = 0; i < n; ++i) conns.emplace_back(srv.port());

    const auto start = clock_type::now();
    for (auto& c : conns) c.send(get_request("/sleep?ms=400"));
    // Two run, two wait.
    CHECK(wait_for_metric(srv.port(), "coroserve_pool_busy", 2) == 2);
    CHECK(wait_for_metric(srv.port(), "coroserve_pool_queue_depth", 2) == 2);

    // Read the answers as they come: the first two after ~400 ms, the others ~400 ms later.
    std::vector<long long> finished;
    std::vector<bool> done(n, false);
    while (finished.size() < n && clock_type::now() - start < 10s) {
        for (int i = 0; i < n; ++i) {
            if (done[i]) continue;
            std::vector<pollfd> p{{conns[i].fd(), POLLIN, 0}};
            if (::poll(p.data(), 1, 5) <= 0) continue;
            auto r = conns[i].expect_response(5s);
            REQUIRE(r.status == 200);
            REQUIRE(parse(r.body).at("slept_ms") == 400);
            finished.push_back(
                std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start)
                    .count());
            done[i] = true;
        }
    }
    REQUIRE(finished.size() == n);
    std::sort(finished.begin(), finished.end());
    INFO("finished at " << finished[0] << ", " << finished[1] << ", " << finished[2] << ", "
                        << finished[3] << " ms");
    CHECK(finished[0] >= 390);
    // Two rounds: the third and fourth cannot end before two sleeps back to back (a bound
    // that does not depend on how loaded the machine is).
    CHECK(finished[2] >= 790);
    CHECK(finished[3] < 4000);  // and no hang
}

TEST_CASE("/sleep/async holds no worker: 20 at once with --workers 1", "[e2e]") {
    server srv{no_database_uri, {"--workers", "1", "--queue", "0", "--demo-endpoints"}};
    constexpr int n = 20;
    std::vector<connection> conns;
    for (int i = 0; i < n; ++i) conns.emplace_back(srv.port());

    const auto start = clock_type::now();
    for (auto& c : conns) c.send(get_request("/sleep/async?ms=300"));
    // While they wait, the only worker is free: a blocking /sleep is served, not refused.
    auto blocking = get(srv.port(), "/sleep?ms=1");
    REQUIRE(blocking.status == 200);
    for (auto& c : conns) {
        auto r = c.expect_response(10s);
        REQUIRE(r.status == 200);
        REQUIRE(parse(r.body).at("slept_ms") == 300);
    }
    auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    INFO("20 x 300 ms took " << elapsed << " ms");
    CHECK(elapsed >= 290);
    CHECK(elapsed < 2500);  // one at a time would be 6000 ms
    CHECK(metric_now(srv.port(), "coroserve_pool_rejections_total{reason=\"queue_full\"}") == 0);
}

TEST_CASE("/sleep and /sleep/async validate ms", "[e2e]") {
    server srv{no_database_uri, {"--sleep-max-ms", "1000", "--demo-endpoints"}};
    connection c{srv.port()};
    for (const char* route : {"/sleep", "/sleep/async"}) {
        for (const char* query : {"", "?ms=", "?ms=abc", "?ms=-1", "?ms=1001", "?ms=1.5",
                                  "?ms=99999999999999999999", "?other=1"}) {
            INFO(route << query);
            auto r = c.get(std::string{route} + query);
            REQUIRE(r.status == 400);
            REQUIRE(parse(r.body).at("status") == 400);
        }
        INFO(route);
        auto ok = c.get(std::string{route} + "?ms=0");
        REQUIRE(ok.status == 200);
        REQUIRE(parse(ok.body).at("slept_ms") == 0);
        REQUIRE(c.get(std::string{route} + "?x=1&ms=5").status == 200);
    }
}

TEST_CASE("Queued jobs of clients that reset their connection are skipped", "[e2e]") {
    server srv{no_database_uri, {"--workers", "1", "--queue", "8", "--demo-endpoints"}};
    connection holder{srv.port()};
    holder.send(get_request("/sleep?ms=1000"));
    REQUIRE(wait_for_metric(srv.port(), "coroserve_pool_busy", 1) == 1);
    std::vector<connection> gone;
    for (int i = 0; i < 5; ++i) {
        gone.emplace_back(srv.port());
        gone.back().send(get_request("/sleep?ms=300"));
    }
    REQUIRE(wait_for_metric(srv.port(), "coroserve_pool_queue_depth", 5) == 5);
    for (auto& c : gone) c.reset();  // the five clients leave (RST) while their jobs wait

    REQUIRE(holder.expect_response(10s).status == 200);
    auto elapsed = time_ms([&] { REQUIRE(get(srv.port(), "/sleep?ms=1").status == 200); });
    INFO("a new job waited " << elapsed << " ms (five abandoned jobs would take 1500 ms)");
    CHECK(elapsed < 1000);
    CHECK(metric_now(srv.port(), "coroserve_pool_skipped_total") == 5);
}

TEST_CASE("A client that half-closes while its job is queued still gets the answer", "[e2e]") {
    // A FIN is not a departure: the client may still read (only a reset skips the job).
    server srv{no_database_uri, {"--workers", "1", "--queue", "8", "--demo-endpoints"}};
    connection holder{srv.port()};
    holder.send(get_request("/sleep?ms=500"));
    REQUIRE(wait_for_metric(srv.port(), "coroserve_pool_busy", 1) == 1);
    connection half{srv.port()};
    half.send(get_request("/sleep?ms=10"));
    half.shutdown_write();
    REQUIRE(holder.expect_response(10s).status == 200);
    auto r = half.expect_response(10s);
    REQUIRE(r.status == 200);
    REQUIRE(parse(r.body).at("slept_ms") == 10);
    REQUIRE(half.wait_closed(5s));
}
