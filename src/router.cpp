// Route matching, input validation, and the mapping of thrown failures to 5xx replies.
#include "router.hpp"

#include <atomic>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "handlers.hpp"
#include "log_limiter.hpp"

namespace coroserve {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Splits "/a/b/c" into at most 4 segments; returns how many there were (5 = too many).
std::size_t split_path(std::string_view path, std::array<std::string_view, 4>& segments) {
    std::size_t n = 0;
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        auto slash = path.find('/');
        if (n == segments.size()) return n + 1;
        segments[n++] = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return n;
}

// Failures can come thousands of times a second: log at most one line a second.
void log_failure(const char* kind, const char* detail) {
    static log_limiter limit;
    auto suppressed = limit.allow();
    if (!suppressed) return;
    std::fprintf(stderr, "coroserve: %s: %s (%u similar lines suppressed)\n", kind, detail,
                 *suppressed);
}

// A TLS or authentication failure: counted by cause, logged (rate-limited) with libmongoc's
// reason, answered with the cause alone.
reply connect_failure_reply(handlers& h, const db_connect_failed& e) {
    const bool auth = e.why == db_connect_failed::cause::auth;
    h.stats().db_connect_failures[auth ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
    h.stats().count_db_failure(e.kind);
    log_failure(e.summary(), e.what());
    return error_reply(503, e.summary(), 1);
}

}  // namespace

bool valid_collection_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!is_name_char(c)) return false;
    return true;
}

std::optional<document_id> parse_document_id(std::string_view text) {
    if (text.empty() || text.size() > 128) return std::nullopt;
    bool hex = text.size() == 24;
    for (char c : text) {
        if (!is_name_char(c)) return std::nullopt;
        hex = hex && is_hex(c);
    }
    return document_id{std::string{text}, hex};
}

std::optional<unsigned> query_uint(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        if (pair.size() > key.size() && pair.substr(0, key.size()) == key &&
            pair[key.size()] == '=') {
            auto v = pair.substr(key.size() + 1);
            unsigned n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc{} || end != v.data() + v.size()) return std::nullopt;
            return n;
        }
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return std::nullopt;
}

route_match match_route(std::string_view method, std::string_view target) {
    route_match m;
    if (target.empty() || target.front() != '/') {  // absolute or authority form: not ours
        m.status = 400;
        return m;
    }
    auto q = target.find('?');
    auto path = target.substr(0, q);
    if (q != std::string_view::npos) m.query = target.substr(q + 1);

    std::array<std::string_view, 4> seg;
    auto n = split_path(path, seg);
    if (n == 1 && seg[0] == "mongo")
        m.id = route::mongo;
    else if (n == 2 && seg[0] == "mongo")
        m.id = route::mongo_collection, m.collection = seg[1];
    else if (n == 3 && seg[0] == "mongo") {
        m.id = route::mongo_document, m.collection = seg[1], m.id_text = seg[2];
    } else if (n == 1 && seg[0] == "json")
        m.id = route::json;
    else if (n == 1 && seg[0] == "sleep")
        m.id = route::sleep;
    else if (n == 2 && seg[0] == "sleep" && seg[1] == "async")
        m.id = route::sleep_async;
    else if (n == 1 && seg[0] == "healthz")
        m.id = route::healthz;
    else if (n == 1 && seg[0] == "readyz")
        m.id = route::readyz;
    else if (n == 1 && seg[0] == "metrics")
        m.id = route::metrics;

    if (m.id == route::none)
        m.status = 404;
    else if (method != "GET" && method != "HEAD")
        m.id = route::none, m.status = 405;
    return m;
}

reply error_reply(unsigned status, std::string_view message, unsigned retry_after) {
    reply r;
    r.status = status;
    r.retry_after = retry_after;
    r.body = boost::json::serialize(boost::json::object{{"error", message}, {"status", status}});
    return r;
}

boost::asio::awaitable<reply> dispatch_request(handlers& h, const route_match& m) {
    try {
        switch (m.id) {
            case route::mongo:
                co_return co_await h.mongo(m, h.cfg().collection);
            case route::mongo_collection:
                co_return co_await h.mongo(m, m.collection);
            case route::mongo_document:
                co_return co_await h.mongo(m, m.collection, m.id_text);
            case route::json:
                co_return co_await h.json();
            case route::sleep:
                if (!h.cfg().demo_endpoints) break;
                co_return co_await h.sleep(m);
            case route::sleep_async:
                if (!h.cfg().demo_endpoints) break;
                co_return co_await h.sleep_async(m.query);
            case route::healthz:
                co_return co_await h.healthz();
            case route::readyz:
                co_return co_await h.readyz();
            case route::metrics:
                co_return co_await h.metrics_text();
            case route::none:
                break;
        }
    } catch (const client_gone&) {
        auto r = error_reply(499, "client closed the connection");  // nobody will read it
        r.close = true;
        co_return r;
    } catch (const pool_overloaded&) {
        co_return error_reply(503, "server overloaded, retry later", 1);
    } catch (const db_connect_failed& e) {
        co_return connect_failure_reply(h, e);
    } catch (const db_unavailable& e) {
        h.stats().db_unavailable.fetch_add(1, std::memory_order_relaxed);
        h.stats().count_db_failure(e.kind);
        log_failure("database unavailable", e.what());
        co_return error_reply(503, "database unavailable", 1);
    } catch (const db_timeout& e) {
        h.stats().db_timeouts.fetch_add(1, std::memory_order_relaxed);
        h.stats().count_db_failure(db_failure::timeout);
        log_failure("database timeout", e.what());
        co_return error_reply(504, "database timeout");
    } catch (const db_error& e) {
        h.stats().db_errors.fetch_add(1, std::memory_order_relaxed);
        h.stats().count_db_failure(db_failure::other);
        log_failure("database error", e.what());
        co_return error_reply(502, "database error");
    } catch (const std::exception& e) {
        log_failure("internal error", e.what());
        co_return error_reply(500, "internal error");
    }
    switch (m.status) {
        case 400:
            co_return error_reply(400, "bad request target");
        case 405: {
            auto r = error_reply(405, "method not allowed");
            r.allow = "GET, HEAD";
            co_return r;
        }
        default:
            co_return error_reply(404, "not found");
    }
}

}  // namespace coroserve
