// pool_user: the smallest use of an installed coroserve::blocking_pool. A blocking call runs
// on a pool thread, the coroutine resumes on its own I/O thread, and an exception thrown by
// the call is rethrown at the co_await.
#include <boost/asio.hpp>
#include <coroserve/blocking_pool.hpp>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;

asio::awaitable<void> use(coroserve::blocking_pool& pool) {
    const auto io_thread = std::this_thread::get_id();
    auto answer = [] { return std::this_thread::get_id(); };
    const auto worker = co_await pool.run(answer);
    std::printf("ran on a pool thread: %s\n", worker != io_thread ? "yes" : "no");
    std::printf("resumed on the I/O thread: %s\n",
                std::this_thread::get_id() == io_thread ? "yes" : "no");

    auto fail = [] {
        throw std::runtime_error{"boom"};
        return 0;
    };
    try {
        co_await pool.run(fail);
    } catch (const std::runtime_error& e) {
        std::printf("rethrown at the co_await: %s\n", e.what());
    }
}

int main() {
    asio::io_context io;
    // After the io_context: destroyed first, so its threads are joined before a job still
    // posting its completion could find the io_context gone.
    coroserve::blocking_pool pool{2, 4};
    asio::co_spawn(io, use(pool), [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
    });
    io.run();
    return 0;
}
