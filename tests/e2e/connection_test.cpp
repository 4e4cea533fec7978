// Connection handling: keep-alive, pipelining answered in order, HEAD, HTTP/1.0, many
// concurrent connections, and the connection limit.
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;

namespace {

// A request whose answer can be recognised: the target, whether it is HEAD, and a check of
// the response that says whether it is the answer to this request.
struct probe {
    std::string method = "GET";
    std::string target;
    std::function<bool(const response&)> matches;
};

// The probes used by pipelining and concurrency tests; each answer differs from its
// neighbours' so that an answer out of order is caught.
probe make_probe(std::size_t i) {
    static const auto small = read_json_file(test_support::standin::data_dir() + "/small_doc.json");
    static const auto big = read_json_file(test_support::standin::data_dir() + "/big_doc.json");
    switch (i % 5) {
        case 0: {
            auto ms = i % 9;
            return {"GET", "/sleep/async?ms=" + std::to_string(ms), [ms](const response& r) {
                        return r.status == 200 && parse(r.body).at("slept_ms") == ms;
                    }};
        }
        case 1:
            return {"GET", "/json", [](const response& r) {
                        return r.status == 200 &&
                               parse(r.body).at("message").as_string() == "Hello, World!";
                    }};
        case 2: {
            int n = i % 2 ? 43 : 42;
            return {
                "GET",
                "/mongo/" + std::string{strings_collection} + "/article-" + std::to_string(n),
                [n](const response& r) { return r.status == 200 && parse(r.body).at("n") == n; }};
        }
        case 3:
            if (i % 2)
                return {"GET", "/mongo/big", [](const response& r) {
                            return r.status == 200 && same_json(parse(r.body), big);
                        }};
            return {"GET", "/mongo", [](const response& r) {
                        return r.status == 200 && same_json(parse(r.body), small);
                    }};
        default:
            return {"HEAD", "/mongo/small", [](const response& r) {
                        return r.status == 200 && r.body.empty() &&
                               r.header("Content-Length") == "75";
                    }};
    }
}

}  // namespace

TEST_CASE("Keep-alive: 1000 requests on one connection", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    for (int i = 0; i < 1000; ++i) {
        auto r = c.get(i % 10 == 0 ? "/mongo" : "/json");
        REQUIRE(r.status == 200);
        REQUIRE(r.version == 11);
        REQUIRE_FALSE(r.closes());
        if (i % 10 == 0) REQUIRE(parse(r.body).at("canonicalUrl").as_string() == "http://foo.com");
    }
    // All of it was one connection (this /metrics request is on the same one).
    auto m = c.get("/metrics");
    REQUIRE(metric(m.body, "coroserve_connections_accepted_total") == 1);
    REQUIRE(metric(m.body, "coroserve_requests_total{route=\"/json\",status=\"200\"}") == 900);
    REQUIRE(metric(m.body, "coroserve_requests_total{route=\"/mongo\",status=\"200\"}") == 100);
}

TEST_CASE("Pipelining: 100 requests written at once are answered in order", "[e2e][mongo]") {
    auto model = GENERATE(as<std::string>{}, "reuseport", "shared");
    INFO("--io-model " << model);
    database db;
    server srv{db.uri(), {"--io-model", model, "--demo-endpoints"}};
    connection c{srv.port()};
    std::vector<probe> probes;
    std::string batch;
    for (std::size_t i = 0; i < 100; ++i) {
        probes.push_back(make_probe(i));
        batch += format_request(probes.back().method, probes.back().target);
    }
    c.send(batch);
    for (std::size_t i = 0; i < probes.size(); ++i) {
        INFO("answer " << i << " to " << probes[i].method << " " << probes[i].target);
        auto r = c.expect_response(10s, probes[i].method == "HEAD");
        INFO("status " << r.status << " body " << r.body.substr(0, 200));
        REQUIRE(probes[i].matches(r));
    }
    REQUIRE(c.pending().empty());

    // A pipeline that ends with "Connection: close": everything answered, then closed.
    std::string last = get_request("/json") + get_request("/sleep/async?ms=50") +
                       format_request("GET", "/healthz", {"Connection: close"}) +
                       get_request("/json");  // after the close: never answered
    c.send(last);
    REQUIRE(c.expect_response().status == 200);
    REQUIRE(parse(c.expect_response().body).at("slept_ms") == 50);
    auto r = c.expect_response();
    REQUIRE(r.status == 200);
    REQUIRE(r.closes());
    REQUIRE(c.wait_closed(5s));
    REQUIRE(c.pending().empty());
}

