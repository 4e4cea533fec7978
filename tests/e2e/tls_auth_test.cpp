// coroserve against a stand-in that requires TLS and SCRAM (issue 13): /mongo and /readyz
// with each mechanism forced; wrong password, unknown CA, expired or wrong-host certificate
// answered 503 with the cause, counted in /metrics and logged, never with the password;
// a client certificate whose key is encrypted; recovery once the stand-in is fixed.
// Certificates are generated for this run by tests/support/make-test-certs.sh.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace hardening;
namespace fs = std::filesystem;

namespace {

const std::string password = "Pa55-w0rd_for-e2e";  // printable ASCII, as SASLprep leaves it

// The certificates of this test process, made once (about a second).
const fs::path& certs() {
    static const fs::path dir = [] {
        fs::path d =
            fs::temp_directory_path() / ("coroserve-tls-e2e-" + std::to_string(::getpid()));
        const std::string cmd = std::string(MAKE_TEST_CERTS) + " " + d.string();
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make-test-certs.sh failed");
        return d;
    }();
    return dir;
}
struct remove_certs {
    ~remove_certs() {
        std::error_code ec;
        fs::remove_all(
            fs::temp_directory_path() / ("coroserve-tls-e2e-" + std::to_string(::getpid())), ec);
    }
} const cleanup;

std::string cert(const char* name) {
    return (certs() / name).string();
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::string line;
    std::getline(in, line);
    return line;
}

// A stand-in serving TLS with `server_cert` (ca-signed unless told) and the user alice.
std::unique_ptr<test_support::standin> tls_standin(const char* server_cert = "server",
                                                   std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--tls-cert", cert(server_cert) + std::string(".pem"),
                                     "--tls-key",  cert(server_cert) + std::string(".key"),
                                     "--user",     "alice:" + password};
    args.insert(args.end(), extra.begin(), extra.end());
    return make_standin(args);
}

std::string uri(unsigned short port, const std::string& pass, const std::string& options) {
    return "mongodb://alice:" + pass + "@127.0.0.1:" + std::to_string(port) +
           "/?tls=true&authSource=admin&serverSelectionTimeoutMS=1000&" + options;
}

const server_options quick = {.args = {"--server-selection-timeout-ms", "1000", "--workers", "2"}};

}  // namespace

TEST_CASE("/mongo and /readyz through TLS and SCRAM, each mechanism forced", "[e2e][tls]") {
    auto db = tls_standin();
    for (const char* mechanism : {"SCRAM-SHA-256", "SCRAM-SHA-1"}) {
        INFO(mechanism);
        server srv{uri(db->port(), password,
                       "tlsCAFile=" + cert("ca.pem") + "&authMechanism=" + mechanism),
                   quick};
        auto r = get(srv.port(), "/mongo");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body.find("537416b501d53a77bb94135c") != std::string::npos);
        auto ready = get(srv.port(), "/readyz");
        REQUIRE(ready);
        CHECK(ready->status == 200);
        auto m = metrics_text(srv.port());
        CHECK(metric(m, "coroserve_db_connect_failures_total{cause=\"auth\"}") == 0);
        CHECK(metric(m, "coroserve_db_connect_failures_total{cause=\"tls\"}") == 0);
    }
}

