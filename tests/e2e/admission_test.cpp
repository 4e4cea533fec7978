// Admission by queueing delay: with default flags a healthy database is never refused, however
// many requests wait; a slow one sheds load (503 + Retry-After) within a second, and what is
// admitted is answered within --db-timeout-ms.
#include <poll.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

long long ms_since(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count();
}

// What an open-loop load saw: requests sent at a fixed rate, each on its own connection,
// whatever the server's answers.
struct open_loop_result {
    int ok = 0, refused = 0, other = 0, unanswered = 0;
    long long first_refusal_ms = -1;  // since the load started
    long long slowest_ok_ms = 0;
    bool refusals_say_retry_after = true;
};

open_loop_result open_loop(unsigned short port, std::string_view target,
                           std::chrono::milliseconds every, std::chrono::milliseconds during) {
    struct pending {
        connection conn;
        clock_type::time_point sent;
    };
    std::vector<pending> waiting;
    open_loop_result out;
    const auto start = clock_type::now();
    auto next_send = start;
    auto collect = [&](int timeout_ms) {
        std::vector<pollfd> fds;
        for (auto& p : waiting) fds.push_back({p.conn.fd(), POLLIN, 0});
        if (fds.empty() || ::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
        std::vector<pending> still;
        for (std::size_t i = 0; i < waiting.size(); ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                still.push_back(std::move(waiting[i]));
                continue;
            }
            auto r = waiting[i].conn.expect_response(5s);
            auto took = ms_since(waiting[i].sent);
            if (r.status == 200) {
                ++out.ok;
                out.slowest_ok_ms = std::max(out.slowest_ok_ms, took);
            } else if (r.status == 503) {
                ++out.refused;
                if (out.first_refusal_ms < 0) out.first_refusal_ms = ms_since(start);
                out.refusals_say_retry_after &= r.has_header("Retry-After");
            } else {
                ++out.other;
            }
        }
        waiting = std::move(still);
    };
    while (clock_type::now() - start < during) {
        if (clock_type::now() >= next_send) {
            waiting.push_back({connection{port}, clock_type::now()});
            waiting.back().conn.send(get_request(target));
            next_send += every;
        }
        collect(1);
    }
    const auto drain_until = clock_type::now() + 15s;
    while (!waiting.empty() && clock_type::now() < drain_until) collect(10);
    out.unanswered = static_cast<int>(waiting.size());
    return out;
}

double refusals(unsigned short port, const char* reason) {
    return metric_now(port,
                      std::string{"coroserve_pool_rejections_total{reason=\""} + reason + "\"}");
}

}  // namespace

TEST_CASE("Default flags, healthy database: 1000 connections at once are all answered 200",
          "[e2e][mongo]") {
    raise_fd_limit(4096);
    database db;
    server srv{db.uri()};  // default --queue, --workers, admission
    constexpr int n = 1000;
    std::vector<connection> conns;
    for (int i = 0; i < n; ++i) conns.emplace_back(srv.port());
    int ok = 0;
    for (int round = 0; round < 3; ++round) {
        // Every connection's request is in before the first answer: the queue is a thousand
        // deep, and a fast database still refuses nobody.
        for (auto& c : conns) c.send(get_request("/mongo"));
        for (auto& c : conns) {
            auto r = c.expect_response(30s);
            INFO("status " << r.status << ": " << r.body);
            REQUIRE(r.status == 200);
            ++ok;
        }
    }
    CHECK(ok == 3 * n);
    for (const char* reason : {"queue_full", "queue_delay", "deadline"}) {
        INFO(reason);
        CHECK(refusals(srv.port(), reason) == 0);
    }
}

TEST_CASE("A slow database sheds load within a second, admitted answers beat the deadline",
          "[e2e][mongo]") {
    database db;
    if (skip_without_standin(db)) return;
    raise_fd_limit(4096);
    const int latency_ms = GENERATE(50, 500);
    constexpr int db_timeout_ms = 2000;
    server srv{db.uri(), {"--workers", "2", "--db-timeout-ms", std::to_string(db_timeout_ms)}};
    REQUIRE(get(srv.port(), "/mongo").status == 200);  // the driver's connection is warm
    db.standin().set_latency_ms(latency_ms);

    // 200 requests a second, far more than two workers serve at this latency.
    auto r = open_loop(srv.port(), "/mongo", 5ms, 2500ms);
    std::printf(
        "stand-in at %d ms: %d ok (slowest %lld ms), %d refused (first after %lld ms), "
        "%d other, %d unanswered; refusals: %.0f queue_delay, %.0f deadline, %.0f queue_full\n",
        latency_ms, r.ok, r.slowest_ok_ms, r.refused, r.first_refusal_ms, r.other, r.unanswered,
        refusals(srv.port(), "queue_delay"), refusals(srv.port(), "deadline"),
        refusals(srv.port(), "queue_full"));
    INFO("latency " << latency_ms << " ms");
    CHECK(r.other == 0);
    CHECK(r.unanswered == 0);
    CHECK(r.ok >= 2);
    REQUIRE(r.refused > 0);
    CHECK(r.first_refusal_ms < 1000);
    CHECK(r.refusals_say_retry_after);
    CHECK(r.slowest_ok_ms < db_timeout_ms);
    CHECK(refusals(srv.port(), "queue_delay") > 0);
    CHECK(refusals(srv.port(), "queue_full") == 0);
    db.standin().set_latency_ms(0);
}
