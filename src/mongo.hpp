// RAII over libmongoc: one mongoc_client_pool_t shared by the blocking pool's workers, and the
// blocking queries they run. Every call here blocks: run it on the blocking pool, never on an
// I/O thread. Failures are thrown as the three kinds the router maps to 503, 504 and 502.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using mongoc_client_pool_t = struct _mongoc_client_pool_t;

namespace coroserve {

// Why a database call failed, as /metrics counts it (coroserve_db_failures_total{kind}):
// not_primary: a replica-set member no longer what the call needed (a stepdown, 10107/13435
// and the other state-change codes) once the driver's retry is spent; server_selection: no
// suitable server within serverSelectionTimeoutMS (e.g. during an election); network: the
// connection failed (reset, refused); timeout: past the query deadline; auth and tls: the
// connection could not be set up; other: the server answered with another error.
enum class db_failure { not_primary, server_selection, network, timeout, auth, tls, other };
inline constexpr std::array<const char*, 7> db_failure_names = {
    "not_primary", "server_selection", "network", "timeout", "auth", "tls", "other"};

struct db_unavailable : std::runtime_error {  // no server reachable: 503
    explicit db_unavailable(const std::string& what, db_failure k = db_failure::network)
        : std::runtime_error(what), kind(k) {}
    db_failure kind;
};
// The server is reachable but the connection to it cannot be set up: the TLS handshake or
// the authentication failed. Still a 503, but the cause is named (to the client, the log
// and /metrics) because retrying will not help until the configuration is fixed.
struct db_connect_failed : db_unavailable {
    enum class cause { auth, tls };
    db_connect_failed(cause c, const std::string& what)
        : db_unavailable(what, c == cause::auth ? db_failure::auth : db_failure::tls), why(c) {}
    cause why;
    const char* summary() const {  // safe for clients: no detail, no secret
        return why == cause::auth ? "database authentication failed"
                                  : "database TLS handshake failed";
    }
};
struct db_timeout : std::runtime_error {  // the query passed its deadline: 504
    using std::runtime_error::runtime_error;
};
struct db_error : std::runtime_error {  // the server answered with an error: 502
    using std::runtime_error::runtime_error;
};

// An _id taken from a URL: 24 hex digits are an ObjectId, anything else a string.
struct document_id {
    std::string value;
    bool object_id = false;
};

struct db_options {
    std::string uri;
    std::string database;
    unsigned max_clients = 16;  // one per blocking-pool worker
    std::chrono::milliseconds query_timeout{2000};
    std::chrono::milliseconds server_selection{1000};
};

// What the handlers need from a database. `database` is the real one; the fuzzer and tests
// may give the handlers a fake. Both calls block.
class document_source {
  public:
    virtual ~document_source() = default;
    // The first document of `collection` (or the one with `id`) as compact relaxed extended
    // JSON; nullopt when there is none.
    virtual std::optional<std::string> find_one(std::string_view collection,
                                                const std::optional<document_id>& id) const = 0;
    // Throws unless a server suitable for the configured read preference answers a ping.
    virtual void ping() const = 0;
};

class database final : public document_source {
  public:
    explicit database(const db_options& options);  // throws std::invalid_argument on a bad URI
    ~database();
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    std::optional<std::string> find_one(std::string_view collection,
                                        const std::optional<document_id>& id) const override;
    void ping() const override;
    // Waits, at most `limit`, until libmongoc's monitor knows a server suitable for our reads
    // (start-up: no request then waits for the first check). False when none came in time.
    bool wait_for_servers(std::chrono::milliseconds limit);

  private:
    struct discovery;   // told by the monitor's topology-changed events
    struct connection;  // a client kept between calls, with its session
    class lease;        // a connection borrowed for one call

    std::string database_;
    std::chrono::milliseconds query_timeout_;
    std::unique_ptr<discovery> discovery_;
    mongoc_client_pool_t* pool_;
    // Clients taken from pool_ once and kept: at most one per concurrent call (the workers).
    mutable std::mutex idle_mutex_;
    mutable std::vector<std::unique_ptr<connection>> idle_;
};

}  // namespace coroserve