TEST_CASE("HEAD answers the headers of GET without a body", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    for (const char* target :
         {"/json", "/mongo", "/mongo/big",
          "/mongo/small/"
          "537416b501d53a77bb94135c",
          "/healthz", "/readyz", "/sleep/async?ms=1", "/sleep?ms=1",
          "/mongo/small/000000000000000000000000", "/nope", "/mongo/bad.name"}) {
        INFO("target " << target);
        auto g = c.get(target);
        // HEAD then GET in one write: if HEAD carried a body, the GET answer would not parse.
        c.send(format_request("HEAD", target) + get_request(target));
        auto h = c.expect_response(5s, true);
        auto g2 = c.expect_response();
        REQUIRE(h.status == g.status);
        REQUIRE(h.header("Content-Length") == g.header("Content-Length"));
        REQUIRE(h.header("Content-Length") == std::to_string(g.body.size()));
        REQUIRE(h.header("Content-Type") == g.header("Content-Type"));
        REQUIRE(h.has_header("Date"));
        REQUIRE(g2.status == g.status);
        REQUIRE(g2.body == g.body);
    }
    // /metrics too (its body changes between requests, its type does not).
    c.send(format_request("HEAD", "/metrics") + get_request("/json"));
    auto h = c.expect_response(5s, true);
    REQUIRE(h.status == 200);
    REQUIRE(h.header("Content-Type")->starts_with("text/plain"));
    REQUIRE(std::stoul(*h.header("Content-Length")) > 100);
    REQUIRE(c.expect_response().status == 200);
    // And nothing follows.
    REQUIRE_FALSE(c.wait_closed(200ms));
    REQUIRE(c.pending().empty());
}

