// A bounded pool of threads for blocking calls (libmongoc), awaitable from coroutines:
//
//     auto doc = co_await pool.run([=] { return db.find_one(name); });
//
// run() queues the call, suspends the coroutine, and resumes it on its own executor with the
// result (std::monostate for a void call), or rethrows what the call threw. A job that cannot
// be served in time throws pool_overloaded at once, so the caller can answer 503 instead of
// waiting: when the queue is full (a memory bound), when queued jobs have waited longer than
// the admission target for a sustained interval (queueing delay, CoDel-like), or when the job
// is still queued as its deadline comes. Cancelling the await (e.g. a || timeout) skips a job
// that has not started; a job already running cannot be stopped, which is why every blocking
// call must carry its own deadline.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
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

using pool_clock = std::chrono::steady_clock;

// Why a job was refused; each is counted.
enum class refusal {
    queue_full,   // the hard bound on queued jobs (memory)
    queue_delay,  // queued jobs have waited past the target for a whole interval
    deadline,     // the job was still queued when its deadline came (it never ran)
};
inline constexpr std::array<const char*, 3> refusal_names = {"queue_full", "queue_delay",
                                                             "deadline"};

struct pool_overloaded : std::runtime_error {
    explicit pool_overloaded(refusal r)
        : std::runtime_error(refusal_names[static_cast<std::size_t>(r)]), why(r) {}
    refusal why;
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

// Admission by queueing delay: while the job at the head of the queue has been waiting longer
// than `target` for `interval` without a break, new jobs are refused (a job leaving the queue
// sooner than `target` ends the spell).
// A fast backend is never refused however long the queue; a slow one sheds load early.
struct admission {
    std::chrono::milliseconds target{500};  // 0: no delay-based refusal
    std::chrono::milliseconds interval{100};
};

// What a job may carry besides its call.
struct job_limits {
    // The socket of the client the job works for: a worker skips the job (client_gone) if that
    // client reset its connection while the job waited.
    int client_fd = -1;
    // When the request's answer is due. A job still queued when it could no longer finish by
    // then is refused and never runs: "could no longer" means less time left than twice the
    // recent run time of jobs with deadlines (a slow run counts at once, then fades), a margin
    // for a run slower than the last ones; but at most half the job's time is kept as margin.
    pool_clock::time_point deadline = pool_clock::time_point::max();
};

class blocking_pool {
  public:
    blocking_pool(unsigned threads, std::size_t queue_limit, admission rule = {});
    ~blocking_pool();  // shutdown()
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

    // A plain function taking a reference, not a coroutine: `fn` goes straight into the job and
    // no temporary outlives the call (g++ 12 mishandles temporaries with destructors that live
    // across a co_await; pass a named lambda, as the handlers do).
    template <class F, class Fn = std::decay_t<F>, class T = std::invoke_result_t<Fn&>>
    auto run(F&& fn, job_limits limits = {});

    // Queued jobs complete with pool_stopped; running ones finish. Idempotent.
    void stop();
    // stop(), then waits for the workers to finish. Idempotent.
    void shutdown();

    unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
    std::size_t busy() const { return busy_.load(std::memory_order_relaxed); }
    std::size_t queued() const { return queued_.load(std::memory_order_relaxed); }
    std::size_t rejected(refusal r) const {
        return rejected_[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
    }
    std::size_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

  private:
    // Type-erased queued call. `claimed` decides, once, who completes it: a worker that runs
    // it, a cancellation, or stop().
    struct job {
        virtual ~job() = default;
        virtual void run() = 0;                            // on a worker thread
        virtual void abandon(std::exception_ptr why) = 0;  // never ran: complete with why
        std::atomic<bool> claimed{false};
        job_limits limits;
        pool_clock::time_point queued_at;
    };
    template <class Fn, class Handler, class T>
    struct job_for;

    // Queues the job, or says why not (then the caller refuses it).
    std::optional<refusal> push(std::shared_ptr<job> j);
    void refuse(job& j, refusal why);
    void work();
    void expire_late_jobs();  // the timekeeper thread
    // When the job must have started to finish by its deadline (see job_limits), and whether
    // that time has passed. Under mutex_.
    pool_clock::time_point last_start(const job& j) const;
    bool too_late(const job& j, pool_clock::time_point now) const;
    // Notes how long the job at the head has waited (CoDel's sojourn time). Under mutex_.
    void note_wait(pool_clock::time_point queued_at, pool_clock::time_point now);

    std::size_t queue_limit_;
    admission rule_;
    std::mutex mutex_;
    std::condition_variable ready_;       // workers wait here for jobs
    std::condition_variable timekeeper_;  // the expiry thread waits here for the next deadline
    std::deque<std::shared_ptr<job>> queue_;
    bool stopping_ = false;
    // Since when every wait seen has been over the target; nullopt: the last one was not.
    std::optional<pool_clock::time_point> over_target_since_;
    pool_clock::time_point next_expiry_ = pool_clock::time_point::max();  // the timekeeper's
    pool_clock::duration recent_run_{};  // how long a job runs: the last slow one, decaying
    std::atomic<std::size_t> busy_{0}, queued_{0}, skipped_{0};
    std::array<std::atomic<std::size_t>, refusal_names.size()> rejected_{};
    std::vector<std::thread> workers_;
    std::thread expiry_;
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
        complete(std::move(error), std::move(result));
    }

    void abandon(std::exception_ptr why) override { complete(std::move(why), value{}); }

    // Hands the outcome back on the coroutine's own executor. Always posted, never run inline:
    // a cancellation handler must not resume the coroutine from inside itself. The outcome is
    // moved, not copied: the worker keeps no reference to an exception the coroutine reads.
    void complete(std::exception_ptr error, value result) {
        auto ex = work.get_executor();
        boost::asio::post(ex, [self = this->shared_from_this(), error = std::move(error),
                               result = std::move(result)]() mutable {
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
auto blocking_pool::run(F&& fn, job_limits limits) {
    using value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    static_assert(std::is_default_constructible_v<value>,
                  "a pool job returns a default-constructible type");
    auto init = [this, limits](auto handler, Fn fn) {
        using job_type = job_for<Fn, decltype(handler), T>;
        auto j = std::make_shared<job_type>(std::move(fn), std::move(handler));
        j->limits = limits;
        j->watch_cancellation();
        if (auto why = push(j)) refuse(*j, *why);
    };
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>,
                                       void(std::exception_ptr, value)>(
        std::move(init), boost::asio::use_awaitable, Fn{std::forward<F>(fn)});
}

}  // namespace coroserve
