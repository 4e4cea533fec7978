// A soak: mixed load (small and big documents, 404s and bad ids, hostile requests, clients
// that vanish or never read) for COROSERVE_SOAK_SECONDS (default 80), with the server's RSS and
// open descriptors sampled from /proc every second. No growth after warm-up beyond the stated
// tolerance; every descriptor back once the clients are gone.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "harness.hpp"

using namespace hardening;

namespace {

using clock_type = std::chrono::steady_clock;

int soak_seconds() {
    const char* v = std::getenv("COROSERVE_SOAK_SECONDS");
    int s = v ? std::atoi(v) : 0;
    return s > 0 ? std::max(s, 30) : 80;
}

// Runs `fn` in a loop on its own thread until stopped.
class looper {
  public:
    template <class Fn>
    explicit looper(Fn fn)
        : thread_([this, fn]() mutable {
              while (!stop_) {
                  try {
                      fn();
                  } catch (const std::exception&) {
                      ++errors;
                  }
              }
          }) {}
    ~looper() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::atomic<std::uint64_t> errors{0}, rounds{0}, bad{0};

  private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

struct sample {
    int second;
    long rss;
    int fds;
};

}  // namespace

TEST_CASE("soak: mixed load, no growth after warm-up, no leaked descriptors", "[hardening][soak]") {
    const int seconds = soak_seconds();
    const int warm_up = std::min(20, seconds / 3);
    auto db = make_standin();
    server srv{db->uri(),
               {.args = {"--workers", "4", "--header-timeout-ms", "1000", "--write-timeout-ms",
                         "1000", "--idle-timeout-ms", "2000"}}};
    // Baseline with the database connections open: as many at once as there are workers.
    {
        std::vector<std::thread> warm;
        for (int i = 0; i < 8; ++i)
            warm.emplace_back([&] {
                for (int k = 0; k < 20; ++k) get(srv.port(), "/mongo/big");
            });
        for (auto& t : warm) t.join();
    }
    std::this_thread::sleep_for(500ms);
    const long rss_start = rss_kib(srv.pid());
    const int fds_start = open_fds(srv.pid());

    std::vector<std::unique_ptr<steady_client>> polite;
    for (auto target : {"/mongo/small", "/mongo/small", "/mongo/big", "/json"})
        polite.push_back(std::make_unique<steady_client>(srv.port(), target, 1ms));

    // Not found, bad ids, wrong methods: 4xx on a keep-alive connection.
    looper errors{[&, i = 0]() mutable {
        static const std::vector<std::string> targets = {
            request("/nope"), request("/mongo/secret"), request("/mongo/articles/bad$id"),
            request("/json", {"Content-Length: 2"}, "POST") + "{}"};
        auto o =
            exchange(srv.port(), targets[static_cast<std::size_t>(i++) % targets.size()], 0, 5s);
        if (o.responses.empty() || o.responses[0].status < 400 || o.responses[0].status >= 500)
            ++errors.bad;
    }};
    // Hostile requests on fresh connections: each must end in a 4xx or a close.
    looper hostile{[&, i = 0]() mutable {
        static const std::vector<std::string> cases = {
            "GET /json HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
            "chunked\r\n\r\n0\r\n\r\n",
            "GET /json HTTP/1.1\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n",
            "\x16\x03\x01\x02\x00garbage\r\n\r\n",
            "GET /json HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n",
            "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET /json HTTP/2.0\r\n\r\n"};
        auto o = exchange(srv.port(), cases[static_cast<std::size_t>(i++) % cases.size()], 0, 5s);
        for (auto& r : o.responses)
            if (r.status < 400 || r.status >= 500) ++hostile.bad;
        std::this_thread::sleep_for(5ms);
    }};
    // Slow clients: a trickled header abandoned halfway, a vanishing client, a reader that
    // never reads its big answers.
    looper slow{[&, i = 0]() mutable {
        switch (i++ % 3) {
            case 0: {
                raw_connection c{srv.port()};
                c.send("GET /mongo/big HTTP/1.1\r\nX-A: ");
                std::this_thread::sleep_for(300ms);
                c.reset();
                break;
            }
            case 1: {
                raw_connection c{srv.port()};
                c.send("GET /json HTTP/1.1\r\n");
                c.wait_closed(6s);  // the header deadline (twice at most): 408 and a close
                if (!c.closed()) ++slow.bad;
                break;
            }
            case 2: {
                raw_connection c{srv.port()};
                std::string pipeline;
                for (int k = 0; k < 300; ++k) pipeline += "GET /mongo/big HTTP/1.1\r\n\r\n";
                c.send(pipeline, 0, 0ms, 2s);
                std::this_thread::sleep_for(1500ms);
                break;  // closed unread
            }
        }
    }};

    std::vector<sample> samples;
    const auto start = clock_type::now();
    for (int s = 1; s <= seconds; ++s) {
        std::this_thread::sleep_until(start + std::chrono::seconds{s});
        samples.push_back({s, rss_kib(srv.pid()), open_fds(srv.pid())});
        REQUIRE(srv.running());
    }
    for (auto& p : polite) p->stop();
    errors.stop();
    hostile.stop();
    slow.stop();
    // Every client is gone; the server's own deadlines (2 s at most) close what is left.
    std::this_thread::sleep_for(2500ms);
    const long rss_end = rss_kib(srv.pid());
    const int fds_end = open_fds(srv.pid());

    auto max_rss = [&](int from, int to) {
        long m = 0;
        for (auto& x : samples)
            if (x.second >= from && x.second <= to) m = std::max(m, x.rss);
        return m;
    };
    const long rss_warm = max_rss(warm_up - 5, warm_up);
    const long rss_last = max_rss(seconds - 10, seconds);
    int fds_peak = 0;
    for (auto& x : samples) fds_peak = std::max(fds_peak, x.fds);
    std::uint64_t ok = 0;
    for (auto& p : polite) ok += p->ok();
    auto text = metrics_text(srv.port());
    std::printf(
        "soak %d s (warm-up %d s): RSS %ld KiB at start, %ld after warm-up, %ld in the last 10 s, "
        "%ld after the clients left; fds %d at start, peak %d, %d at the end; %llu polite 200s, "
        "%.0f requests answered in all\n",
        seconds, warm_up, rss_start, rss_warm, rss_last, rss_end, fds_start, fds_peak, fds_end,
        static_cast<unsigned long long>(ok),
        metric(text, "coroserve_request_duration_seconds_count"));

    for (auto& p : polite) {
        INFO("polite client: " << p->last_problem());
        CHECK(p->ok() > 0);
        CHECK(p->not_ok() == 0);
        CHECK(p->failures() == 0);
    }
    CHECK(errors.bad == 0);
    CHECK(hostile.bad == 0);
    CHECK(slow.bad == 0);
    if (fds_end > fds_start + 1) {  // show what is open, for the report
        auto cmd = "ls -l /proc/" + std::to_string(srv.pid()) +
                   "/fd; ss -tanp | grep 'pid=" + std::to_string(srv.pid()) + ",'";
        [[maybe_unused]] int rc = std::system(cmd.c_str());
    }
    // Tolerance: allocator noise of 8 MiB or 15 %, whichever is larger.
    if (!sanitized_build)
        CHECK(rss_last <= rss_warm + std::max<long>(8 * 1024, rss_warm * 15 / 100));
    // No leaked sockets: back to the baseline (the database pool may hold one more).
    CHECK(fds_end <= fds_start + 1);
    CHECK(metric(text, "coroserve_open_connections") <= 1);
}
