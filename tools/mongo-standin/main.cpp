// mongo-standin: command line, seeding, threads and signals; see README.md for what the
// stand-in answers. Wiring only: the protocol lives in wire/commands, the data in store.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "json_file.hpp"
#include "replset.hpp"
#include "server.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr const char* usage = R"(usage: mongo-standin [options]
A MongoDB wire-protocol stand-in for tests and benchmarks (in memory, single node, or a
replica set of N members in this one process).

  --port N             TCP port (default 27017; 0 = any free port). The port is always
                       printed alone on the first line of stdout.
  --bind ADDR          address to listen on (default 127.0.0.1)
  --seed db.coll=FILE  load FILE (extended JSON: one document, an array, or JSON lines)
                       into db.coll; repeatable
  --latency-ms N       delay every reply by N ms (other connections are not blocked)
  --message-timeout-ms N
                       close a connection whose message is still incomplete N ms after
                       its header arrived (default 30000)
  --threads N          I/O threads (default 1: one sustains ~100k finds/s per CPU
                       second, 2.5x what the server asks; see README.md)
  --control-stdin      read fault controls from stdin, one per line: "latency MS",
                       "refuse on|off", "drop", "fail N CODE [message]", "state";
                       each is answered by one "ok ..." line on stdout. End of stdin stops
                       the stand-in.
  --tls-cert FILE      serve TLS only (a plain client is closed after the failed
  --tls-key FILE       handshake): the server certificate chain and its key, PEM
  --tls-ca FILE        CA bundle (PEM) that client certificates are verified against
  --tls-require-client-cert
                       refuse clients without a certificate signed by --tls-ca
  --user NAME:PASSWORD[:MECHANISMS]
                       require authentication (SCRAM) as this user of the admin
                       database; repeatable. MECHANISMS: SCRAM-SHA-1,SCRAM-SHA-256
                       (the default: both). Without any user, no authentication.
  --user-env NAME:VAR[:MECHANISMS]
                       the same, the password read from environment variable VAR
  --user-file NAME:PATH[:MECHANISMS]
                       the same, the password read from file PATH (one line)
  --auth-timeout-ms N  close a connection whose SASL conversation waits longer than
                       N ms for its next message (default 30000)
  --replset NAME       pose as replica set NAME: --members members on consecutive ports
                       from --port (member 0, the first primary, on the printed port),
                       all over the one in-memory store. Extra controls on stdin: "rs",
                       "stepdown", "kill I", "revive I", "partition I", "heal I"
  --members N          members of the set (default 3; needs --replset)
  --election-ms N      how long the set has no primary after a stepdown or the primary's
                       death (default 1000; needs --replset)
  --secondary-lag-ms N a write becomes visible on the secondaries N ms after the primary
                       applied it (default 0: at once; needs --replset)
  --help               this text

At run time the admin command {standinFault: 1, latencyMs, refuseConnections,
dropConnections, failNext, failCode, failMessage} changes the same faults (with --replset
also stepDown: true, killMember, reviveMember, partitionMember, healMember: I).
)";

struct options {
    unsigned short port = 27017;
    std::string bind = "127.0.0.1";
    std::vector<standin::seed_spec> seeds;
    int latency_ms = 0;
    int threads = 1;
    int message_timeout_ms = 30'000;
    bool control_stdin = false;
    std::string tls_cert, tls_key, tls_ca;
    bool require_client_cert = false;
    standin::user_table users;
    int auth_timeout_ms = 30'000;
    std::string replset;  // empty: a standalone server
    int members = 3;
    int election_ms = 1000;
    int secondary_lag_ms = 0;
    bool members_given = false, election_given = false, lag_given = false;
};

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int to_int(const std::string& flag, const std::string& value, int min, int max) {
    int v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || v < min || v > max)
        throw usage_error(flag + " expects an integer in [" + std::to_string(min) + ", " +
                          std::to_string(max) + "], got '" + value + "'");
    return v;
}

