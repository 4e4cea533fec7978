// Every HTTP error path of the server, through raw bytes on a socket: 400 for malformed
// requests, 404, 405 with Allow, 408 and idle close, 413, 431. None of these need a database.
#include <catch2/catch.hpp>
#include <thread>

#include "fixture.hpp"

using namespace e2e;
using namespace std::chrono_literals;

namespace {

void require_error(const response& r, unsigned status) {
    INFO("status " << r.status << ", body " << r.body);
    REQUIRE(r.status == status);
    REQUIRE(r.header("Content-Type") == "application/json");
    REQUIRE(r.header("Content-Length") == std::to_string(r.body.size()));
    auto v = parse(r.body);
    REQUIRE(v.at("error").is_string());
    REQUIRE(v.at("status") == status);
}

// The server answered `status`, said it would close, and closed.
void require_error_then_close(connection& c, unsigned status) {
    auto r = c.expect_response(5s);
    require_error(r, status);
    REQUIRE(r.header("Connection") == "close");
    REQUIRE(c.wait_closed(5s));
    REQUIRE(c.pending().empty());
}

const char* bad_metric = "coroserve_bad_requests_total";

}  // namespace

TEST_CASE("Malformed requests are answered 400 and the connection is closed", "[e2e]") {
    server srv{no_database_uri};
    const std::vector<std::string> garbage = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /json\r\n\r\n",
        "GET /json HTTP/9.x\r\nHost: a\r\n\r\n",
        "GET /json HTTP/1.1\r\nthis line has no colon\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "G\x01T /json HTTP/1.1\r\n\r\n",
    };
    for (const auto& bytes : garbage) {
        INFO("request " << bytes);
        connection c{srv.port()};
        c.send(bytes);
        require_error_then_close(c, 400);
    }

    // Garbage pipelined behind a good request: the good one is answered, then 400 and close.
    {
        connection c{srv.port()};
        c.send(get_request("/json") + "BLAH BLAH\r\n\r\n");
        auto ok = c.expect_response();
        REQUIRE(ok.status == 200);
        REQUIRE_FALSE(ok.closes());
        require_error_then_close(c, 400);
    }
    // Content-Length and Transfer-Encoding together (a smuggling vector) are refused.
    {
        connection c{srv.port()};
        c.send(
            "GET /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 3\r\n\r\n0\r\n\r\n");
        require_error_then_close(c, 400);
    }

    // A request target that is not origin-form ("absolute" or "*") is not ours: 400, but the
    // request itself was well formed, so the connection stays open.
    connection c{srv.port()};
    c.send("GET http://example.com/json HTTP/1.1\r\nHost: a\r\n\r\n");
    require_error(c.expect_response(), 400);
    REQUIRE(c.get("/json").status == 200);
    REQUIRE(metric_now(srv.port(), bad_metric) == garbage.size() + 2);
}

TEST_CASE("Unknown paths are 404 and the connection stays open", "[e2e]") {
    server srv{no_database_uri};
    connection c{srv.port()};
    for (const char* target : {"/", "/nope", "/json/extra", "/mongo/a/b/c", "/sleep/sync",
                               "/metrics/x", "/JSON", "//json"}) {
        INFO("target " << target);
        auto r = c.get(target);
        require_error(r, 404);
        REQUIRE_FALSE(r.closes());
    }
    REQUIRE(c.get("/json").status == 200);
}

TEST_CASE("Other methods on known paths are 405 with Allow: GET, HEAD", "[e2e]") {
    server srv{no_database_uri};
    connection c{srv.port()};
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
        for (const char* target : {"/json", "/mongo", "/mongo/small", "/mongo/small/x", "/sleep",
                                   "/sleep/async", "/healthz", "/readyz", "/metrics"}) {
            INFO(method << " " << target);
            auto r = c.request(method, target);
            require_error(r, 405);
            REQUIRE(r.header("Allow") == "GET, HEAD");
        }
    }
    // A request with a body (within the limit) is read whole: the next request on the same
    // connection is parsed from the right place.
    c.send(format_request("POST", "/json", {}, std::string(500, 'x')));
    auto r = c.expect_response();
    require_error(r, 405);
    REQUIRE(c.get("/json").status == 200);
    // A chunked body is read whole too.
    c.send(
        "POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    require_error(c.expect_response(), 405);
    REQUIRE(c.get("/json").status == 200);
    // 404 wins over 405 for a path that is not ours.
    require_error(c.request("POST", "/nope"), 404);
}

