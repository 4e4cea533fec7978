// Security: the collection allow-list, no query operator from the URL, credentials never
// shown (logs, errors, /metrics, responses), no response splitting, and an unprivileged user.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace hardening;

TEST_CASE("only allow-listed collections are readable and ids never become query operators",
          "[hardening]") {
    // The stand-in holds a collection the server must not serve.
    auto db = make_standin(
        {"--seed", "articles.secret=" + test_support::standin::data_dir() + "/small_doc.json"});
    server srv{db->uri()};

    auto secret = get(srv.port(), "/mongo/secret");
    REQUIRE(secret);
    CHECK(secret->status == 404);
    auto small = get(srv.port(), "/mongo/small");
    REQUIRE(small);
    CHECK(small->status == 200);

    const std::vector<std::string> bad_targets = {
        R"(/mongo/articles/{"$ne":null})",
        "/mongo/articles/%7B%22%24ne%22%3Anull%7D",
        "/mongo/articles/$gt",
        "/mongo/articles/$where",
        "/mongo/articles/$ne:null",
        "/mongo/articles/a.b",
        "/mongo/articles/" + std::string(129, 'a'),
        "/mongo/$where",
        "/mongo/articles.secret",
        "/mongo/system.indexes",
        "/mongo/%73ecret",
    };
    for (const auto& target : bad_targets) {
        INFO("target " << target);
        auto o = exchange(srv.port(), request(target));
        REQUIRE(o.responses.size() == 1);
        // 400 (invalid name or id) or 404 (unknown collection); never the database's error.
        CHECK((o.responses[0].status == 400 || o.responses[0].status == 404));
    }
    // Query strings are not a filter: ignored by the document routes.
    auto first = get(srv.port(), "/mongo/articles");
    auto with_query = get(srv.port(), R"(/mongo/articles?filter={"$gt":""}&_id[$ne]=1)");
    REQUIRE(first);
    REQUIRE(with_query);
    CHECK(with_query->status == 200);
    CHECK(with_query->body == first->body);
    auto by_id = get(srv.port(), "/mongo/articles/537416b501d53a77bb94135c");
    REQUIRE(by_id);
    CHECK(by_id->status == 200);
    // Nothing reached the stand-in as an operator: it would have refused it (BadValue, 502).
    CHECK(metric(metrics_text(srv.port()), "coroserve_db_errors_total") == 0);
}

