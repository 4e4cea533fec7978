// Hostile HTTP: one table of malformed, ambiguous and abusive requests sent over raw sockets
// to the real server, each checked against its expectation while a polite client keeps
// getting 200s beside it. The table of what each case got is printed (docs/hardening.md).
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace hardening;

namespace {

enum class expect {
    rejected,  // a 4xx (then a close) or a close with no answer; never a 2xx, never a 5xx
    served,    // every answer 2xx (a well-formed request, however it arrived)
    any,       // either is acceptable (RFC leaves it open); never a 5xx, never a crash
};

enum class how {
    whole,           // one write, then half-close
    one_byte,        // 1-byte writes, then half-close
    vanish_request,  // half of it, then a reset
    vanish_response  // the whole request, read a few bytes of the answer, then a reset
};

struct hostile_case {
    std::string name;
    std::string bytes;
    expect expectation;
    how mode = how::whole;
};

std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    out.reserve(s.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

std::string many_headers(std::size_t n) {
    std::string h = "GET /json HTTP/1.1\r\nHost: a\r\n";
    for (std::size_t i = 0; i < n; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
    return h + "\r\n";
}

const std::string json = "GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
// A smuggled request hidden in a body: answered 200 only if the framing was misread.
const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";

std::vector<hostile_case> corpus() {
    using std::string;
    return {
        // Request lines and methods
        {"bad method bytes", "G@T /json HTTP/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"unknown method", "BREW /json HTTP/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"lowercase method", "get /json HTTP/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"POST to a GET route", "POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
         expect::rejected},
        {"no target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"no version (HTTP/0.9 simple request)", "GET /json\r\n\r\n", expect::rejected},
        {"TLS ClientHello", string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
         expect::rejected},
        {"binary garbage", string("\x00\xff\x7f\x80\r\n\r\n", 8), expect::rejected},
        {"empty lines before the request", "\r\n\r\n" + json, expect::any},
        {"request line 20 KiB", "GET /" + string(20000, 'a') + " HTTP/1.1\r\n\r\n",
         expect::rejected},
        // Versions
        {"HTTP/2.0", "GET /json HTTP/2.0\r\nHost: a\r\n\r\n", expect::rejected},
        {"HTTP/0.9", "GET /json HTTP/0.9\r\nHost: a\r\n\r\n", expect::rejected},
        {"HTTP/1.2 (RFC 9112 allows serving it as 1.1)", "GET /json HTTP/1.2\r\nHost: a\r\n\r\n",
         expect::any},
        {"HTTP/1.10", "GET /json HTTP/1.10\r\nHost: a\r\n\r\n", expect::rejected},
        {"lowercase http/1.1", "GET /json http/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"PRI * HTTP/2.0 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", expect::rejected},
        // Header syntax
        {"header without colon", "GET /json HTTP/1.1\r\nHost a\r\n\r\n", expect::rejected},
        {"space before colon", "GET /json HTTP/1.1\r\nHost : a\r\n\r\n", expect::rejected},
        {"obs-fold continuation line", "GET /json HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
         expect::any},
        {"obs-fold inside Content-Length",
         "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n 30\r\n\r\n" + smuggled,
         expect::rejected},
        {"NUL in a header value", string("GET /json HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 31),
         expect::rejected},
        {"NUL in the target", string("GET /js\0on HTTP/1.1\r\n\r\n", 23), expect::rejected},
        {"control byte in a header name", "GET /json HTTP/1.1\r\nX\x01A: b\r\n\r\n",
         expect::rejected},
        {"bare LF line ends", "GET /json HTTP/1.1\nHost: a\n\n", expect::any},
        {"bare CR in a header value", "GET /json HTTP/1.1\r\nX-A: a\rb\r\n\r\n", expect::rejected},
        {"8-bit bytes in a header value (obs-text)", "GET /json HTTP/1.1\r\nX-A: \xe9t\xe9\r\n\r\n",
         expect::any},
        {"one header of 20 KiB", "GET /json HTTP/1.1\r\nX-Big: " + string(20000, 'b') + "\r\n\r\n",
         expect::rejected},
        {"3000 headers", many_headers(3000), expect::rejected},
        {"100 headers (under the limit)", many_headers(100), expect::served},
        // Bodies, chunked encoding and framing (smuggling)
        {"Content-Length + Transfer-Encoding",
         "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n" +
             smuggled,
         expect::rejected},
        {"Transfer-Encoding + Content-Length",
         "GET /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
         "0\r\n\r\n" +
             smuggled,
         expect::rejected},
        {"two different Content-Lengths",
         "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: " +
             std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled,
         expect::rejected},
        {"Content-Length list \"0, 33\"",
         "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 33\r\n\r\n" + smuggled,
         expect::rejected},
        {"two equal Content-Lengths",
         "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
         expect::any},
        {"negative Content-Length", "GET /json HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
         expect::rejected},
        {"Content-Length with a sign", "GET /json HTTP/1.1\r\nContent-Length: +2\r\n\r\nab",
         expect::rejected},
        {"Content-Length 2^64",
         "GET /json HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", expect::rejected},
        {"Content-Length over the body limit",
         "GET /json HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", expect::rejected},
        {"Transfer-Encoding: xchunked",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled,
         expect::rejected},
        {"Transfer-Encoding: chunked, identity",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
         expect::rejected},
        {"Transfer-Encoding: identity",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n" + smuggled, expect::rejected},
        {"Transfer-Encoding: gzip, chunked (chunked last)",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", expect::any},
        {"Transfer-Encoding in HTTP/1.0",
         "GET /json HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", expect::any},
        {"bad chunk size",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
         expect::rejected},
        {"chunk size overflow",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: "
         "chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n",
         expect::rejected},
        {"chunk longer than declared",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n",
         expect::rejected},
        {"chunked body without its last chunk",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
         expect::rejected},
        {"chunk extension of 200 KiB",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + string(200000, 'e') +
             "\r\nx\r\n0\r\n\r\n",
         expect::rejected},
        {"chunk-size line of 200 KiB zeros",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + string(200000, '0') +
             "1\r\nx\r\n0\r\n\r\n",
         expect::rejected},
        {"trailer of 200 KiB",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " +
             string(200000, 't') + "\r\n\r\n",
         expect::rejected},
        {"valid chunked body",
         "GET /json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         expect::served},
        // Targets
        {"absolute-form target", "GET http://localhost/json HTTP/1.1\r\nHost: a\r\n\r\n",
         expect::rejected},
        {"authority-form (CONNECT)", "CONNECT localhost:80 HTTP/1.1\r\nHost: a\r\n\r\n",
         expect::rejected},
        {"asterisk-form (OPTIONS *)", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", expect::rejected},
        {"percent-encoded path (/%6Ason)", "GET /%6Ason HTTP/1.1\r\nHost: a\r\n\r\n",
         expect::rejected},
        {"percent-encoded collection", "GET /mongo/%61rticles HTTP/1.1\r\nHost: a\r\n\r\n",
         expect::rejected},
        {"traversal in an id", "GET /mongo/articles/../../etc/passwd HTTP/1.1\r\n\r\n",
         expect::rejected},
        {"encoded traversal in an id",
         "GET /mongo/articles/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\n\r\n", expect::rejected},
        {"dot-dot collection", "GET /mongo/../json HTTP/1.1\r\n\r\n", expect::rejected},
        {"system collection", "GET /mongo/system.users HTTP/1.1\r\n\r\n", expect::rejected},
        {"$cmd collection", "GET /mongo/$cmd HTTP/1.1\r\n\r\n", expect::rejected},
        {"CRLF encoded in the target", "GET /mongo/a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\n\r\n",
         expect::rejected},
        // Volume and timing
        {"pipeline of 1000 requests", repeat(json, 1000), expect::served},
        {"pipeline of 200 mixed requests",
         repeat("GET /json HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n"
                "GET /mongo/big HTTP/1.1\r\n\r\n",
                50),
         expect::any},
        {"valid request in 1-byte writes", json, expect::served, how::one_byte},
        {"CL + TE in 1-byte writes",
         "GET /json HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         expect::rejected, how::one_byte},
        {"client vanishes mid-request", "GET /mongo/big HTTP/1.1\r\nHost: a\r\nX-A: b", expect::any,
         how::vanish_request},
        {"client vanishes mid-response", repeat("GET /mongo/big HTTP/1.1\r\n\r\n", 50), expect::any,
         how::vanish_response},
    };
}

outcome play(std::uint16_t port, const hostile_case& c) {
    switch (c.mode) {
        case how::whole:
            return exchange(port, c.bytes, 0, 10s);
        case how::one_byte:
            return exchange(port, c.bytes, 1, 10s);
        case how::vanish_request: {
            raw_connection conn{port};
            conn.send(c.bytes.substr(0, c.bytes.size() / 2));
            std::this_thread::sleep_for(50ms);
            conn.reset();
            return {};
        }
        case how::vanish_response: {
            raw_connection conn{port};
            conn.send(c.bytes);
            conn.read_some(100, 5s);
            conn.reset();
            return {};
        }
    }
    return {};
}

const char* name_of(expect e) {
    switch (e) {
        case expect::rejected:
            return "4xx or close";
        case expect::served:
            return "2xx";
        case expect::any:
            return "any, no 5xx";
    }
    return "?";
}

}  // namespace

TEST_CASE("hostile requests get a 4xx or a close, never a 2xx when ambiguous", "[hardening]") {
    auto db = make_standin();
    server srv{db->uri(), {.args = {"--header-timeout-ms", "2000", "--body-limit", "65536"}}};
    steady_client polite{srv.port()};

    std::string table = "| case | expected | got |\n|---|---|---|\n";
    for (const auto& c : corpus()) {
        INFO("case: " << c.name);
        outcome got = play(srv.port(), c);
        const bool vanished = c.mode == how::vanish_request || c.mode == how::vanish_response;
        std::string desc = vanished ? "(client gone)" : got.describe();
        table += "| " + c.name + " | " + name_of(c.expectation) + " | " + desc + " |\n";
        INFO("got: " << desc);

        CHECK(got.foreign.empty());  // nothing from the request made it into a response header
        CHECK_FALSE(got.garbled);
        for (const auto& r : got.responses) CHECK(r.status < 500);
        if (c.expectation == expect::rejected) {
            for (const auto& r : got.responses) CHECK((r.status >= 400 && r.status < 500));
            CHECK((got.closed || vanished));
        } else if (c.expectation == expect::served) {
            REQUIRE_FALSE(got.responses.empty());
            for (const auto& r : got.responses) CHECK((r.status >= 200 && r.status < 300));
        }
        REQUIRE(srv.running());
        auto health = get(srv.port(), "/healthz");
        REQUIRE(health);
        CHECK(health->status == 200);
    }
    polite.stop();
    std::printf("\n%s\n", table.c_str());

    INFO("polite client: " << polite.last_problem());
    CHECK(polite.ok() > 0);
    CHECK(polite.not_ok() == 0);
    CHECK(polite.failures() == 0);
    CHECK(srv.running());
}
