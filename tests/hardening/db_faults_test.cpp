// Database faults under load: the stand-in stopped and restarted, slowed past the deadline,
// failing commands. During a fault only 502/503/504 (fast, no hang); after it, full recovery
// within a few seconds; the outage is counted in /metrics; /json never notices.
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "harness.hpp"

using namespace hardening;

namespace {

using clock_type = std::chrono::steady_clock;

struct sample {
    clock_type::time_point sent, done;
    unsigned status;  // 0: no answer within 10 s
    milliseconds latency() const { return std::chrono::duration_cast<milliseconds>(done - sent); }
};

// Keep-alive GETs of one target on several threads, each answer recorded.
class recording_load {
  public:
    recording_load(std::uint16_t port, std::string target, int threads) {
        for (int i = 0; i < threads; ++i)
            threads_.emplace_back([this, port, target] { run(port, target); });
    }
    ~recording_load() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    // The requests answered (or given up on) between `from` and `to`.
    std::vector<sample> between(clock_type::time_point from, clock_type::time_point to) {
        std::lock_guard lock{mutex_};
        std::vector<sample> out;
        for (auto& s : samples_)
            if (s.done >= from && s.done < to) out.push_back(s);
        return out;
    }

  private:
    void run(std::uint16_t port, const std::string& target) {
        const std::string req = request(target);
        std::unique_ptr<raw_connection> c;
        while (!stop_) {
            auto sent = clock_type::now();
            unsigned status = 0;
            try {
                if (!c) c = std::make_unique<raw_connection>(port);
                if (c->send(req, 0, 0ms, 10s)) {
                    std::string got;
                    while (!c->closed() && clock_type::now() - sent < 10s) {
                        got += c->read_some(1, 100ms);
                        auto o = parse_responses(got);
                        if (!o.responses.empty() && !o.garbled) {
                            status = o.responses.front().status;
                            if (o.responses.front().closes) c.reset();
                            break;
                        }
                    }
                }
                if (!status) c.reset();
            } catch (const std::exception&) {
                c.reset();
            }
            std::lock_guard lock{mutex_};
            samples_.push_back({sent, clock_type::now(), status});
        }
    }

    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<sample> samples_;
    std::vector<std::thread> threads_;
};

std::string summary(const std::vector<sample>& samples, milliseconds* worst = nullptr) {
    std::map<unsigned, int> by_status;
    milliseconds w{0};
    for (auto& s : samples) ++by_status[s.status], w = std::max(w, s.latency());
    if (worst) *worst = w;
    std::string out;
    for (auto& [status, n] : by_status)
        out += (out.empty() ? "" : ", ") + std::to_string(status) + " x" + std::to_string(n);
    return out + " (slowest " + std::to_string(w.count()) + " ms)";
}

// How long after `from` the load saw only 200s (the rest of the samples up to `to`).
long long recovered_after_ms(const std::vector<sample>& samples, clock_type::time_point from) {
    clock_type::time_point last_bad = from;
    for (auto& s : samples)
        if (s.status != 200) last_bad = std::max(last_bad, s.done);
    return std::chrono::duration_cast<milliseconds>(last_bad - from).count();
}

}  // namespace

TEST_CASE("database faults under load: 5xx only during the fault, recovery, counted",
          "[hardening]") {
    auto db = make_standin();
    server srv{db->uri(),
               {.args = {"--workers", "4", "--db-timeout-ms", "800",
                         "--server-selection-timeout-ms", "1000"}}};
    steady_client polite{srv.port()};
    recording_load load{srv.port(), "/mongo/small", 6};
    auto now = [] { return clock_type::now(); };
    auto is_fault_status = [](unsigned s) { return s == 502 || s == 503 || s == 504; };
    // Whatever happens, an answer comes within the driver's deadlines and some slack.
    const milliseconds bound{1000 + 800 + 2500};
    std::string report;

    std::this_thread::sleep_for(1500ms);
    auto t0 = now();
    std::this_thread::sleep_for(1000ms);
    {
        auto s = load.between(t0, now());
        INFO("baseline: " << summary(s));
        REQUIRE_FALSE(s.empty());
        for (auto& x : s) CHECK(x.status == 200);
    }

    // 1. The database goes away, then comes back on the same port.
    auto fault = now();
    db->stop();
    std::this_thread::sleep_for(3000ms);
    auto fault_end = now();
    db->start();
    std::this_thread::sleep_for(6000ms);
    {
        auto during = load.between(fault + 200ms, fault_end);
        auto after = load.between(fault_end, now());
        milliseconds worst{};
        std::string d = summary(during, &worst);
        INFO("stopped: " << d << "; after restart: " << summary(after));
        REQUIRE_FALSE(during.empty());
        for (auto& x : during) CHECK(is_fault_status(x.status));
        CHECK(worst < bound);
        auto rec = recovered_after_ms(after, fault_end);
        CHECK(rec < 5000);
        report +=
            "| stand-in stopped 3 s, restarted | " + d + " | " + std::to_string(rec) + " ms |\n";
    }

    // 2. Replies slower than the query deadline.
    fault = now();
    db->set_latency_ms(1500);
    std::this_thread::sleep_for(3000ms);
    fault_end = now();
    db->set_latency_ms(0);
    std::this_thread::sleep_for(5000ms);
    {
        auto during = load.between(fault + 200ms, fault_end);
        auto after = load.between(fault_end + bound, now());
        milliseconds worst{};
        std::string d = summary(during, &worst);
        INFO("slow: " << d << "; after: " << summary(after));
        REQUIRE_FALSE(during.empty());
        for (auto& x : during) CHECK(is_fault_status(x.status));
        CHECK(worst < bound);
        auto rec = recovered_after_ms(load.between(fault_end, now()), fault_end);
        CHECK(rec < 5000);
        report += "| replies 1500 ms late (deadline 800 ms) for 3 s | " + d + " | " +
                  std::to_string(rec) + " ms |\n";
    }

    // 3. Every command fails (not the handshake).
    fault = now();
    db->fail_next(1000000, 2, "injected by the hardening test");
    std::this_thread::sleep_for(3000ms);
    fault_end = now();
    db->fail_next(0, 0);
    std::this_thread::sleep_for(4000ms);
    {
        auto during = load.between(fault + 200ms, fault_end);
        milliseconds worst{};
        std::string d = summary(during, &worst);
        INFO("failing: " << d);
        REQUIRE_FALSE(during.empty());
        for (auto& x : during) CHECK(is_fault_status(x.status));
        CHECK(worst < bound);
        auto rec = recovered_after_ms(load.between(fault_end, now()), fault_end);
        CHECK(rec < 5000);
        report += "| every command fails (code 2) for 3 s | " + d + " | " + std::to_string(rec) +
                  " ms |\n";
    }
    load.stop();
    polite.stop();

    std::string text = metrics_text(srv.port());
    const double unavailable = metric(text, "coroserve_db_unavailable_total");
    const double timeouts = metric(text, "coroserve_db_timeouts_total");
    const double errors = metric(text, "coroserve_db_errors_total");
    std::printf(
        "| fault | answers during it | all 200 again after |\n|---|---|---|\n%s"
        "metrics: db_unavailable_total %.0f, db_timeouts_total %.0f, db_errors_total %.0f\n",
        report.c_str(), unavailable, timeouts, errors);
    CHECK(unavailable > 0);
    CHECK(timeouts > 0);
    CHECK(errors > 0);
    INFO("polite client: " << polite.last_problem());
    CHECK(polite.not_ok() == 0);
    CHECK(polite.failures() == 0);
    CHECK(srv.running());
}
