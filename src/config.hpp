// Server configuration: command-line flags, each also settable through an environment
// variable, with defaults that work out of the box against a local stand-in.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coroserve {

using std::chrono::milliseconds;

struct config {
    std::string host = "0.0.0.0";
    std::uint16_t port = 5000;  // the seed's port; 0 picks a free one
    unsigned io_threads = 0;    // 0: one per core
    bool reuse_port = true;     // one io_context per thread (SO_REUSEPORT) or one shared
    unsigned workers = 16;      // blocking-pool threads, each running one libmongoc call
    // Jobs allowed to wait for a worker (a memory bound; admission is by queueing delay).
    // Unset: --max-connections, so that every open connection may have a job waiting.
    std::optional<std::size_t> queue;
    // Queued jobs waiting longer than this for admission_interval: new jobs get 503. Unset: a
    // quarter of db_timeout; 0: off.
    std::optional<milliseconds> admission_target;
    milliseconds admission_interval{100};

    std::string mongodb_uri = "mongodb://127.0.0.1:27017";
    std::string database = "articles";
    std::string collection = "articles";
    std::vector<std::string> collections = {"articles", "small", "big"};
    milliseconds db_timeout{2000};        // socketTimeoutMS and maxTimeMS: past it, 504
    milliseconds server_selection{1000};  // serverSelectionTimeoutMS: past it, 503

    std::size_t header_limit = 8 * 1024;   // 431 above
    std::size_t body_limit = 64 * 1024;    // 413 above
    milliseconds header_timeout{10'000};   // a request header must arrive within this (408)
    milliseconds idle_timeout{60'000};     // an idle keep-alive connection is closed after this
    milliseconds write_timeout{10'000};    // a client that does not read its answer is dropped
    milliseconds drain_timeout{5'000};     // on SIGTERM, in-flight requests get this long
    unsigned sleep_max_ms = 10'000;        // bound for /sleep?ms=
    std::size_t max_connections = 10'000;  // beyond this, new connections get a 503 and a close
    bool access_log = false;
    bool demo_endpoints = false;  // /sleep and /sleep/async (the seed's demonstration)

    unsigned resolved_io_threads() const;
    std::size_t resolved_queue() const { return queue.value_or(max_connections); }
    milliseconds resolved_admission_target() const {
        return admission_target.value_or(db_timeout / 4);
    }
};

struct parsed_config {
    std::optional<config> cfg;  // set on success
    std::string message;        // the error, or the help text when help was asked for
    bool help = false;
};

using env_lookup = std::function<std::optional<std::string>(const char*)>;

// Flags win over environment variables, which win over defaults. Bad values are refused
// with a message naming the flag.
parsed_config parse_config(std::span<const char* const> args, const env_lookup& env);

// The URI with any password replaced by "***", safe to log.
std::string redact_uri(std::string_view uri);

}  // namespace coroserve