TEST_CASE("HTTP/1.0: answered in 1.0, closed unless keep-alive is asked", "[e2e]") {
    server srv{no_database_uri};
    {
        connection c{srv.port()};
        c.send("GET /json HTTP/1.0\r\n\r\n");  // no Host: fine in 1.0
        auto r = c.expect_response();
        REQUIRE(r.version == 10);
        REQUIRE(r.status == 200);
        REQUIRE(r.body == R"({"message":"Hello, World!"})");
        REQUIRE_FALSE(r.header("Connection") == "keep-alive");
        REQUIRE(c.wait_closed(5s));
    }
    {
        connection c{srv.port()};
        for (int i = 0; i < 3; ++i) {
            c.send("GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            auto r = c.expect_response();
            REQUIRE(r.version == 10);
            REQUIRE(r.status == 200);
            REQUIRE(r.header("Connection") == "keep-alive");
        }
        c.send("GET /healthz HTTP/1.0\r\n\r\n");  // the last one, without keep-alive
        auto r = c.expect_response();
        REQUIRE(r.version == 10);
        REQUIRE(r.status == 200);
        REQUIRE(c.wait_closed(5s));
    }
    {
        // An error in 1.0 is answered in 1.0.
        connection c{srv.port()};
        c.send("GET /nope HTTP/1.0\r\n\r\n");
        auto r = c.expect_response();
        REQUIRE(r.version == 10);
        REQUIRE(r.status == 404);
        REQUIRE(c.wait_closed(5s));
    }
    {
        // HTTP/1.1 with "Connection: close" closes too.
        connection c{srv.port()};
        auto r = c.request("GET", "/json", {"Connection: close"});
        REQUIRE(r.version == 11);
        REQUIRE(r.header("Connection") == "close");
        REQUIRE(c.wait_closed(5s));
    }
}

TEST_CASE("Requests in pieces, over the read buffer, or cut across a pipeline are answered",
          "[e2e]") {
    // The server reads the start of a request into its small buffer and parses what that holds
    // before it reads again: each way a request can straddle those reads gets the same answer.
    server srv{no_database_uri};
    connection c{srv.port()};
    auto hello = [](const response& r) {
        return r.status == 200 && r.body == R"({"message":"Hello, World!"})";
    };
    // A header in three pieces with pauses: each piece comes in a read of its own.
    for (std::string_view piece : {"GET /json HT", "TP/1.1\r\nHost: a\r\n", "\r\n"}) {
        c.send(piece);
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(hello(c.expect_response()));
    // A header of 6 KiB: over the buffer, within the 8 KiB limit.
    c.send(format_request("GET", "/json", {"X-Pad: " + std::string(6000, 'p')}));
    REQUIRE(hello(c.expect_response()));
    // A body in two writes, its first part in the header's packet; read whole, then 405.
    const std::string post = format_request("POST", "/json", {}, std::string(3000, 'b'));
    c.send(post.substr(0, 500));
    std::this_thread::sleep_for(50ms);
    c.send(post.substr(500));
    REQUIRE(c.expect_response().status == 405);
    // A whole request and the first bytes of the next one, then the rest of it.
    const std::string two = get_request("/json") + get_request("/healthz");
    const auto cut = get_request("/json").size() + 7;
    c.send(two.substr(0, cut));
    REQUIRE(hello(c.expect_response()));
    std::this_thread::sleep_for(50ms);
    c.send(two.substr(cut));
    auto health = c.expect_response();
    REQUIRE(health.status == 200);
    REQUIRE(health.body == R"({"status":"ok"})");
    // Back to small requests on the same connection, nothing left over.
    REQUIRE(hello(c.get("/json")));
    REQUIRE_FALSE(c.wait_closed(100ms));
    REQUIRE(c.pending().empty());
}

TEST_CASE("2000 concurrent connections are all answered correctly", "[e2e][mongo]") {
    constexpr std::size_t n = 2000;
    const auto limit = raise_fd_limit(n + 500);
    if (limit < n + 100) {
        WARN("skipped: RLIMIT_NOFILE is only " << limit);
        return;
    }
    auto model = GENERATE(as<std::string>{}, "reuseport", "shared");
    INFO("--io-model " << model);
    database db;
    // The server inherits the raised descriptor limit.
    server srv{db.uri(),
               {"--queue", "4096", "--io-model", model, "--io-threads", "2", "--demo-endpoints"}};

    const auto start = std::chrono::steady_clock::now();
    std::vector<connection> conns;
    conns.reserve(n);
    for (std::size_t i = 0; i < n; ++i) conns.emplace_back(srv.port(), 10s);

    // Every third one waits 500 ms on a timer, so they are all in flight together; the rest
    // mix /json and the database.
    std::vector<probe> probes;
    for (std::size_t i = 0; i < n; ++i) {
        probe p = i % 3 == 0
                      ? probe{"GET", "/sleep/async?ms=500",
                              [](const response& r) {
                                  return r.status == 200 && parse(r.body).at("slept_ms") == 500;
                              }}
                      : make_probe(i);
        conns[i].send(format_request(p.method, p.target));
        probes.push_back(std::move(p));
    }

    // While the sleeping ones are held, the server sees every connection open at once.
    double open = 0;
    for (int i = 0; i < 100 && open < n; ++i) {
        open = metric_now(srv.port(), "coroserve_open_connections");
        if (open < n) std::this_thread::sleep_for(20ms);
    }
    CHECK(open >= n);

    std::vector<bool> done(n, false);
    std::size_t answered = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (answered < n && std::chrono::steady_clock::now() < deadline) {
        std::vector<pollfd> fds;
        std::vector<std::size_t> index;
        for (std::size_t i = 0; i < n; ++i)
            if (!done[i]) {
                fds.push_back({conns[i].fd(), POLLIN, 0});
                index.push_back(i);
            }
        if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
        for (std::size_t k = 0; k < fds.size(); ++k) {
            if (!fds[k].revents) continue;
            auto i = index[k];
            auto r = conns[i].expect_response(10s, probes[i].method == "HEAD");
            INFO("connection " << i << ": " << probes[i].target << " -> " << r.status << " "
                               << r.body.substr(0, 200));
            REQUIRE(probes[i].matches(r));
            done[i] = true;
            ++answered;
        }
    }
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    INFO("elapsed " << elapsed << " ms");
    REQUIRE(answered == n);
    CHECK(elapsed < 30000);
    // And the connections are still usable.
    for (std::size_t i = 0; i < n; i += 97) REQUIRE(conns[i].get("/json").status == 200);
}

TEST_CASE("A burst of connections cannot overshoot --max-connections", "[e2e]") {
    // The accept loop takes what waits in the listen queue in one turn; each session it spawns
    // must count itself open before the next one is accepted.
    server srv{no_database_uri, {"--max-connections", "10", "--io-threads", "1"}};
    std::vector<connection> burst;
    for (int i = 0; i < 50; ++i) burst.emplace_back(srv.port());
    int served = 0, refused = 0;
    for (auto& c : burst) {
        c.send(get_request("/json"));
        auto r = c.read_response(5s);
        REQUIRE(r);
        served += r->status == 200;
        refused += r->status == 503;
    }
    INFO(served << " served, " << refused << " refused");
    CHECK(served == 10);
    CHECK(refused == 40);
}

TEST_CASE("Connections over --max-connections get 503 and are closed", "[e2e]") {
    server srv{no_database_uri, {"--max-connections", "10"}};
    std::vector<connection> held;
    for (int i = 0; i < 10; ++i) {
        held.emplace_back(srv.port());
        REQUIRE(held.back().get("/json").status == 200);  // accepted and registered
    }
    connection over{srv.port()};
    auto r = over.read_response(5s);  // answered before it asks anything
    REQUIRE(r);
    REQUIRE(r->status == 503);
    REQUIRE(r->has_header("Retry-After"));
    REQUIRE(parse(r->body).at("status") == 503);
    REQUIRE(over.wait_closed(5s));
    // Also when the client sends its request at once (the answer is not lost to a reset).
    for (int i = 0; i < 20; ++i) {
        connection eager{srv.port()};
        eager.send(get_request("/json"));
        auto e = eager.read_response(5s);
        REQUIRE(e);
        REQUIRE(e->status == 503);
    }
    REQUIRE(metric(held.front().get("/metrics").body, "coroserve_connections_refused_total") == 21);

    // Once one leaves, a new connection is served again.
    held.pop_back();
    bool served = false;
    for (int i = 0; i < 50 && !served; ++i) {
        connection c{srv.port()};
        c.send(get_request("/json"));
        auto a = c.read_response(5s);
        served = a && a->status == 200;
        if (!served) std::this_thread::sleep_for(50ms);
    }
    REQUIRE(served);
}

TEST_CASE("A client that does not read its answers is dropped after the write timeout",
          "[e2e][mongo]") {
    database db;
    server srv{db.uri(), {"--write-timeout-ms", "300"}};
    connection c{srv.port()};
    int small = 4096;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    // ~10 KB answers, far more than the socket buffers hold, and nobody reads them.
    std::string batch;
    for (int i = 0; i < 800; ++i) batch += get_request("/mongo/big");
    try {
        c.send(batch, 3s);
    } catch (const http_error&) {
        // the server stopped reading (its writes are stuck): expected
    }
    double timeouts = 0;
    for (int i = 0; i < 300 && timeouts < 1; ++i) {
        timeouts = metric_now(srv.port(), "coroserve_write_timeouts_total");
        if (timeouts < 1) std::this_thread::sleep_for(20ms);
    }
    REQUIRE(timeouts == 1);
    // What was written can still be read, then the connection ends before all 800 answers.
    int answers = 0;
    while (answers < 800) {
        std::optional<response> r;
        try {
            r = c.read_response(5s);
        } catch (const http_error&) {
            break;  // cut in the middle of an answer
        }
        if (!r) break;
        REQUIRE(r->status == 200);
        ++answers;
    }
    INFO(answers << " answers read");
    CHECK(answers < 800);
    REQUIRE(c.wait_closed(5s));
    // Others are served all along.
    REQUIRE(get(srv.port(), "/mongo").status == 200);
}

TEST_CASE("A client that half-closes after its request still gets the answer", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    c.send(get_request("/mongo") + get_request("/json"));
    c.shutdown_write();
    auto a = c.expect_response();
    REQUIRE(a.status == 200);
    REQUIRE(parse(a.body).at("canonicalUrl").as_string() == "http://foo.com");
    REQUIRE(c.expect_response().status == 200);
    REQUIRE(c.wait_closed(5s));
}
