// fixture: what an end-to-end test starts: a database (its own mongo-stand-in, or the real
// MongoDB named by MONGODB_URI, seeded by the test) and the real coroserve binary on an
// ephemeral port, plus small helpers shared by the test files (JSON, metrics, timing).
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"
#include "process.hpp"
#include "standin.hpp"

namespace e2e {

// Collections every test database holds (see seed()): the benchmark documents, a collection
// of documents with string ids, and one that the server is not allowed to serve.
inline constexpr std::string_view strings_collection = "e2e_strings";
inline constexpr std::string_view hidden_collection = "e2e_hidden";
// A document in e2e_strings; its _id is a string, not an ObjectId.
inline constexpr std::string_view string_id = "article-42";
// The ObjectIds of the seed documents (bench/data).
inline constexpr std::string_view small_oid = "537416b501d53a77bb94135c";
inline constexpr std::string_view big_oid = "5377cba55f41d42bc973d506";

// The database of one test.
class database {
  public:
    // MONGODB_URI set: that server, seeded (see seed()). Otherwise: a fresh stand-in with the
    // benchmark seed, plus the e2e collections inserted through libmongoc.
    database();
    ~database();
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    const std::string& uri() const { return uri_; }
    // True when the tests run against MONGODB_URI instead of a stand-in.
    bool external() const { return !standin_; }
    // The stand-in; only when !external().
    test_support::standin& standin();

    // The MongoDB URI from the environment, if any.
    static std::optional<std::string> external_uri();

  private:
    std::unique_ptr<test_support::standin> standin_;
    std::string uri_;
};

// Drops and fills articles.{articles,small,big,e2e_strings,e2e_hidden} through libmongoc.
void seed(const std::string& uri);

// For tests that need no database: nothing listens there, so a database call fails fast.
inline const std::string no_database_uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300";

// The allow-list the server is started with: the benchmark collections and e2e_strings.
std::string allowed_collections();

// The coroserve binary, started with --host 127.0.0.1 --port 0 --mongodb-uri URI
// --collections allowed_collections(), then `extra_args` (later flags win).
class server {
  public:
    server(const std::string& mongodb_uri, std::vector<std::string> extra_args = {});
    // Stops the server (SIGTERM) and CHECKs that it exits 0: a crash, a sanitizer report or a
    // shutdown that needs SIGKILL fails the test that ran it.
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    unsigned short port() const { return port_; }
    test_support::child_process& process() { return *process_; }
    static std::string executable();

  private:
    std::unique_ptr<test_support::child_process> process_;
    unsigned short port_ = 0;
};

// Skips the rest of a test that needs the stand-in's fault injection when running against
// MONGODB_URI: prints why, and returns true (the caller returns).
bool skip_without_standin(const database& db);

// JSON helpers. parse() throws on invalid JSON. same_json() compares values with numbers
// compared by value (an int64 1 equals a double 1.0), objects as unordered maps.
boost::json::value parse(std::string_view text);
boost::json::value read_json_file(const std::string& path);
bool same_json(const boost::json::value& a, const boost::json::value& b);

// The value of one sample in a Prometheus text page, e.g.
// metric(text, "coroserve_requests_total{route=\"/json\",status=\"200\"}"); 0 when absent
// (counters with no increments are not printed).
double metric(std::string_view text, std::string_view sample);
double metric_now(unsigned short port, std::string_view sample);
// Polls /metrics (bounded: 200 x 10 ms) until the sample reaches `value`; the last value seen.
double wait_for_metric(unsigned short port, std::string_view sample, double value);

// Elapsed time of `fn` in milliseconds.
template <class Fn>
long long time_ms(Fn&& fn) {
    auto start = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
}

// Raises this process's RLIMIT_NOFILE soft limit toward `wanted` (at most the hard limit);
// returns the new soft limit. Children started afterwards inherit it.
std::size_t raise_fd_limit(std::size_t wanted);

}  // namespace e2e