// --user NAME:PASSWORD, --user-env NAME:VAR, --user-file NAME:PATH (each [:MECHANISMS]).
// The error messages never repeat a password.
void add_user(standin::user_table& users, const std::string& flag, const std::string& text) {
    standin::user_spec spec;
    try {
        spec = standin::parse_user_spec(text);
    } catch (const std::invalid_argument&) {
        throw usage_error(flag + " expects NAME:" +
                          (flag == "--user"       ? "PASSWORD"
                           : flag == "--user-env" ? "VAR"
                                                  : "PATH") +
                          "[:MECHANISMS]");
    }
    std::string password;
    if (flag == "--user") {
        password = std::move(spec.secret);
    } else if (flag == "--user-env") {
        const char* v = std::getenv(spec.secret.c_str());
        if (!v) throw usage_error(flag + ": environment variable " + spec.secret + " is not set");
        password = v;
    } else {
        std::ifstream in(spec.secret);
        if (!in || !std::getline(in, password))
            throw usage_error(flag + ": cannot read a password from " + spec.secret);
        if (!password.empty() && password.back() == '\r') password.pop_back();
    }
    try {
        users.add(spec.name, password, spec.mechanisms);
    } catch (const std::invalid_argument& e) {
        throw usage_error(flag + ": " + e.what());
    }
}

options parse_options(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw usage_error(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--help" || flag == "-h") {
            std::cout << usage;
            std::exit(0);
        } else if (flag == "--port") {
            opt.port = static_cast<unsigned short>(to_int(flag, value(), 0, 65535));
        } else if (flag == "--bind") {
            opt.bind = value();
        } else if (flag == "--seed") {
            try {
                opt.seeds.push_back(standin::parse_seed_spec(value()));
            } catch (const std::invalid_argument& e) {
                throw usage_error("--seed: " + std::string(e.what()));
            }
        } else if (flag == "--latency-ms") {
            opt.latency_ms = to_int(flag, value(), 0, 3'600'000);
        } else if (flag == "--message-timeout-ms") {
            opt.message_timeout_ms = to_int(flag, value(), 1, 3'600'000);
        } else if (flag == "--threads") {
            opt.threads = to_int(flag, value(), 1, 256);
        } else if (flag == "--control-stdin") {
            opt.control_stdin = true;
        } else if (flag == "--tls-cert") {
            opt.tls_cert = value();
        } else if (flag == "--tls-key") {
            opt.tls_key = value();
        } else if (flag == "--tls-ca") {
            opt.tls_ca = value();
        } else if (flag == "--tls-require-client-cert") {
            opt.require_client_cert = true;
        } else if (flag == "--user" || flag == "--user-env" || flag == "--user-file") {
            add_user(opt.users, flag, value());
        } else if (flag == "--auth-timeout-ms") {
            opt.auth_timeout_ms = to_int(flag, value(), 1, 3'600'000);
        } else if (flag == "--replset") {
            opt.replset = value();
            if (opt.replset.empty()) throw usage_error("--replset needs a non-empty name");
        } else if (flag == "--members") {
            opt.members = to_int(flag, value(), 1, 50);
            opt.members_given = true;
        } else if (flag == "--election-ms") {
            opt.election_ms = to_int(flag, value(), 0, 3'600'000);
            opt.election_given = true;
        } else if (flag == "--secondary-lag-ms") {
            opt.secondary_lag_ms = to_int(flag, value(), 0, 3'600'000);
            opt.lag_given = true;
        } else {
            throw usage_error("unknown option '" + flag + "'");
        }
    }
    if (opt.tls_cert.empty() != opt.tls_key.empty())
        throw usage_error("--tls-cert and --tls-key go together");
    if ((!opt.tls_ca.empty() || opt.require_client_cert) && opt.tls_cert.empty())
        throw usage_error("--tls-ca and --tls-require-client-cert need --tls-cert/--tls-key");
    if (opt.require_client_cert && opt.tls_ca.empty())
        throw usage_error("--tls-require-client-cert needs --tls-ca");
    if (opt.replset.empty() && (opt.members_given || opt.election_given || opt.lag_given))
        throw usage_error("--members, --election-ms and --secondary-lag-ms need --replset");
    return opt;
}

