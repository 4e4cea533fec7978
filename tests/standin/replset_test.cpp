// The stand-in as a replica set (--replset rs0 --members 3) through libmongoc, held as the
// server holds it (a mongoc_client_pool_t): the set discovered from one seed host, awaitable
// hellos that wait, reads landing where the read preference says (the stand-in's
// per-member find counters), a stepdown followed, a killed secondary avoided then used again.
#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mongoc_pool.hpp"
#include "standin.hpp"

using namespace std::chrono_literals;
using test_support::standin;

namespace {

using standin_mongoc::client;

constexpr int election_ms = 300;

std::vector<std::string> set_args() {
    std::vector<std::string> args = {"--replset", "rs0",           "--members",
                                     "3",         "--election-ms", std::to_string(election_ms)};
    for (auto& a : standin::benchmark_seed_args()) args.push_back(a);
    return args;
}

std::string host(const standin& s, int member) {
    return "127.0.0.1:" + std::to_string(s.member_port(member));
}

// Counts the monitors' heartbeats, and those that were awaitable hellos.
struct heartbeat_counter {
    std::atomic<int> succeeded{0}, awaited{0};
    static void on_succeeded(const mongoc_apm_server_heartbeat_succeeded_t* event) {
        auto* self = static_cast<heartbeat_counter*>(
            mongoc_apm_server_heartbeat_succeeded_get_context(event));
        ++self->succeeded;
        if (mongoc_apm_server_heartbeat_succeeded_get_awaited(event)) ++self->awaited;
    }
};

// A pool over the set whose URI names member 0 only: the others must be discovered.
// A wide latency window (localThresholdMS) so that every secondary is eligible on a loaded
// machine.
class pool : public standin_mongoc::pool {
  public:
    explicit pool(const standin& s, heartbeat_counter* heartbeats = nullptr)
        : standin_mongoc::pool("mongodb://" + host(s, 0) +
                               "/?replicaSet=rs0&serverSelectionTimeoutMS=5000"
                               "&heartbeatFrequencyMS=500&socketTimeoutMS=5000"
                               "&localThresholdMS=1000") {
        if (heartbeats)
            monitor(
                [](auto* cb) {
                    mongoc_apm_set_server_heartbeat_succeeded_cb(cb,
                                                                 heartbeat_counter::on_succeeded);
                },
                heartbeats);
    }
};

class read_prefs {
  public:
    explicit read_prefs(mongoc_read_mode_t mode) : prefs_(mongoc_read_prefs_new(mode)) {}
    ~read_prefs() { mongoc_read_prefs_destroy(prefs_); }
    read_prefs(const read_prefs&) = delete;
    read_prefs& operator=(const read_prefs&) = delete;
    const mongoc_read_prefs_t* get() const { return prefs_; }

  private:
    mongoc_read_prefs_t* prefs_;
};

// find_one(filter) on db.coll with `prefs` (null: the client's own, primary). True when a
// document came back; otherwise `error` says why (no error: nothing matched).
bool find_one(client& c, const char* db, const char* coll_name, const bson_t* filter,
              const mongoc_read_prefs_t* prefs, bson_error_t* error) {
    *error = bson_error_t{};
    mongoc_collection_t* coll = mongoc_client_get_collection(c.get(), db, coll_name);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, filter, &opts, prefs);
    const bson_t* doc = nullptr;
    bool found = mongoc_cursor_next(cursor, &doc);
    if (mongoc_cursor_error(cursor, error)) found = false;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    return found;
}

// The seeded document of articles.articles.
bool find_seeded(client& c, const mongoc_read_prefs_t* prefs, bson_error_t* error) {
    bson_t all = BSON_INITIALIZER;
    const bool found = find_one(c, "articles", "articles", &all, prefs, error);
    bson_destroy(&all);
    return found;
}

bool insert_one(client& c, bson_error_t* error) {
    *error = bson_error_t{};
    mongoc_collection_t* coll = mongoc_client_get_collection(c.get(), "t", "writes");
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "by", "replset_test");
    const bool ok = mongoc_collection_insert_one(coll, &doc, nullptr, nullptr, error);
    bson_destroy(&doc);
    mongoc_collection_destroy(coll);
    return ok;
}

// The pool's view of the set: "HOST:PORT TYPE" for each server it knows, sorted.
std::vector<std::string> topology(client& c) {
    size_t n = 0;
    mongoc_server_description_t** sds = mongoc_client_get_server_descriptions(c.get(), &n);
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i)
        out.push_back(std::string(mongoc_server_description_host(sds[i])->host_and_port) + " " +
                      mongoc_server_description_type(sds[i]));
    mongoc_server_descriptions_destroy_all(sds, n);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> expected_topology(const standin& s, int primary) {
    std::vector<std::string> out;
    for (int i = 0; i < 3; ++i)
        out.push_back(host(s, i) + (i == primary ? " RSPrimary" : " RSSecondary"));
    std::sort(out.begin(), out.end());
    return out;
}

