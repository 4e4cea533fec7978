// Overload: more connections than file descriptors (a low RLIMIT_NOFILE), a saturated blocking
// pool, and a flood of the demo /sleep. The server answers or backs off, keeps serving what it
// holds, and recovers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.hpp"

using namespace hardening;

namespace {

using clock_type = std::chrono::steady_clock;

// One keep-alive request on an open connection; the status, or 0 if nothing came in time.
unsigned ask(raw_connection& c, std::string_view target, milliseconds timeout = 5s,
             std::string* body = nullptr) {
    if (!c.send(request(target), 0, 0ms, timeout)) return 0;
    std::string got;
    auto deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline && !c.closed()) {
        got += c.read_some(1, 100ms);
        auto o = parse_responses(got);
        if (!o.responses.empty() && !o.garbled) {
            if (body) *body = o.responses.front().body;
            return o.responses.front().status;
        }
    }
    return 0;
}

// A connected TCP socket to 127.0.0.1:port, or -1; non-blocking connects return at once (the
// connection completes in the listen queue, accepted or not).
int connect_to(std::uint16_t port, bool non_blocking) {
    int fd = ::socket(AF_INET, SOCK_STREAM | (non_blocking ? SOCK_NONBLOCK : 0), 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

TEST_CASE("newcomers are accepted at once while thousands of connections keep the server busy",
          "[hardening]") {
    // Each busy connection sends a long pipeline, so that every one of them always has a
    // handler queued in the I/O thread; the newcomers then connect all at once. An accept that
    // waited its turn behind all those handlers, one connection per turn, left newcomers in
    // the listen queue for seconds (at c=5000 in the benchmark: hundreds of them for the whole
    // run, counted by wrk as timeouts).
    auto db = make_standin();
    server srv{db->uri(), {.args = {"--io-threads", "1"}}};
    constexpr int busy = 2000, pipelined = 150, newcomers = 400;
    const auto first = get(srv.port(), "/json");
    REQUIRE(first);
    const std::size_t answer_head = first->head.size();  // a lower bound of an answer's size

    std::string batch;
    for (int i = 0; i < pipelined; ++i) batch += request("/json");
    std::vector<int> busy_fds;
    for (int i = 0; i < busy; ++i) {
        int fd = connect_to(srv.port(), false);
        REQUIRE(fd >= 0);
        busy_fds.push_back(fd);
    }
    for (int fd : busy_fds)  // 2000 x 6 KB: the kernel buffers take it without blocking
        REQUIRE(::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(batch.size()));

    const auto start = clock_type::now();
    std::vector<pollfd> fds;
    for (int i = 0; i < newcomers; ++i) {
        int fd = connect_to(srv.port(), true);
        REQUIRE(fd >= 0);
        fds.push_back({fd, POLLOUT, 0});
    }
    // Send each newcomer's request once its connect is done, then wait for every answer.
    const std::string one = request("/json", {"Connection: close"});
    std::vector<std::string> got(newcomers);
    int answered = 0;
    auto last_answer = clock_type::duration{};
    while (answered < newcomers && clock_type::now() - start < 60s) {
        REQUIRE(::poll(fds.data(), fds.size(), 100) >= 0);
        for (int i = 0; i < newcomers; ++i) {
            auto& p = fds[i];
            if (p.revents & POLLOUT) {
                REQUIRE(::send(p.fd, one.data(), one.size(), MSG_NOSIGNAL) ==
                        static_cast<ssize_t>(one.size()));
                p.events = POLLIN;
            } else if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[4096];
                ssize_t n = ::recv(p.fd, buf, sizeof buf, 0);
                if (n > 0) {
                    got[i].append(buf, static_cast<std::size_t>(n));
                } else {               // the server closed after its answer
                    p.fd = -p.fd - 1;  // poll() skips negative descriptors
                    ++answered;
                    last_answer = clock_type::now() - start;
                }
            }
        }
    }
    // The busy connections were still at work when the last newcomer had its answer: one of
    // them has not received all its answers yet.
    int unfinished = 0;
    for (int fd : busy_fds) {
        int ready = 0;
        ::ioctl(fd, FIONREAD, &ready);
        const auto full = static_cast<std::size_t>(pipelined) * answer_head;
        unfinished += static_cast<std::size_t>(ready) < full;
    }
    for (auto& p : fds) ::close(p.fd < 0 ? -p.fd - 1 : p.fd);
    for (int fd : busy_fds) ::close(fd);

    INFO("last newcomer answered after "
         << std::chrono::duration_cast<milliseconds>(last_answer).count() << " ms; " << unfinished
         << " of " << busy << " busy connections still unfinished");
    REQUIRE(answered == newcomers);
    for (const auto& g : got) {
        auto o = parse_responses(g);
        REQUIRE(o.responses.size() == 1);
        CHECK(o.responses.front().status == 200);
    }
    CHECK(unfinished > 0);
    CHECK(last_answer < 3s);
    CHECK(srv.running());
}

TEST_CASE("more connections than descriptors: accept backs off, serves, recovers", "[hardening]") {
    auto db = make_standin();
    constexpr int limit = 64;
    server srv{
        db->uri(),
        {.args = {"--workers", "2", "--header-timeout-ms", "30000", "--idle-timeout-ms", "30000"},
         .nofile = limit}};
    // Baseline with the database connections open: one /mongo first.
    auto warm = get(srv.port(), "/mongo");
    REQUIRE(warm);
    REQUIRE(warm->status == 200);
    std::this_thread::sleep_for(300ms);
    const int fds_at_start = open_fds(srv.pid());

    // Ten connections in use before the flood; one of them also warms the database pool.
    std::vector<std::unique_ptr<raw_connection>> existing;
    for (int i = 0; i < 10; ++i) {
        existing.push_back(std::make_unique<raw_connection>(srv.port()));
        REQUIRE(ask(*existing.back(), i == 0 ? "/mongo" : "/json") == 200);
    }
    // The flood: the kernel completes these handshakes; the server runs out of descriptors.
    std::vector<std::unique_ptr<raw_connection>> flood;
    for (int i = 0; i < 3 * limit; ++i)
        flood.push_back(std::make_unique<raw_connection>(srv.port()));
    CHECK(eventually(
        [&] {
            std::string text;
            return ask(*existing[0], "/metrics", 5s, &text) == 200 &&
                   metric(text, "coroserve_accept_errors_total") > 0;
        },
        5s));
    const int fds_flooded = open_fds(srv.pid());
    CHECK(fds_flooded >= limit - 2);

    // Existing connections keep being served, database calls included.
    for (std::size_t i = 1; i < existing.size(); ++i)
        CHECK(ask(*existing[i], i % 2 ? "/json" : "/mongo/small") == 200);
    // A new connection waits in the backlog meanwhile (no answer, no crash).
    auto waiting = std::make_unique<raw_connection>(srv.port());
    waiting->send(request("/json"));
    CHECK(waiting->read_some(1, 300ms).empty());

    // Free descriptors: the waiting client is answered, new ones succeed again.
    for (auto& c : flood) c->reset();
    flood.clear();
    std::string late = waiting->read_some(1, 10s);
    auto o = parse_responses(late + waiting->read_some(1000, 200ms));
    REQUIRE_FALSE(o.responses.empty());
    CHECK(o.responses.front().status == 200);
    CHECK(eventually(
        [&] {
            auto r = get(srv.port(), "/mongo", 2s);
            return r && r->status == 200;
        },
        10s));
    for (auto& c : existing) CHECK(ask(*c, "/json") == 200);
    existing.clear();
    waiting.reset();
    std::string text = metrics_text(srv.port());
    std::printf("descriptors: limit %d, server fds %d at start, %d flooded; accept errors %.0f\n",
                limit, fds_at_start, fds_flooded, metric(text, "coroserve_accept_errors_total"));
    CHECK(eventually([&] { return open_fds(srv.pid()) <= fds_at_start + 4; }, 5s));
    CHECK(srv.running());
}

TEST_CASE("pool saturation: excess requests get 503 + Retry-After at once, admitted ones finish",
          "[hardening]") {
    auto db = make_standin();
    server srv{db->uri(), {.args = {"--workers", "2", "--queue", "4", "--demo-endpoints"}}};
    steady_client polite{srv.port()};  // /json needs no pool thread: it must not notice

    constexpr int clients = 40;
    constexpr int sleep_ms = 400;
    struct result {
        unsigned status = 0;
        bool retry_after = false;
        long long ms = -1;
    };
    std::vector<result> results(clients);
    std::vector<std::unique_ptr<raw_connection>> conns;
    for (int i = 0; i < clients; ++i) conns.push_back(std::make_unique<raw_connection>(srv.port()));
    std::vector<std::thread> threads;
    const std::string req = request("/sleep?ms=" + std::to_string(sleep_ms));
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            auto start = clock_type::now();
            auto& c = *conns[static_cast<std::size_t>(i)];
            c.send(req);
            std::string got;
            while (!c.closed() && clock_type::now() - start < 15s) {
                got += c.read_some(1, 100ms);
                auto o = parse_responses(got);
                if (!o.responses.empty() && !o.garbled) {
                    auto& r = results[static_cast<std::size_t>(i)];
                    r.status = o.responses.front().status;
                    r.retry_after = o.responses.front().header("Retry-After").has_value();
                    r.ms =
                        std::chrono::duration_cast<milliseconds>(clock_type::now() - start).count();
                    break;
                }
            }
        });
    for (auto& t : threads) t.join();

    int ok = 0, rejected = 0;
    long long worst_rejection = 0, worst_admitted = 0;
    for (auto& r : results) {
        INFO("status " << r.status << " after " << r.ms << " ms");
        REQUIRE((r.status == 200 || r.status == 503));
        if (r.status == 503) {
            ++rejected;
            CHECK(r.retry_after);
            worst_rejection = std::max(worst_rejection, r.ms);
        } else {
            ++ok;
            worst_admitted = std::max(worst_admitted, r.ms);
        }
    }
    std::string text = metrics_text(srv.port());
    double counted = metric(text, "coroserve_pool_rejections_total{reason=\"queue_full\"}");
    std::printf(
        "pool saturation: %d admitted (slowest %lld ms), %d rejected with 503 (slowest "
        "%lld ms), %.0f counted in /metrics\n",
        ok, worst_admitted, rejected, worst_rejection, counted);
    // 2 running + 4 queued at a time; the rest are refused at once.
    CHECK(ok >= 6);
    CHECK(rejected >= clients - 12);
    CHECK(counted == rejected);
    CHECK(metric(text, "coroserve_requests_total{route=\"/sleep\",status=\"503\"}") == rejected);
    CHECK(worst_rejection < 1000);  // "at once": no pool time, only a loaded machine's scheduling
    // Admitted: at most (6 / 2) sleeps in a row, plus slack.
    CHECK(worst_admitted < 3 * sleep_ms + 2000);

    polite.stop();
    INFO("polite client: " << polite.last_problem());
    CHECK(polite.ok() > 0);
    CHECK(polite.not_ok() == 0);
    CHECK(polite.failures() == 0);
}