TEST_CASE("credentials from the URI never appear in logs, errors, metrics or responses",
          "[hardening]") {
    const std::string password = "s3cretPa55w0rd";
    auto db = make_standin();
    const std::string uri = "mongodb://hardening_user:" + password +
                            "@127.0.0.1:" + std::to_string(db->port()) +
                            "/?serverSelectionTimeoutMS=1000";
    std::string everything;  // every byte the server sent us
    std::string log;
    {
        // The stand-in has no authentication: every database call fails, and its errors are
        // logged; the access log is on too.
        server srv{uri, {.args = {"--access-log", "--server-selection-timeout-ms", "1000"}}};
        for (auto target : {"/mongo", "/mongo/small", "/mongo/articles/537416b501d53a77bb94135c",
                            "/readyz", "/metrics", "/nope", "/mongo/secret"}) {
            auto o = exchange(srv.port(), request(target));
            REQUIRE_FALSE(o.responses.empty());
            for (auto& r : o.responses) everything += r.head + "\r\n\r\n" + r.body + "\n";
        }
        everything += exchange(srv.port(), "garbage\r\n\r\n").describe();
        std::this_thread::sleep_for(1100ms);  // past the rate limit of failure lines
        auto again = get(srv.port(), "/mongo");
        REQUIRE(again);
        everything += again->body;
        log = srv.stderr_text();
    }
    INFO("responses:\n" << everything);
    INFO("stderr:\n" << log);
    CHECK(log.find("coroserve: listening") != std::string::npos);
    CHECK(log.find("hardening_user") != std::string::npos);  // the URI is logged, redacted
    CHECK(log.find(password) == std::string::npos);
    CHECK(everything.find(password) == std::string::npos);
    CHECK(everything.find("hardening_user") == std::string::npos);

    // Secrets in the URI's options: a key file's password, an AWS session token.
    for (const std::string& with_option :
         {db->uri() + "/?serverSelectionTimeoutMS=1000&tlsCertificateKeyFilePassword=" + password,
          "mongodb://hardening_user:" + password + "@127.0.0.1:" + std::to_string(db->port()) +
              "/?serverSelectionTimeoutMS=1000&authMechanism=MONGODB-AWS&"
              "authMechanismProperties=AWS_SESSION_TOKEN:" +
              password}) {
        std::string seen;
        {
            server srv{with_option};
            auto r = get(srv.port(), "/mongo");
            REQUIRE(r);
            seen = r->head + r->body + metrics_text(srv.port());
            log = srv.stderr_text();
        }
        INFO("uri " << with_option << "\nstderr:\n" << log);
        CHECK(log.find("coroserve: listening") != std::string::npos);
        CHECK(log.find(password) == std::string::npos);
        CHECK(seen.find(password) == std::string::npos);
    }

    // A URI the driver refuses at start: the error message must not echo the password.
    for (const std::string& bad :
         {"mongodb://hardening_user:" + password + "@127.0.0.1:1/?replicaSet=",
          "mongodb://hardening_user:" + password + "@/?tls=maybe",
          "mongodb://hardening_user:" + password + "@127.0.0.1:99999/"}) {
        auto path = std::filesystem::temp_directory_path() /
                    ("coroserve-hardening-bad-uri-" + std::to_string(::getpid()));
        test_support::child_process p{{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>\"$LOG\"",
                                       server::executable(), "--port", "0", "--mongodb-uri", bad},
                                      {"LOG=" + path.string()}};
        auto st = p.wait(10s);
        if (!st) st = p.terminate();  // started after all: it must not log the password either
        std::ifstream in{path};
        std::string err{std::istreambuf_iterator<char>{in}, {}};
        std::filesystem::remove(path);
        INFO("uri " << bad << " -> stderr: " << err);
        CHECK(err.find(password) == std::string::npos);
    }
}

TEST_CASE("request bytes never split a response header", "[hardening]") {
    auto db = make_standin();
    server srv{db->uri(), {.args = {"--access-log", "--demo-endpoints"}}};
    const std::vector<std::string> attempts = {
        request("/mongo/a%0d%0aSet-Cookie:%20x=1"),
        request("/mongo/articles/a%0aSet-Cookie:x"),
        request("/json%0d%0aX-Injected:%201"),
        request("/sleep?ms=1%0d%0aX-Injected:1"),
        "GET /json HTTP/1.1\r\nHost: a\r\nX-A: b\rSet-Cookie: x=1\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\nSet-Cookie: x=1\r\n\r\n",
        "GET /json\rSet-Cookie: x HTTP/1.1\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\n\r\nGET /x\r\nX-Injected: 1 HTTP/1.1\r\n\r\n",
    };
    for (const auto& bytes : attempts) {
        INFO("request: " << bytes);
        auto o = exchange(srv.port(), bytes);
        INFO("got: " << o.describe());
        CHECK_FALSE(o.responses.empty());
        CHECK(o.foreign.empty());
        CHECK_FALSE(o.garbled);
        for (auto& r : o.responses) {
            CHECK(r.head.find("Set-Cookie") == std::string::npos);
            CHECK(r.head.find("X-Injected") == std::string::npos);
        }
    }
    // The access log writes one line per request: a request cannot forge another line.
    auto log = srv.stderr_text();
    CHECK(log.find("\nSet-Cookie") == std::string::npos);
    CHECK(log.find("\nX-Injected") == std::string::npos);
}

TEST_CASE("the server runs and serves as an unprivileged user", "[hardening]") {
    auto db = make_standin();
    server srv{db->uri(), {.args = {}, .nofile = 0, .unprivileged = true}};
    const int uid = real_uid(srv.pid());
    std::printf("unprivileged: coroserve runs as uid %d (tests run as uid %d)\n", uid,
                static_cast<int>(::geteuid()));
    CHECK(uid != 0);
    if (::geteuid() == 0) CHECK(uid == 65534);
    for (auto target : {"/json", "/mongo", "/mongo/big", "/readyz", "/metrics"}) {
        auto r = get(srv.port(), target);
        INFO(target);
        REQUIRE(r);
        CHECK(r->status == 200);
    }
}