// The electionId in the hello that the pool last got from the primary, as hex (sortable
// like the bytes); empty when it knows no primary.
std::string primary_election_id(client& c) {
    size_t n = 0;
    mongoc_server_description_t** sds = mongoc_client_get_server_descriptions(c.get(), &n);
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        if (std::string(mongoc_server_description_type(sds[i])) != "RSPrimary") continue;
        bson_iter_t it;
        if (bson_iter_init_find(&it, mongoc_server_description_hello_response(sds[i]),
                                "electionId") &&
            BSON_ITER_HOLDS_OID(&it)) {
            char text[25];
            bson_oid_to_string(bson_iter_oid(&it), text);
            out = text;
        }
    }
    mongoc_server_descriptions_destroy_all(sds, n);
    return out;
}

// Polls `holds` every 50 ms for at most `patience`; whether it came true.
template <class Pred>
bool eventually(Pred holds, std::chrono::milliseconds patience = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
        if (holds()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
}

// A set, a pool over it, and a client that has read the seeded document from the primary
// and knows every member.
struct connected_set {
    explicit connected_set(std::vector<std::string> args = set_args())
        : s(std::move(args)), p(s), c(p) {
        REQUIRE(find_seeded(c, nullptr, &error));
        REQUIRE(eventually([&] { return topology(c) == expected_topology(s, 0); }));
    }
    standin s;
    pool p;
    client c;
    bson_error_t error{};
};

}  // namespace

TEST_CASE("libmongoc: a replica set is discovered from one seed host, its monitors await",
          "[mongo][mongoc][replset]") {
    standin s(set_args());
    heartbeat_counter heartbeats;
    pool p(s, &heartbeats);
    client c(p);
    bson_error_t error;
    const bool found = find_seeded(c, nullptr, &error);
    INFO(error.message);
    REQUIRE(found);

    std::vector<std::string> seen;
    const bool discovered = eventually([&] {
        seen = topology(c);
        return seen == expected_topology(s, 0);
    });
    std::string listed;
    for (const auto& server : seen) listed += server + "; ";
    INFO("the pool sees: " << listed);
    REQUIRE(discovered);

    // With topologyVersion in every hello the monitors stream: each awaitable hello waits
    // for a change or maxAwaitTimeMS (= heartbeatFrequencyMS, 500 ms). Answered at once, the
    // three monitors would loop thousands of times in two seconds.
    const int before = heartbeats.succeeded.load();
    std::this_thread::sleep_for(2s);
    const int in_two_seconds = heartbeats.succeeded.load() - before;
    INFO("heartbeats in 2 s: " << in_two_seconds
                               << ", awaited so far: " << heartbeats.awaited.load());
    CHECK(heartbeats.awaited.load() > 0);
    CHECK(in_two_seconds <= 60);
}

TEST_CASE("libmongoc: reads land where the read preference says", "[mongo][mongoc][replset]") {
    connected_set set;
    standin& s = set.s;
    client& c = set.c;
    bson_error_t& error = set.error;

    auto run = [&](const mongoc_read_prefs_t* prefs, int n) {
        const auto before = s.replset();
        for (int i = 0; i < n; ++i) {
            const bool found = find_seeded(c, prefs, &error);
            INFO("read " << i << ": " << error.message);
            REQUIRE(found);
        }
        const auto after = s.replset();
        std::vector<long long> delta;
        for (std::size_t m = 0; m < after.finds.size(); ++m)
            delta.push_back(after.finds[m] - before.finds[m]);
        return delta;
    };

    SECTION("primary (the default)") {
        CHECK(run(nullptr, 10) == std::vector<long long>{10, 0, 0});
    }
    SECTION("secondary: both secondaries, never the primary") {
        read_prefs secondary(MONGOC_READ_SECONDARY);
        auto delta = run(secondary.get(), 40);
        INFO("finds per member: " << delta[0] << "," << delta[1] << "," << delta[2]);
        CHECK(delta[0] == 0);
        CHECK(delta[1] + delta[2] == 40);
        // A random pick among two: 40 reads on one alone would be a 1 in 2^39 chance.
        CHECK(delta[1] > 0);
        CHECK(delta[2] > 0);
    }
    SECTION("secondaryPreferred") {
        read_prefs preferred(MONGOC_READ_SECONDARY_PREFERRED);
        auto delta = run(preferred.get(), 10);
        CHECK(delta[0] == 0);
        CHECK(delta[1] + delta[2] == 10);
    }
    SECTION("primaryPreferred") {
        read_prefs preferred(MONGOC_READ_PRIMARY_PREFERRED);
        CHECK(run(preferred.get(), 10) == std::vector<long long>{10, 0, 0});
    }
    SECTION("nearest: any member") {
        read_prefs nearest(MONGOC_READ_NEAREST);
        auto delta = run(nearest.get(), 10);
        CHECK(delta[0] + delta[1] + delta[2] == 10);
    }
}

