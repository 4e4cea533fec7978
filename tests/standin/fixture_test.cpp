// Tests of the shared fixture itself: child_process and standin (start, port, faults
// through stdin, stop/start on the same port), with raw TCP connects only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "process.hpp"
#include "standin.hpp"

using namespace std::chrono_literals;
using test_support::child_process;
using test_support::standin;

namespace {

// True when a TCP connection to 127.0.0.1:port is accepted and stays open for a moment
// (a refusing stand-in accepts and then closes at once).
bool connects(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

TEST_CASE("child_process captures the first line and the exit status", "[mongo][fixture]") {
    child_process p({"/bin/sh", "-c", "echo \"first $GREETING\"; echo second; exit 3"},
                    {"GREETING=hello"});
    REQUIRE(p.first_line() == "first hello");
    REQUIRE(p.read_line(5s) == "second");
    auto st = p.wait(10s);
    REQUIRE(st);
    REQUIRE(st->exited);
    REQUIRE(st->code == 3);
}

TEST_CASE("child_process signals, waits with a timeout, and kills on terminate",
          "[mongo][fixture]") {
    child_process p({"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"});
    REQUIRE(p.first_line() == "ready");
    REQUIRE_FALSE(p.wait(100ms));  // still running
    auto st = p.terminate(300ms);  // SIGTERM is ignored: SIGKILL after the grace
    REQUIRE_FALSE(st.exited);
    REQUIRE(st.signal == SIGKILL);

    child_process q({"/bin/sleep", "30"});
    q.send_signal(SIGINT);
    auto st2 = q.wait(10s);
    REQUIRE(st2);
    REQUIRE(st2->signal == SIGINT);
}

TEST_CASE("child_process throws when the program cannot be run", "[mongo][fixture]") {
    REQUIRE_THROWS(child_process({"/nonexistent/program"}).first_line(2s));
}

TEST_CASE("standin starts on an ephemeral port and exits 0 on SIGTERM", "[mongo][fixture]") {
    child_process p({standin::executable(), "--port", "0"});
    int port = std::stoi(p.first_line());
    REQUIRE(port > 0);
    REQUIRE(connects(static_cast<unsigned short>(port)));
    p.send_signal(SIGTERM);
    auto st = p.wait(10s);
    REQUIRE(st);
    REQUIRE(st->ok());
}

TEST_CASE("standin rejects bad flags with exit status 2", "[mongo][fixture]") {
    for (auto args : {std::vector<std::string>{"--nope"},
                      {"--port", "x"},
                      {"--port"},
                      {"--threads", "0"},
                      {"--seed", "nodot=x.json"},
                      {"--seed", "a.b=/nonexistent.json"}}) {
        args.insert(args.begin(), standin::executable());
        child_process p(args);
        auto st = p.wait(10s);
        REQUIRE(st);
        CHECK(st->exited);
        CHECK(st->code == 2);
    }
}

TEST_CASE("standin fixture: faults through stdin, stop and start on the same port",
          "[mongo][fixture]") {
    standin s;
    const auto port = s.port();
    REQUIRE(s.uri() == "mongodb://127.0.0.1:" + std::to_string(port));
    REQUIRE(s.state().find("latency=0 refuse=off fail=0") != std::string::npos);
    s.set_latency_ms(25);
    s.fail_next(2, 11600, "going away");
    REQUIRE(s.state().find("latency=25 refuse=off fail=2 code=11600") != std::string::npos);
    REQUIRE_THROWS(s.control("bogus"));

    s.stop();
    REQUIRE_FALSE(s.running());
    REQUIRE_FALSE(connects(port));
    s.start();
    REQUIRE(s.running());
    REQUIRE(s.port() == port);
    REQUIRE(connects(port));
    REQUIRE(s.state().find("latency=0") != std::string::npos);  // a fresh process
}

TEST_CASE("standin: --latency-ms sets the initial latency, SIGINT also exits 0",
          "[mongo][fixture]") {
    standin s({"--latency-ms", "25"});
    REQUIRE(s.state().find("latency=25 ") != std::string::npos);

    child_process p({standin::executable(), "--port", "0"});
    REQUIRE(std::stoi(p.first_line()) > 0);
    p.send_signal(SIGINT);
    auto st = p.wait(10s);
    REQUIRE(st);
    REQUIRE(st->ok());
}

TEST_CASE("standin --help exits 0 and names every option", "[mongo][fixture]") {
    child_process p({standin::executable(), "--help"});
    std::string text = p.first_line();
    for (auto line = p.read_line(5s); line; line = p.read_line(5s)) text += "\n" + *line;
    REQUIRE(p.wait(10s).value().ok());
    for (const char* option : {"--port", "--bind", "--seed", "--latency-ms", "--threads",
                               "--control-stdin", "--message-timeout-ms", "standinFault"})
        CHECK(text.find(option) != std::string::npos);
}
