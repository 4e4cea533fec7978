// The route table (path and method to a handler, telling 404 from 405) and the one place that
// maps exceptions to 5xx answers. Matching and validation are pure functions, tested alone.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mongo.hpp"

namespace coroserve {

enum class route {
    mongo,             // GET /mongo
    mongo_collection,  // GET /mongo/{collection}
    mongo_document,    // GET /mongo/{collection}/{id}
    json,              // GET /json
    sleep,             // GET /sleep?ms=N
    sleep_async,       // GET /sleep/async?ms=N
    healthz,
    readyz,
    metrics,
    none,  // nothing matched: 400, 404 or 405
};
inline constexpr std::size_t route_count = static_cast<std::size_t>(route::none) + 1;
inline constexpr std::array<std::string_view, route_count> route_names = {
    "/mongo",
    "/mongo/{collection}",
    "/mongo/{collection}/{id}",
    "/json",
    "/sleep",
    "/sleep/async",
    "/healthz",
    "/readyz",
    "/metrics",
    "none"};

// What a handler answers; the server turns it into HTTP.
struct reply {
    unsigned status = 200;
    std::string body;
    std::string_view content_type = "application/json";
    std::string_view allow;    // set on 405
    unsigned retry_after = 0;  // seconds, set on 503
    bool close = false;        // close the connection after this reply
};

struct route_match {
    route id = route::none;
    std::string_view collection;  // for mongo_collection and mongo_document
    std::string_view id_text;     // for mongo_document
    std::string_view query;       // after '?', without it
    unsigned status = 200;        // 400, 404 or 405 when id == route::none
    int client_fd = -1;           // the client's socket: the pool skips jobs of clients gone
    std::chrono::steady_clock::time_point received{};  // when the whole request was in
};

// Only GET and HEAD exist; `target` must be in origin form ("/path?query").
route_match match_route(std::string_view method, std::string_view target);

bool valid_collection_name(std::string_view name);
std::optional<document_id> parse_document_id(std::string_view text);  // nullopt: invalid
std::optional<unsigned> query_uint(std::string_view query, std::string_view key);

// {"error": message, "status": status}, with the message escaped; `retry_after` seconds for
// a 503 the client may retry.
reply error_reply(unsigned status, std::string_view message, unsigned retry_after = 0);

class handlers;

// Matches, calls the handler, and turns what it throws into 502/503/504/500 with a short JSON
// error (details go to the log, never to the client).
boost::asio::awaitable<reply> dispatch_request(handlers& h, const route_match& match);

}  // namespace coroserve