TEST_CASE("libmongoc: a stepdown is followed to the new primary", "[mongo][mongoc][replset]") {
    standin s(set_args());
    pool p(s);
    client c(p);
    bson_error_t error;
    REQUIRE(insert_one(c, &error));
    std::string first_election;
    REQUIRE(eventually([&] {
        first_election = primary_election_id(c);
        return !first_election.empty();
    }));
    const auto before = s.replset();
    REQUIRE(before.primary == 0);

    const std::string answer = s.control("stepdown");
    INFO("stepdown answered: " << answer);
    CHECK(answer.find(" primary=-1 ") != std::string::npos);  // the election has begun

    // The write waits in server selection (or is retried after NotWritablePrimary) until
    // member 1 wins the election.
    const bool written = insert_one(c, &error);
    INFO("insert after the stepdown: " << error.message);
    REQUIRE(written);
    const auto after = s.replset();
    CHECK(after.primary == 1);
    CHECK(after.term == before.term + 1);

    // Reads with the default preference now land on the new primary.
    for (int i = 0; i < 5; ++i) REQUIRE(find_seeded(c, nullptr, &error));
    const auto reads = s.replset();
    CHECK(reads.finds[1] - after.finds[1] == 5);
    CHECK(reads.finds[0] == after.finds[0]);

    // The pool took the new primary's electionId, which is greater than the old one.
    std::string second_election;
    const bool newer = eventually([&] {
        second_election = primary_election_id(c);
        return !second_election.empty() && second_election != first_election;
    });
    INFO("electionId " << first_election << " then " << second_election);
    REQUIRE(newer);
    CHECK(second_election > first_election);
    CHECK(eventually([&] { return topology(c) == expected_topology(s, 1); }));
}

TEST_CASE("libmongoc: a killed secondary is avoided, and used again once revived",
          "[mongo][mongoc][replset]") {
    connected_set set;
    standin& s = set.s;
    client& c = set.c;
    bson_error_t& error = set.error;
    read_prefs secondary(MONGOC_READ_SECONDARY);

    s.control("kill 2");
    const auto before = s.replset();
    CHECK(before.up == std::vector<bool>{true, true, false});
    // The monitor's connection to member 2 was closed: the pool marks it unknown within
    // moments. The reads start once it has (what happens to a read that picks the member
    // in that moment is the failover measurement's business, bench/failover).
    const std::string dead = host(s, 2) + " RSSecondary";
    REQUIRE(eventually([&] {
        const auto known = topology(c);
        return std::find(known.begin(), known.end(), dead) == known.end();
    }));
    for (int i = 0; i < 20; ++i) {
        const bool found = find_seeded(c, secondary.get(), &error);
        INFO("read " << i << " with member 2 down: " << error.message);
        REQUIRE(found);
    }
    const auto during = s.replset();
    CHECK(during.finds[0] == before.finds[0]);
    CHECK(during.finds[1] - before.finds[1] == 20);
    CHECK(during.finds[2] == before.finds[2]);

    s.control("revive 2");
    // Once a heartbeat (500 ms) finds member 2 again, secondary reads use it too.
    const bool used_again = eventually(
        [&] {
            return find_seeded(c, secondary.get(), &error) &&
                   s.replset().finds[2] > during.finds[2];
        },
        15s);
    CHECK(used_again);
}

TEST_CASE("libmongoc: with --secondary-lag-ms a secondary sees a write that much later",
          "[mongo][mongoc][replset]") {
    constexpr auto lag = 1500ms;
    auto args = set_args();
    args.push_back("--secondary-lag-ms");
    args.push_back(std::to_string(lag.count()));
    connected_set set(args);
    client& c = set.c;
    bson_error_t& error = set.error;
    read_prefs secondary(MONGOC_READ_SECONDARY);
    // The seeded data is on every member from the start.
    REQUIRE(find_seeded(c, secondary.get(), &error));

    const auto written = std::chrono::steady_clock::now();
    REQUIRE(insert_one(c, &error));
    bson_t mine = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&mine, "by", "replset_test");
    auto on = [&](const mongoc_read_prefs_t* prefs) {
        const bool found = find_one(c, "t", "writes", &mine, prefs, &error);
        INFO("find: " << error.message);
        REQUIRE(error.code == 0);
        return found;
    };
    CHECK(on(nullptr));                // the primary has it at once
    CHECK_FALSE(on(secondary.get()));  // a secondary does not, yet
    REQUIRE(eventually([&] { return on(secondary.get()); }));
    CHECK(std::chrono::steady_clock::now() - written >= lag);
    bson_destroy(&mine);
}
