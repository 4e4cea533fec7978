// await_any_blocking_call: any blocking C call becomes one co_await on a
// coroserve::blocking_pool; the I/O thread stays free while a pool thread blocks. Then the
// three things to know before relying on it:
//   1. a deadline (`call || timer`) skips a call that is still waiting in the queue, but cannot
//      stop one that is already running: `||` returns only when that call ends, so a blocking
//      call needs its own timeout (a driver option, a socket timeout);
//   2. cancellation works the same way: it only ever removes a job that has not started;
//   3. a pool that cannot serve a call in time (here: its queue is full) refuses it at once
//      with pool_overloaded (a server answers 503); it never queues without bound.
// No database needed.
//
// Run it (from a coroserve build directory):  bin/await_any_blocking_call [HOST...]
// It resolves each HOST (default: localhost) with getaddrinfo, then runs the three cases.
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <coroserve/blocking_pool.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// getaddrinfo: a classic blocking C call, with no timeout and no way to cancel it.
std::vector<std::string> resolve(const std::string& host) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
        throw std::runtime_error{::gai_strerror(rc)};
    std::vector<std::string> addresses;
    for (addrinfo* a = found; a; a = a->ai_next) {
        char text[NI_MAXHOST];
        if (::getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0,
                          NI_NUMERICHOST) == 0)
            addresses.emplace_back(text);
    }
    ::freeaddrinfo(found);
    return addresses;
}

// Stands in for a blocking call that takes long: a slow disk, a C library without a timeout.
std::atomic<int> slow_calls_run{0};
int slow_call() {
    std::this_thread::sleep_for(500ms);
    return ++slow_calls_run;
}

asio::awaitable<void> timeout(std::chrono::milliseconds after) {
    asio::steady_timer timer{co_await asio::this_coro::executor, after};
    co_await timer.async_wait(asio::use_awaitable);
}

// Puts a slow call on the pool without waiting for it; returns once the pool has it.
asio::awaitable<void> start_in_background(coroserve::blocking_pool& pool) {
    asio::co_spawn(co_await asio::this_coro::executor, pool.run(slow_call), asio::detached);
    co_await timeout(10ms);  // the spawned coroutine runs up to its co_await meanwhile
}

// Waits until no job runs or waits (a skipped job holds its queue place until a worker drops it).
// Polling is fine for a demo, not for a server.
asio::awaitable<void> drained(coroserve::blocking_pool& pool) {
    while (pool.busy() + pool.queued() > 0) co_await timeout(10ms);
}

long ms_since(steady::time_point start) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

asio::awaitable<void> demo(coroserve::blocking_pool& pool, std::vector<std::string> hosts) {
    for (const auto& host : hosts) {
        auto lookup = [host] { return resolve(host); };  // a copy: the job may outlive this loop
        try {
            std::string line;
            for (const auto& address : co_await pool.run(lookup)) line += " " + address;
            std::printf("resolve %s:%s\n", host.c_str(), line.c_str());
        } catch (const std::exception& e) {  // the worker's exception, rethrown here
            std::printf("resolve %s: error: %s\n", host.c_str(), e.what());
        }
    }

    // 1. A deadline on a call that is running: the timer fires, the call goes on.
    auto start = steady::now();
    auto first = co_await (pool.run(slow_call) || timeout(100ms));
    std::printf("running call, 100 ms deadline: %s, await returned after %ld ms\n",
                first.index() == 1 ? "timer won" : "call won", ms_since(start));

    // 2. A deadline on a call queued behind a busy worker: it is skipped and never runs.
    co_await start_in_background(pool);  // keeps the one worker busy
    start = steady::now();
    auto second = co_await (pool.run(slow_call) || timeout(100ms));
    std::printf("queued call, 100 ms deadline: %s, await returned after %ld ms\n",
                second.index() == 1 ? "timer won" : "call won", ms_since(start));

    co_await drained(pool);

    // 3. The worker is busy and the queue (1 job) is full: the next call is refused at once.
    co_await start_in_background(pool);  // runs
    co_await start_in_background(pool);  // takes the queue's only place
    start = steady::now();
    try {
        co_await pool.run(slow_call);
        std::printf("full pool: the call ran\n");
    } catch (const coroserve::pool_overloaded& e) {
        std::printf("full pool: refused after %ld ms: %s\n", ms_since(start), e.what());
    }
}

int main(int argc, char** argv) {
    std::vector<std::string> hosts(argv + 1, argv + argc);
    if (hosts.empty()) hosts.emplace_back("localhost");

    asio::io_context io;
    // After the io_context: destroyed first, so its threads are joined before a job still
    // posting its completion could find the io_context gone.
    coroserve::blocking_pool pool{1, 1};  // one worker, one waiting job: small, to show limits
    asio::co_spawn(io, demo(pool, hosts), [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
    });
    io.run();  // returns once every job has come back, the detached ones included
    // 6 slow calls asked: the skipped one and the refused one never ran.
    std::printf("slow calls that ran: %d of 6\n", slow_calls_run.load());
    return 0;
}
