// A bounded pool of threads for blocking calls (libmongoc), awaitable from coroutines:
//
//     auto doc = co_await pool.run([=] { return db.find_one(name); });
//
// run() queues the call, suspends the coroutine, and resumes it on its own executor with the
// result (std::monostate for a void call), or rethrows what the call threw. A full queue throws
// pool_overloaded at once, so the caller can answer 503 instead of waiting. Cancelling the await
// (e.g. a || timeout) skips a job that has not started; a job already running cannot be stopped,
// which is why every blocking call must carry its own deadline.
#pragma once

#include <atomic>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coroserve {

struct pool_overloaded : std::runtime_error {
    pool_overloaded() : std::runtime_error("blocking pool queue is full") {}
};
struct pool_stopped : std::runtime_error {
    pool_stopped() : std::runtime_error("blocking pool stopped before the job ran") {}
};
struct job_cancelled : std::runtime_error {
    job_cancelled() : std::runtime_error("job cancelled before it ran") {}
};
struct client_gone : std::runtime_error {
    client_gone() : std::runtime_error("the client reset its connection while the job waited") {}
};

class blocking_pool {
  public:
    blocking_pool(unsigned threads, std::size_t queue_limit);
    ~blocking_pool();  // shutdown()
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

    // `client_fd`, when given, is the socket of the client the job works for: a worker skips the
    // job (client_gone) if that client reset its connection while the job waited.
    // A plain function taking a reference, not a coroutine: `fn` goes straight into the job and
    // no temporary outlives the call (g++ 12 mishandles temporaries with destructors that live
    // across a co_await; pass a named lambda, as the handlers do).
    template <class F, class Fn = std::decay_t<F>, class T = std::invoke_result_t<Fn&>>
    auto run(F&& fn, int client_fd = -1);

    // Queued jobs complete with pool_stopped; running ones finish. Idempotent.
    void stop();
    // stop(), then waits for the workers to finish. Idempotent.
    void shutdown();

    unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
    std::size_t busy() const { return busy_.load(std::memory_order_relaxed); }
    std::size_t queued() const { return queued_.load(std::memory_order_relaxed); }
    std::size_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
    std::size_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

  private:
    // Type-erased queued call. `claimed` decides, once, who completes it: a worker that runs
    // it, a cancellation, or stop().
    struct job {
        virtual ~job() = default;
        virtual void run() = 0;                            // on a worker thread
        virtual void abandon(std::exception_ptr why) = 0;  // never ran: complete with why
        std::atomic<bool> claimed{false};
        int client_fd = -1;
    };
    template <class Fn, class Handler, class T>
    struct job_for;

    bool push(std::shared_ptr<job> j);  // false: queue full or stopped
    void work();

    std::size_t queue_limit_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::shared_ptr<job>> queue_;
    bool stopping_ = false;
    std::atomic<std::size_t> busy_{0}, queued_{0}, rejected_{0}, skipped_{0};
    std::vector<std::thread> workers_;
};

// The job for one run(): holds the call, the awaiting coroutine's completion handler, and a
// work guard that keeps the coroutine's executor alive until the result is back.
template <class Fn, class Handler, class T>
struct blocking_pool::job_for final : job, std::enable_shared_from_this<job_for<Fn, Handler, T>> {
    using value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

    job_for(Fn f, Handler h)
        : fn(std::move(f)),
          handler(std::move(h)),
          work(boost::asio::make_work_guard(handler)),
          slot(boost::asio::get_associated_cancellation_slot(handler)) {}

    void run() override {
        std::exception_ptr error;
        value result{};
        try {
            if constexpr (std::is_void_v<T>)
                fn();
            else
                result = fn();
        } catch (...) {
            error = std::current_exception();
        }
        complete(error, std::move(result));
    }

    void abandon(std::exception_ptr why) override { complete(why, value{}); }

    // Hands the outcome back on the coroutine's own executor. Always posted, never run inline:
    // a cancellation handler must not resume the coroutine from inside itself.
    void complete(std::exception_ptr error, value result) {
        auto ex = work.get_executor();
        boost::asio::post(
            ex, [self = this->shared_from_this(), error, result = std::move(result)]() mutable {
                if (self->slot.is_connected()) self->slot.clear();
                self->work.reset();
                std::move(self->handler)(error, std::move(result));
            });
    }

    // Runs on the coroutine's executor when the await is cancelled: a job that no worker has
    // claimed yet is skipped; its worker will drop it.
    void watch_cancellation() {
        if (!slot.is_connected()) return;
        slot.assign([weak = this->weak_from_this()](boost::asio::cancellation_type) {
            auto self = weak.lock();
            if (self && !self->claimed.exchange(true))
                self->abandon(std::make_exception_ptr(job_cancelled{}));
        });
    }

    Fn fn;
    Handler handler;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work;
    boost::asio::cancellation_slot slot;
};

template <class F, class Fn, class T>
auto blocking_pool::run(F&& fn, int client_fd) {
    using value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    static_assert(std::is_default_constructible_v<value>,
                  "a pool job returns a default-constructible type");
    auto init = [this, client_fd](auto handler, Fn fn) {
        using job_type = job_for<Fn, decltype(handler), T>;
        auto j = std::make_shared<job_type>(std::move(fn), std::move(handler));
        j->client_fd = client_fd;
        j->watch_cancellation();
        if (!push(j) && !j->claimed.exchange(true)) {
            rejected_.fetch_add(1, std::memory_order_relaxed);
            j->abandon(std::make_exception_ptr(pool_overloaded{}));
        }
    };
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>,
                                       void(std::exception_ptr, value)>(
        std::move(init), boost::asio::use_awaitable, Fn{std::forward<F>(fn)});
}

}  // namespace coroserve
