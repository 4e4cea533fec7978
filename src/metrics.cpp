// Renders the counters in the Prometheus text exposition format (version 0.0.4).
#include "metrics.hpp"

#include <algorithm>
#include <coroserve/blocking_pool.hpp>
#include <cstdio>

namespace coroserve {

void metrics::observe(route r, unsigned status, std::chrono::steady_clock::duration latency) {
    auto s = std::find(statuses.begin(), statuses.end() - 1, status) - statuses.begin();
    requests_[static_cast<std::size_t>(r)][static_cast<std::size_t>(s)].fetch_add(
        1, std::memory_order_relaxed);
    const double seconds = std::chrono::duration<double>(latency).count();
    auto b = std::lower_bound(buckets.begin(), buckets.end(), seconds) - buckets.begin();
    latency_buckets_[static_cast<std::size_t>(b)].fetch_add(1, std::memory_order_relaxed);
    latency_sum_us_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string metrics::render(const blocking_pool& pool) const {
    std::string out;
    out.reserve(8192);
    char line[256];
    auto add = [&](const char* fmt, auto... args) {
        int n = std::snprintf(line, sizeof line, fmt, args...);
        out.append(line, static_cast<std::size_t>(std::min<int>(n, sizeof line - 1)));
    };
    auto load = [](const auto& a) {
        return static_cast<unsigned long long>(a.load(std::memory_order_relaxed));
    };

    out +=
        "# HELP coroserve_requests_total HTTP requests answered, by route and status.\n"
        "# TYPE coroserve_requests_total counter\n";
    for (std::size_t r = 0; r < route_count; ++r)
        for (std::size_t s = 0; s < statuses.size(); ++s)
            if (auto n = load(requests_[r][s]))
                add("coroserve_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    std::string{route_names[r]}.c_str(),
                    statuses[s] ? std::to_string(statuses[s]).c_str() : "other", n);

    out +=
        "# HELP coroserve_request_duration_seconds Time from a whole request to its reply.\n"
        "# TYPE coroserve_request_duration_seconds histogram\n";
    unsigned long long cumulative = 0;
    for (std::size_t b = 0; b < buckets.size(); ++b) {
        cumulative += load(latency_buckets_[b]);
        add("coroserve_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[b], cumulative);
    }
    cumulative += load(latency_buckets_.back());
    add("coroserve_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    add("coroserve_request_duration_seconds_sum %.6f\n",
        static_cast<double>(load(latency_sum_us_)) / 1e6);
    add("coroserve_request_duration_seconds_count %llu\n", cumulative);

    auto gauge = [&](const char* name, const char* help, long long value) {
        add("# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, value);
    };
    auto count = [&](const char* name, const char* help, unsigned long long value) {
        add("# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, value);
    };
    gauge("coroserve_open_connections", "Open client connections.", open_connections.load());
    count("coroserve_connections_accepted_total", "Connections accepted.", load(accepted));
    count("coroserve_connections_refused_total",
          "Connections over --max-connections, answered 503.", load(refused_connections));
    count("coroserve_accept_errors_total", "Failed accepts (e.g. out of file descriptors).",
          load(accept_errors));
    count("coroserve_header_timeouts_total", "Requests not received in time (408).",
          load(header_timeouts));
    count("coroserve_idle_timeouts_total", "Idle keep-alive connections closed.",
          load(idle_timeouts));
    count("coroserve_write_timeouts_total", "Clients that did not read their answer in time.",
          load(write_timeouts));
    count("coroserve_bad_requests_total", "Malformed requests (400).", load(bad_requests));
    count("coroserve_headers_too_large_total", "Request headers over the limit (431).",
          load(headers_too_large));
    count("coroserve_bodies_too_large_total", "Request bodies over the limit (413).",
          load(bodies_too_large));
    gauge("coroserve_pool_workers", "Blocking-pool threads.", pool.threads());
    gauge("coroserve_pool_busy", "Blocking-pool threads running a job.",
          static_cast<long long>(pool.busy()));
    gauge("coroserve_pool_queue_depth", "Jobs waiting for a worker.",
          static_cast<long long>(pool.queued()));
    // A counter with one label: HELP, TYPE, then one sample per label value.
    auto by_label = [&](const char* name, const char* help, const char* label, const auto& values,
                        auto count_of) {
        out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + " counter\n";
        for (std::size_t i = 0; i < values.size(); ++i)
            add("%s{%s=\"%s\"} %llu\n", name, label, values[i],
                static_cast<unsigned long long>(count_of(i)));
    };
    by_label("coroserve_pool_rejections_total",
             "Jobs refused with 503, by reason: queue_full (the --queue bound), queue_delay "
             "(queued jobs waited past the admission target for an interval), deadline (still "
             "queued when the request's deadline came; never ran).",
             "reason", refusal_names,
             [&](std::size_t r) { return pool.rejected(static_cast<refusal>(r)); });
    count("coroserve_pool_skipped_total",
          "Queued jobs skipped because their client reset the connection.", pool.skipped());
    count("coroserve_db_unavailable_total", "Database calls that found no server (503).",
          load(db_unavailable));
    count("coroserve_db_timeouts_total", "Database calls past their deadline (504).",
          load(db_timeouts));
    count("coroserve_db_errors_total", "Database calls answered with an error (502).",
          load(db_errors));
    constexpr std::array<const char*, 2> causes = {"auth", "tls"};
    by_label("coroserve_db_connect_failures_total",
             "Database calls that could not set up a connection (503), by cause.", "cause", causes,
             [&](std::size_t c) { return load(db_connect_failures[c]); });
    by_label("coroserve_db_failures_total",
             "Failed database calls by kind: not_primary (a replica-set state change, 503), "
             "server_selection (no suitable server in time, 503), network (503), timeout (504), "
             "auth and tls (503), other (502).",
             "kind", db_failure_names, [&](std::size_t k) { return load(db_failures[k]); });
    return out;
}

}  // namespace coroserve