TEST_CASE("TLS and authentication failures: 503 naming the cause, counted, logged, no secret",
          "[e2e][tls]") {
    struct failure {
        const char* name;
        const char* server_cert;  // what the stand-in presents
        std::string pass, options;
        const char* cause;  // the /metrics label
        const char* error;  // the JSON error
    };
    const std::string ca = "tlsCAFile=" + cert("ca.pem");
    const std::vector<failure> failures = {
        {"wrong password", "server", "Wr0ng-" + password, ca, "auth",
         "database authentication failed"},
        {"unknown CA", "server", password, "tlsCAFile=" + cert("other-ca.pem"), "tls",
         "database TLS handshake failed"},
        {"self-signed server", "selfsigned", password, ca, "tls", "database TLS handshake failed"},
        {"expired certificate", "expired", password, ca, "tls", "database TLS handshake failed"},
        {"wrong host in certificate", "wronghost", password, ca, "tls",
         "database TLS handshake failed"},
    };
    for (const auto& f : failures) {
        INFO(f.name);
        auto db = tls_standin(f.server_cert);
        std::string seen, log;
        {
            server srv{uri(db->port(), f.pass, f.options), quick};
            auto r = get(srv.port(), "/mongo");
            REQUIRE(r);
            CHECK(r->status == 503);
            CHECK(r->body == std::string(R"({"error":")") + f.error + R"(","status":503})");
            auto ready = get(srv.port(), "/readyz");
            REQUIRE(ready);
            CHECK(ready->status == 503);
            CHECK(ready->body.find(f.error) != std::string::npos);
            auto m = metrics_text(srv.port());
            const std::string sample =
                std::string("coroserve_db_connect_failures_total{cause=\"") + f.cause + "\"}";
            CHECK(metric(m, sample) >= 1);
            CHECK(metric(m, "coroserve_db_unavailable_total") == 0);
            seen = r->head + r->body + ready->head + ready->body + m;
            log = srv.stderr_text();
        }
        INFO("stderr:\n" << log);
        CHECK(log.find(std::string("coroserve: ") + f.error + ": ") != std::string::npos);
        CHECK(log.find(password) == std::string::npos);
        CHECK(seen.find(password) == std::string::npos);
    }
}

TEST_CASE("a client certificate with an encrypted key: accepted, its password never shown",
          "[e2e][tls]") {
    auto db = tls_standin("server", {"--tls-ca", cert("ca.pem"), "--tls-require-client-cert"});
    const std::string key_password = read_file(certs() / "client-key-password");
    REQUIRE(key_password.size() == 24);
    std::string seen, log;
    {
        server srv{uri(db->port(), password,
                       "tlsCAFile=" + cert("ca.pem") +
                           "&tlsCertificateKeyFile=" + cert("client-bundle-encrypted.pem") +
                           "&tlsCertificateKeyFilePassword=" + key_password),
                   quick};
        auto r = get(srv.port(), "/mongo");
        REQUIRE(r);
        CHECK(r->status == 200);
        seen = r->head + r->body + metrics_text(srv.port());
        log = srv.stderr_text();
    }
    INFO("stderr:\n" << log);
    CHECK(log.find("coroserve: listening") != std::string::npos);
    CHECK(log.find(key_password) == std::string::npos);
    CHECK(log.find(password) == std::string::npos);
    CHECK(seen.find(key_password) == std::string::npos);

    // Without a client certificate the stand-in refuses the connection. Under TLS 1.3 the
    // client's side of the handshake is already complete when the server's alert comes, so
    // libmongoc sees a closed connection: 503 "database unavailable", not a TLS cause.
    server srv{uri(db->port(), password, "tlsCAFile=" + cert("ca.pem")), quick};
    auto r = get(srv.port(), "/mongo");
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == R"({"error":"database unavailable","status":503})");
}

TEST_CASE("service recovers without a restart once the stand-in has the right user", "[e2e][tls]") {
    // The stand-in knows alice with another password: coroserve's is refused.
    std::vector<std::string> base = test_support::standin::benchmark_seed_args();
    auto with_user = [&](const std::string& pass) {
        auto args = base;
        args.insert(args.end(), {"--tls-cert", cert("server.pem"), "--tls-key", cert("server.key"),
                                 "--user", "alice:" + pass});
        return args;
    };
    test_support::standin db{with_user("not-" + password)};
    server srv{uri(db.port(), password, "tlsCAFile=" + cert("ca.pem")), quick};
    auto r = get(srv.port(), "/mongo");
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body.find("database authentication failed") != std::string::npos);

    db.stop();
    db.start(with_user(password));  // same port, now the right password
    CHECK(eventually(
        [&] {
            auto again = get(srv.port(), "/mongo");
            return again && again->status == 200;
        },
        15s));
    auto ready = get(srv.port(), "/readyz");
    REQUIRE(ready);
    CHECK(ready->status == 200);
}
