// Parses coroserve's flags and environment variables into a config, from one option table.
#include "config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <sstream>
#include <thread>

namespace coroserve {
namespace {

// Parses a whole string as an unsigned number within [lo, hi].
template <class T>
std::optional<T> to_number(std::string_view s, T lo, T hi) {
    T value{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value < lo || value > hi)
        return std::nullopt;
    return value;
}

std::optional<bool> to_bool(std::string_view s) {
    if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
    if (s == "0" || s == "false" || s == "no" || s == "off") return false;
    return std::nullopt;
}

bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
}

// One option: its flag, its environment variable, a help line, and how to store a value.
// `set` returns an empty string on success, else what was wrong.
struct option {
    std::string_view flag;
    const char* env;
    std::string_view help;
    std::function<std::string(config&, std::string_view)> set;
    bool is_switch = false;  // a flag without a value ("--access-log")
};

template <class T>
auto number(T config::*field, T lo, T hi) {
    return [=](config& c, std::string_view v) -> std::string {
        auto n = to_number<T>(v, lo, hi);
        if (!n)
            return "expects a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi);
        c.*field = *n;
        return {};
    };
}

auto millis(milliseconds config::*field, long lo, long hi) {
    return [=](config& c, std::string_view v) -> std::string {
        auto n = to_number<long>(v, lo, hi);
        if (!n)
            return "expects milliseconds from " + std::to_string(lo) + " to " + std::to_string(hi);
        c.*field = milliseconds{*n};
        return {};
    };
}

auto text(std::string config::*field) {
    return [=](config& c, std::string_view v) -> std::string {
        if (v.empty()) return "must not be empty";
        c.*field = std::string{v};
        return {};
    };
}

auto name(std::string config::*field) {
    return [=](config& c, std::string_view v) -> std::string {
        if (!valid_name(v)) return "expects a name of 1 to 64 letters, digits, '_' or '-'";
        c.*field = std::string{v};
        return {};
    };
}

auto flag(bool config::*field) {
    return [=](config& c, std::string_view v) -> std::string {
        auto b = to_bool(v);
        if (!b) return "expects true or false";
        c.*field = *b;
        return {};
    };
}

std::string set_collections(config& c, std::string_view v) {
    std::vector<std::string> names;
    while (!v.empty()) {
        auto comma = v.find(',');
        auto item = v.substr(0, comma);
        if (!valid_name(item)) return "expects a comma-separated list of collection names";
        names.emplace_back(item);
        v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    }
    if (names.empty()) return "expects at least one collection name";
    c.collections = std::move(names);
    return {};
}

std::string set_io_model(config& c, std::string_view v) {
    if (v == "reuseport")
        c.reuse_port = true;
    else if (v == "shared")
        c.reuse_port = false;
    else
        return "expects 'reuseport' or 'shared'";
    return {};
}

constexpr auto u16max = std::numeric_limits<std::uint16_t>::max();

const std::vector<option>& options() {
    static const std::vector<option> table = {
        {"--host", "COROSERVE_HOST", "address to listen on (default 0.0.0.0)", text(&config::host)},
        {"--port", "COROSERVE_PORT", "port to listen on; 0 picks a free one (default 5000)",
         number<std::uint16_t>(&config::port, 0, u16max)},
        {"--io-threads", "COROSERVE_IO_THREADS", "I/O threads (default: one per core)",
         number(&config::io_threads, 0u, 256u)},
        {"--io-model", "COROSERVE_IO_MODEL",
         "reuseport: an io_context and a listening socket per thread (default); shared: one "
         "io_context run by every I/O thread",
         set_io_model},
        {"--workers", "COROSERVE_WORKERS", "blocking-pool threads for database calls (default 16)",
         number(&config::workers, 1u, 1024u)},
        {"--queue", "COROSERVE_QUEUE",
         "jobs that may wait for a worker, then 503 (default: --max-connections)",
         [](config& c, std::string_view v) -> std::string {
             auto n = to_number<std::size_t>(v, 0, 1'000'000);
             if (!n) return "expects a whole number from 0 to 1000000";
             c.queue = *n;
             return {};
         }},
        {"--admission-target-ms", "COROSERVE_ADMISSION_TARGET_MS",
         "when queued jobs have waited longer than this for a whole admission interval, new "
         "jobs get 503; 0 turns it off (default: a quarter of --db-timeout-ms)",
         [](config& c, std::string_view v) -> std::string {
             auto n = to_number<long>(v, 0, 600'000);
             if (!n) return "expects milliseconds from 0 to 600000";
             c.admission_target = milliseconds{*n};
             return {};
         }},
        {"--admission-interval-ms", "COROSERVE_ADMISSION_INTERVAL_MS",
         "how long queueing delay must stay over the target before refusals start (default 100)",
         millis(&config::admission_interval, 1, 600'000)},
        {"--mongodb-uri", "MONGODB_URI",
         "MongoDB connection string (default mongodb://127.0.0.1:27017)",
         text(&config::mongodb_uri)},
        {"--database", "COROSERVE_DATABASE", "database name (default articles)",
         name(&config::database)},
        {"--collection", "COROSERVE_COLLECTION", "collection behind GET /mongo (default articles)",
         name(&config::collection)},
        {"--collections", "COROSERVE_COLLECTIONS",
         "collections GET /mongo/{collection} may read, comma-separated (default "
         "articles,small,big)",
         set_collections},
        {"--db-timeout-ms", "COROSERVE_DB_TIMEOUT_MS",
         "per-query deadline, then 504 (default 2000)", millis(&config::db_timeout, 1, 600'000)},
        {"--server-selection-timeout-ms", "COROSERVE_SERVER_SELECTION_TIMEOUT_MS",
         "how long to look for a reachable server, then 503 (default 1000)",
         millis(&config::server_selection, 1, 600'000)},
        {"--header-limit", "COROSERVE_HEADER_LIMIT",
         "request header bytes, then 431 (default 8192)",
         number<std::size_t>(&config::header_limit, 256, 1 << 20)},
        {"--body-limit", "COROSERVE_BODY_LIMIT", "request body bytes, then 413 (default 65536)",
         number<std::size_t>(&config::body_limit, 0, 64 << 20)},
        {"--header-timeout-ms", "COROSERVE_HEADER_TIMEOUT_MS",
         "time to receive a whole request once it has begun, then 408 (default 10000)",
         millis(&config::header_timeout, 1, 600'000)},
        {"--idle-timeout-ms", "COROSERVE_IDLE_TIMEOUT_MS",
         "idle keep-alive connections are closed after this (default 60000)",
         millis(&config::idle_timeout, 1, 3'600'000)},
        {"--write-timeout-ms", "COROSERVE_WRITE_TIMEOUT_MS",
         "time to write a response to a slow reader (default 10000)",
         millis(&config::write_timeout, 1, 600'000)},
        {"--drain-timeout-ms", "COROSERVE_DRAIN_TIMEOUT_MS",
         "on SIGINT/SIGTERM, time for in-flight requests to finish (default 5000)",
         millis(&config::drain_timeout, 0, 600'000)},
        {"--sleep-max-ms", "COROSERVE_SLEEP_MAX_MS",
         "largest ms accepted by /sleep (default 10000)",
         number(&config::sleep_max_ms, 0u, 600'000u)},
        {"--max-connections", "COROSERVE_MAX_CONNECTIONS",
         "open connections beyond this are answered 503 and closed (default 10000)",
         number<std::size_t>(&config::max_connections, 1, 1'000'000)},
        {"--access-log", "COROSERVE_ACCESS_LOG", "log every request to stderr (default off)",
         flag(&config::access_log), true},
        {"--demo-endpoints", "COROSERVE_DEMO_ENDPOINTS",
         "serve /sleep (holds a pool thread) and /sleep/async (default off: 404)",
         flag(&config::demo_endpoints), true},
    };
    return table;
}

std::string help_text() {
    std::ostringstream out;
    out << "Usage: coroserve [options]\n"
           "A C++20 coroutine HTTP server that serves MongoDB documents as JSON.\n\n"
           "Options (each also read from the environment variable shown):\n";
    for (const auto& o : options())
        out << "  " << o.flag << (o.is_switch ? "" : " VALUE") << "  (" << o.env << ")\n      "
            << o.help << "\n";
    out << "  --help\n      this text\n";
    return out.str();
}

}  // namespace

unsigned config::resolved_io_threads() const {
    return io_threads ? io_threads : std::max(1u, std::thread::hardware_concurrency());
}

parsed_config parse_config(std::span<const char* const> args, const env_lookup& env) {
    config cfg;
    auto fail = [](std::string what) { return parsed_config{std::nullopt, std::move(what)}; };

    for (const auto& o : options()) {
        if (auto value = env(o.env)) {
            if (auto err = o.set(cfg, *value); !err.empty())
                return fail("environment variable " + std::string{o.env} + " " + err);
        }
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") return {std::nullopt, help_text(), true};
        std::optional<std::string_view> inline_value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        auto it = std::find_if(options().begin(), options().end(),
                               [&](const option& o) { return o.flag == arg; });
        if (it == options().end())
            return fail("unknown option " + std::string{arg} + " (see --help)");
        std::string_view value;
        if (inline_value)
            value = *inline_value;
        else if (it->is_switch)
            value = "true";
        else if (i + 1 < args.size())
            value = args[++i];
        else
            return fail("option " + std::string{arg} + " needs a value");
        if (auto err = it->set(cfg, value); !err.empty())
            return fail("option " + std::string{arg} + " " + err);
    }
    return {std::move(cfg), {}};
}

namespace {

// Options whose values are secrets too: a key file's password, AWS session tokens.
std::string redact_secret_options(std::string uri) {
    static constexpr std::string_view secret[] = {"tlscertificatekeyfilepassword",
                                                  "sslclientcertificatekeypassword",
                                                  "authmechanismproperties"};
    auto q = uri.find('?');
    if (q == std::string::npos) return uri;
    std::string out = uri.substr(0, q + 1);
    std::string_view rest = std::string_view{uri}.substr(q + 1);
    for (;;) {
        auto end = rest.find_first_of("&;");
        auto pair = rest.substr(0, end);
        auto eq = pair.find('=');
        std::string key{pair.substr(0, eq)};
        for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        bool hide = eq != std::string_view::npos &&
                    std::find(std::begin(secret), std::end(secret), key) != std::end(secret);
        out += hide ? std::string{pair.substr(0, eq + 1)} + "***" : std::string{pair};
        if (end == std::string_view::npos) break;
        out += rest[end];
        rest.remove_prefix(end + 1);
    }
    return out;
}

}  // namespace

std::string redact_uri(std::string_view uri) {
    // mongodb://user:password@host/... : the password is between the first ':' after the
    // scheme and the last '@' before the host list.
    auto scheme = uri.find("://");
    if (scheme == std::string_view::npos) return redact_secret_options(std::string{uri});
    auto rest = uri.substr(scheme + 3);
    auto host_end = rest.find_first_of("/?");
    auto authority = rest.substr(0, host_end);
    auto at = authority.rfind('@');
    if (at == std::string_view::npos) return redact_secret_options(std::string{uri});
    auto userinfo = authority.substr(0, at);
    auto colon = userinfo.find(':');
    std::string out{uri.substr(0, scheme + 3)};
    out += userinfo.substr(0, colon);
    if (colon != std::string_view::npos) out += ":***";
    out += rest.substr(at);
    return redact_secret_options(std::move(out));
}

}  // namespace coroserve