// The server side of TLS; throws usage_error naming the file that could not be used.
std::unique_ptr<asio::ssl::context> make_tls_context(const options& opt) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    auto load = [](const char* flag, const std::string& file, auto&& fn) {
        boost::system::error_code ec;
        fn(ec);
        if (ec) throw usage_error(std::string(flag) + " " + file + ": " + ec.message());
    };
    load("--tls-cert", opt.tls_cert,
         [&](auto& ec) { ctx->use_certificate_chain_file(opt.tls_cert, ec); });
    load("--tls-key", opt.tls_key,
         [&](auto& ec) { ctx->use_private_key_file(opt.tls_key, asio::ssl::context::pem, ec); });
    if (!opt.tls_ca.empty()) {
        load("--tls-ca", opt.tls_ca, [&](auto& ec) { ctx->load_verify_file(opt.tls_ca, ec); });
        ctx->set_verify_mode(
            asio::ssl::verify_peer |
            (opt.require_client_cert ? asio::ssl::verify_fail_if_no_peer_cert : 0));
    }
    return ctx;
}

void seed(standin::store& db, const std::vector<standin::seed_spec>& seeds) {
    for (const auto& s : seeds) {
        std::vector<standin::doc_ptr> docs;
        for (const auto& d : standin::read_json_documents(s.path))
            docs.push_back(standin::make_stored_doc(d.get()));
        const std::size_t given = docs.size();
        std::vector<standin::write_error> errors;
        int32_t n = db.insert(s.ns, std::move(docs), false, errors);
        std::cerr << "mongo-standin: seeded " << s.ns << " with " << n << " of " << given
                  << " documents from " << s.path << "\n";
        for (const auto& e : errors)
            std::cerr << "mongo-standin:   document " << e.index << ": " << e.message << "\n";
    }
}

// Listens on `count` consecutive ports from `port`. With port 0 and one port, the kernel
// picks it. With port 0 and a set, the first port is drawn from 20000-32000, below Linux's
// ephemeral range: there, outgoing connections take the even ports and their TIME_WAIT
// leftovers block a bind, so a kernel-chosen port rarely has free neighbours on a busy host.
std::vector<std::unique_ptr<tcp::acceptor>> listen_on(asio::io_context& ctx,
                                                      const asio::ip::address& address,
                                                      unsigned short port, int count) {
    auto bind_all = [&](int first) {
        std::vector<std::unique_ptr<tcp::acceptor>> out;
        for (int i = 0; i < count; ++i) {
            if (first + i > 65535) throw std::runtime_error("no consecutive ports left");
            out.push_back(std::make_unique<tcp::acceptor>(  // sets SO_REUSEADDR
                ctx, tcp::endpoint(address, static_cast<unsigned short>(first + i))));
        }
        return out;
    };
    if (port != 0 || count == 1) return bind_all(port);
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> first_port(20000, 32000 - count);
    for (int attempt = 0;; ++attempt) {
        try {
            return bind_all(first_port(random));
        } catch (const std::exception&) {
            if (attempt == 200) throw;
        }
    }
}