TEST_CASE("a /sleep flood cannot hold /mongo past its deadline, and /sleep is off by default",
          "[hardening]") {
    auto db = make_standin();
    {
        server plain{db->uri()};
        auto r = get(plain.port(), "/sleep?ms=1");
        REQUIRE(r);
        CHECK(r->status == 404);  // the demo endpoints are opt-in
        auto a = get(plain.port(), "/sleep/async?ms=1");
        REQUIRE(a);
        CHECK(a->status == 404);
    }

    // With them on, 40 sleeps of 3 s fill both workers and the queue: one at a time, they
    // would hold a /mongo request behind them for a minute.
    constexpr int db_timeout_ms = 1000;
    server srv{db->uri(),
               {.args = {"--demo-endpoints", "--workers", "2", "--db-timeout-ms",
                         std::to_string(db_timeout_ms), "--drain-timeout-ms", "100"}}};
    std::vector<std::unique_ptr<raw_connection>> sleepers;
    for (int i = 0; i < 40; ++i) {
        sleepers.push_back(std::make_unique<raw_connection>(srv.port()));
        sleepers.back()->send(request("/sleep?ms=3000"));
    }
    REQUIRE(eventually([&] { return metric(metrics_text(srv.port()), "coroserve_pool_busy") == 2; },
                       5s));

    // A /mongo request now, and one after the queue has stood past the admission target.
    for (auto pause : {0ms, 600ms}) {
        std::this_thread::sleep_for(pause);
        raw_connection c{srv.port()};
        auto start = clock_type::now();
        auto status = ask(c, "/mongo", 10s);
        auto ms = std::chrono::duration_cast<milliseconds>(clock_type::now() - start).count();
        std::printf("/mongo behind a /sleep flood (after %lld ms): %u in %lld ms\n",
                    static_cast<long long>(pause.count()), status, static_cast<long long>(ms));
        CHECK(status == 503);
        CHECK(ms < db_timeout_ms + 1000);  // at its deadline at the latest, not after the sleeps
    }
    auto text = metrics_text(srv.port());
    CHECK(metric(text, "coroserve_pool_rejections_total{reason=\"deadline\"}") +
              metric(text, "coroserve_pool_rejections_total{reason=\"queue_delay\"}") >=
          2);
}
