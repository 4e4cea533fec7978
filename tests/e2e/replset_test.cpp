// coroserve on a replica set (the stand-in's --replset rs0 --members 3): with
// readPreference=secondary the reads land on the secondaries, with the default on the primary
// and on the new primary after a stepdown (the stand-in's per-member find counters say where);
// /readyz follows the read preference (503 once no secondary is left, 200 when one is back).
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;
using test_support::standin;

namespace {

std::vector<std::string> set_args(int election_ms = 300) {
    std::vector<std::string> args = {"--replset", "rs0",           "--members",
                                     "3",         "--election-ms", std::to_string(election_ms)};
    for (auto& a : standin::benchmark_seed_args()) args.push_back(a);
    return args;
}

// Member 0 only: the server's pool discovers the rest. A wide latency window keeps both
// secondaries eligible on a loaded machine.
std::string set_uri(const standin& s, const std::string& options) {
    return "mongodb://127.0.0.1:" + std::to_string(s.port()) +
           "/?replicaSet=rs0&heartbeatFrequencyMS=500&localThresholdMS=1000" + options;
}

// Finds served by each member since `before`.
std::vector<long long> finds_since(standin& s, const std::vector<long long>& before) {
    auto now = s.replset().finds;
    for (std::size_t i = 0; i < now.size() && i < before.size(); ++i) now[i] -= before[i];
    return now;
}

void require_served(unsigned short port, int n) {
    for (int i = 0; i < n; ++i) {
        auto r = get(port, "/mongo", 10s);
        INFO("request " << i << ": " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        REQUIRE(parse(r.body).at("canonicalUrl").as_string() == "http://foo.com");
    }
}

// coroserve_db_failures_total by kind, from /metrics.
std::map<std::string, long long> db_failures(unsigned short port) {
    auto r = get(port, "/metrics", 10s);
    REQUIRE(r.status == 200);
    std::map<std::string, long long> out;
    const std::string prefix = "coroserve_db_failures_total{kind=\"";
    for (std::size_t at = r.body.find(prefix); at != std::string::npos;
         at = r.body.find(prefix, at + 1)) {
        const auto name = at + prefix.size();
        const auto close = r.body.find("\"} ", name);
        REQUIRE(close != std::string::npos);
        out[r.body.substr(name, close - name)] = std::stoll(r.body.substr(close + 3));
    }
    return out;
}

}  // namespace

TEST_CASE("Replica set: readPreference=secondary reads land on the secondaries",
          "[e2e][mongo][replset]") {
    standin s(set_args());
    server srv{set_uri(s, "&readPreference=secondary")};
    // The first request may wait in server selection for the discovery of a secondary.
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
    const auto before = s.replset().finds;
    require_served(srv.port(), 30);
    const auto delta = finds_since(s, before);
    INFO("finds per member: " << delta[0] << "," << delta[1] << "," << delta[2]);
    CHECK(delta[0] == 0);
    CHECK(delta[1] + delta[2] == 30);
}

TEST_CASE("Replica set: primary reads land on the primary, then on the new one after a stepdown",
          "[e2e][mongo][replset]") {
    standin s(set_args());
    server srv{set_uri(s, "")};
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
    auto before = s.replset().finds;
    require_served(srv.port(), 10);
    CHECK(finds_since(s, before) == std::vector<long long>{10, 0, 0});

    s.control("stepdown");
    // Requests during the election wait in server selection (5 s here) for the new primary.
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
    REQUIRE(s.replset().primary == 1);
    before = s.replset().finds;
    require_served(srv.port(), 10);
    CHECK(finds_since(s, before) == std::vector<long long>{0, 10, 0});
}

TEST_CASE("Replica set: /readyz means a server for our read preference is selectable",
          "[e2e][mongo][replset]") {
    standin s(set_args());
    server srv{set_uri(s, "&readPreference=secondary"),
               {"--server-selection-timeout-ms", "1000", "--db-timeout-ms", "2000"}};
    REQUIRE(poll_until(srv.port(), "/readyz", 200, 10s).status == 200);

    s.control("kill 1");
    s.control("kill 2");
    // The primary still answers, but no secondary does: not ready to serve these reads.
    auto r = poll_until(srv.port(), "/readyz", 503, 10s);
    INFO("/readyz: " << r.status << " " << r.body);
    REQUIRE(r.status == 503);
    CHECK(get(srv.port(), "/mongo", 10s).status == 503);

    s.control("revive 2");
    REQUIRE(poll_until(srv.port(), "/readyz", 200, 10s).status == 200);
    const auto before = s.replset().finds;
    require_served(srv.port(), 5);
    CHECK(finds_since(s, before) == std::vector<long long>{0, 0, 5});
}

TEST_CASE("Replica set: reads failed by a stepdown are counted by kind in /metrics",
          "[e2e][mongo][replset]") {
    // A long election and a short server selection: primary reads during the election fail.
    standin s(set_args(3000));
    server srv{set_uri(s, ""), {"--server-selection-timeout-ms", "300"}};
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 10s).status == 200);
    const auto before = db_failures(srv.port());
    REQUIRE(before.size() == 7);
    for (const auto& [kind, n] : before) CHECK(n == 0);

    s.control("stepdown");
    int unavailable = 0;
    for (int i = 0; i < 20 && unavailable < 3; ++i) {
        auto r = get(srv.port(), "/mongo", 10s);
        INFO("request " << i << ": " << r.status << " " << r.body);
        REQUIRE((r.status == 503 || r.status == 200));
        if (r.status == 503) ++unavailable;
    }
    REQUIRE(unavailable > 0);
    auto after = db_failures(srv.port());
    INFO("not_primary " << after["not_primary"] << ", server_selection "
                        << after["server_selection"]);
    // The old primary's 13435 (when the pool still took it for the primary) or no primary
    // to select: each 503 counted once, as one of the two.
    CHECK(after["not_primary"] + after["server_selection"] == unavailable);
    for (const char* kind : {"network", "timeout", "auth", "tls", "other"}) CHECK(after[kind] == 0);
    // Served again once member 1 has won.
    REQUIRE(poll_until(srv.port(), "/mongo", 200, 15s).status == 200);
}