// "HOST:PORT" as a client writes it (an IPv6 address in brackets).
std::string host_and_port(const asio::ip::address& address, unsigned short port) {
    const std::string host =
        address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return host + ":" + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::unique_ptr<asio::ssl::context> tls;
    try {
        opt = parse_options(argc, argv);
        if (!opt.tls_cert.empty()) tls = make_tls_context(opt);
    } catch (const usage_error& e) {
        std::cerr << "mongo-standin: " << e.what() << " (see --help)\n";
        return 2;
    }

    standin::store db;
    standin::cursor_table cursors;
    standin::fault_state faults;
    faults.set_latency_ms(opt.latency_ms);
    try {
        seed(db, opt.seeds);
    } catch (const std::exception& e) {
        std::cerr << "mongo-standin: --seed: " << e.what() << "\n";
        return 2;
    }

    // Declaration order is destruction order, reversed: the I/O objects go first, then the
    // contexts (destroying the coroutine frames still suspended there), then the server
    // and the replica set those frames refer to, then the data.
    std::optional<standin::lagged_store> lagged;
    std::optional<standin::replica_set> rs;
    std::optional<standin::server> srv;
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int i = 0; i < opt.threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
    // Before the port is printed: whoever reads it may signal us at once.
    asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
    // One acceptor per member of the set, on consecutive ports; one for a standalone server.
    const int members = opt.replset.empty() ? 1 : opt.members;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    asio::ip::address address;
    try {
        address = asio::ip::make_address(opt.bind);
        acceptors = listen_on(*contexts[0], address, opt.port, members);
    } catch (const std::exception& e) {
        std::cerr << "mongo-standin: cannot listen on " << opt.bind << ":" << opt.port;
        if (members > 1) std::cerr << " and the " << members - 1 << " port(s) after it";
        std::cerr << ": " << e.what() << "\n";
        return 1;
    }
    std::cout << acceptors.front()->local_endpoint().port() << std::endl;
    std::cerr << "mongo-standin: listening on " << acceptors.front()->local_endpoint() << " with "
              << opt.threads << " thread(s)" << (tls ? ", TLS" : "")
              << (opt.users.empty() ? "" : ", authentication required") << "\n";

    if (!opt.replset.empty()) {
        std::vector<std::string> hosts;
        for (const auto& a : acceptors)
            hosts.push_back(host_and_port(address, a->local_endpoint().port()));
        rs.emplace(opt.replset, hosts, std::chrono::milliseconds(opt.election_ms),
                   contexts[0]->get_executor());
        std::cerr << "mongo-standin: replica set " << opt.replset << " of " << members
                  << " members:";
        for (const auto& h : hosts) std::cerr << " " << h;
        std::cerr << " (member 0 is primary)\n";
        if (opt.secondary_lag_ms > 0) {
            lagged.emplace(std::chrono::milliseconds(opt.secondary_lag_ms),
                           contexts[0]->get_executor());
            // The seeded documents themselves (same _ids), not a second reading of the files.
            for (const auto& s : opt.seeds) {
                std::vector<standin::write_error> ignored;
                lagged->data().insert(s.ns, db.find(s.ns, standin::filter{}, 0, 0), false, ignored);
            }
            std::cerr << "mongo-standin: secondaries see each write " << opt.secondary_lag_ms
                      << " ms after the primary\n";
        }
    }

    std::vector<asio::io_context*> ptrs;
    for (auto& c : contexts) ptrs.push_back(c.get());
    std::vector<tcp::acceptor*> listening;
    for (auto& a : acceptors) listening.push_back(a.get());
    srv.emplace(ptrs, listening,
                standin::services{db, cursors, faults, opt.users, rs ? &*rs : nullptr, 0,
                                  lagged ? &*lagged : nullptr},
                std::chrono::milliseconds(opt.message_timeout_ms), tls.get(),
                std::chrono::milliseconds(opt.auth_timeout_ms));

    auto stop = [&] {
        for (auto& c : contexts) c->stop();
    };
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) stop();
    });
    for (int m = 0; m < members; ++m)
        asio::co_spawn(*contexts[0], srv->accept_loop(m), asio::detached);
    if (opt.control_stdin)
        asio::co_spawn(*contexts[0], srv->control_loop(STDIN_FILENO, stop), asio::detached);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts.size(); ++i) {
        threads.emplace_back([&ctx = *contexts[i]] {
            auto guard = asio::make_work_guard(ctx);  // idle until a connection arrives
            ctx.run();
        });
    }
    contexts[0]->run();
    stop();
    for (auto& t : threads) t.join();
    return 0;
}