TEST_CASE("A request header not received in time is answered 408, then closed", "[e2e]") {
    server srv{no_database_uri, {"--header-timeout-ms", "300"}};
    connection c{srv.port()};
    c.send("GET /json HTTP/1.1\r\nHost: a\r\n");  // half a header, never finished
    auto elapsed = time_ms([&] { require_error_then_close(c, 408); });
    CHECK(elapsed >= 250);
    CHECK(elapsed < 5000);
    REQUIRE(metric_now(srv.port(), "coroserve_header_timeouts_total") == 1);

    // Also on a kept-alive connection: a second request that stalls half way.
    connection k{srv.port()};
    REQUIRE(k.get("/json").status == 200);
    k.send("GET /json HTTP/1.1\r\nHo");
    require_error_then_close(k, 408);

    // A body that stops half way is late too.
    connection b{srv.port()};
    b.send("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    require_error_then_close(b, 408);

    // Trickling bytes does not reset the deadline: it is for the whole header.
    connection t{srv.port()};
    const std::string request = get_request("/json");
    bool answered = false;
    auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i + 1 < request.size() && i < 30; ++i) {
        try {
            t.send(request.substr(i, 1));
        } catch (const http_error&) {
            break;  // the server closed after its 408
        }
        std::this_thread::sleep_for(40ms);
        if (std::chrono::steady_clock::now() - start > 2s) break;
    }
    auto r = t.read_response(5s);
    answered = r.has_value();
    REQUIRE(answered);
    REQUIRE(r->status == 408);
}

TEST_CASE("A connection that sends nothing is closed after the header timeout", "[e2e]") {
    server srv{no_database_uri, {"--header-timeout-ms", "300"}};
    connection c{srv.port()};
    auto elapsed = time_ms([&] { REQUIRE(c.wait_closed(5s)); });
    CHECK(elapsed >= 250);
    REQUIRE(c.pending().empty());  // nothing was asked, nothing is answered
}

TEST_CASE("An idle keep-alive connection is closed after the idle timeout", "[e2e]") {
    server srv{no_database_uri, {"--idle-timeout-ms", "300"}};
    connection c{srv.port()};
    auto r = c.get("/json");
    REQUIRE(r.status == 200);
    REQUIRE_FALSE(r.closes());
    auto elapsed = time_ms([&] { REQUIRE(c.wait_closed(5s)); });
    CHECK(elapsed >= 250);
    CHECK(elapsed < 5000);
    REQUIRE(c.pending().empty());
    REQUIRE(metric_now(srv.port(), "coroserve_idle_timeouts_total") == 1);

    // A connection in use is not closed: requests 100 ms apart for longer than the timeout.
    server slow{no_database_uri, {"--idle-timeout-ms", "1000"}};
    connection busy{slow.port()};
    for (int i = 0; i < 25; ++i) {
        REQUIRE(busy.get("/json").status == 200);
        std::this_thread::sleep_for(100ms);
    }
}

TEST_CASE("A request body over the limit is answered 413, then closed", "[e2e]") {
    server srv{no_database_uri, {"--body-limit", "1024"}};
    {
        connection c{srv.port()};
        c.send(format_request("POST", "/json", {}, std::string(2000, 'x')));
        require_error_then_close(c, 413);
    }
    {
        // Announced in Content-Length, not sent: refused on the header alone.
        connection c{srv.port()};
        c.send("GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
        require_error_then_close(c, 413);
    }
    {
        // Exactly at the limit: read, and the method decides (405).
        connection c{srv.port()};
        c.send(format_request("POST", "/json", {}, std::string(1024, 'x')));
        require_error(c.expect_response(), 405);
        REQUIRE(c.get("/json").status == 200);
    }
    REQUIRE(metric_now(srv.port(), "coroserve_bodies_too_large_total") == 2);
}

TEST_CASE("A request header over the limit is answered 431, then closed", "[e2e]") {
    server srv{no_database_uri, {"--header-limit", "1024"}};
    {
        connection c{srv.port()};
        c.send(format_request("GET", "/json", {"X-Pad: " + std::string(2000, 'p')}));
        require_error_then_close(c, 431);
    }
    {
        // Many small headers that add up.
        std::vector<std::string> headers;
        for (int i = 0; i < 100; ++i) headers.push_back("X-H" + std::to_string(i) + ": 0123456789");
        connection c{srv.port()};
        c.send(format_request("GET", "/json", headers));
        require_error_then_close(c, 431);
    }
    {
        // A header under the limit is fine.
        connection c{srv.port()};
        auto r = c.request("GET", "/json", {"X-Pad: " + std::string(500, 'p')});
        REQUIRE(r.status == 200);
    }
    REQUIRE(metric_now(srv.port(), "coroserve_headers_too_large_total") == 2);
}
