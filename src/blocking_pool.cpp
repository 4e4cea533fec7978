// The non-template half of blocking_pool: the bounded queue and the worker threads.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <coroserve/blocking_pool.hpp>

namespace coroserve {
namespace {

// True if the peer reset the connection (an abortive close, or a write to a closed socket).
// A plain close (FIN) is not enough: a client may half-close after its request and still read
// the answer. Safe from a worker: the session is suspended on this very job.
bool peer_reset(int fd) {
    if (fd < 0) return false;
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

}  // namespace

blocking_pool::blocking_pool(unsigned threads, std::size_t queue_limit, admission rule)
    : queue_limit_(queue_limit), rule_(rule) {
    workers_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    expiry_ = std::thread{[this] { expire_late_jobs(); }};
}

blocking_pool::~blocking_pool() {
    shutdown();
}

void blocking_pool::shutdown() {
    stop();
    for (auto& t : workers_)
        if (t.joinable()) t.join();
    if (expiry_.joinable()) expiry_.join();
}

pool_clock::time_point blocking_pool::last_start(const job& j) const {
    // The margin is capped at half the job's budget: a job always gets to wait that long, so
    // that a slow spell (long runs) cannot refuse every job for ever, and a fresh job runs.
    const auto budget = j.limits.deadline - j.queued_at;
    return j.limits.deadline - std::min<pool_clock::duration>(2 * recent_run_, budget / 2);
}

bool blocking_pool::too_late(const job& j, pool_clock::time_point now) const {
    return j.limits.deadline != pool_clock::time_point::max() && now >= last_start(j);
}

void blocking_pool::note_wait(pool_clock::time_point queued_at, pool_clock::time_point now) {
    // A job at the head that has waited past the target means the queue has stood over the
    // target since that job's queued_at + target: every job at the head since then was older.
    if (now - queued_at <= rule_.target)
        over_target_since_.reset();
    else if (!over_target_since_)
        over_target_since_ = queued_at + rule_.target;
}

std::optional<refusal> blocking_pool::push(std::shared_ptr<job> j) {
    const auto now = pool_clock::now();
    j->queued_at = now;
    bool wake_timekeeper = false;
    {
        std::lock_guard lock{mutex_};
        if (stopping_) {
            if (!j->claimed.exchange(true)) j->abandon(std::make_exception_ptr(pool_stopped{}));
            return std::nullopt;
        }
        const std::size_t idle = workers_.size() - busy_.load(std::memory_order_relaxed);
        // A job may wait only if a worker is free for it or the queue has room.
        if (queue_.size() >= queue_limit_ + idle) return refusal::queue_full;
        if (queue_.size() >= idle) {  // this one will wait
            if (rule_.target.count() > 0) {
                note_wait(queue_.empty() ? now : queue_.front()->queued_at, now);
                if (over_target_since_ && now - *over_target_since_ >= rule_.interval)
                    return refusal::queue_delay;
            }
            wake_timekeeper = j->limits.deadline != pool_clock::time_point::max() &&
                              last_start(*j) < next_expiry_;
        } else {
            over_target_since_.reset();  // no queue at all
        }
        queue_.push_back(std::move(j));
        queued_.store(queue_.size(), std::memory_order_relaxed);
    }
    ready_.notify_one();
    if (wake_timekeeper) timekeeper_.notify_one();
    return std::nullopt;
}

void blocking_pool::refuse(job& j, refusal why) {
    if (j.claimed.exchange(true)) return;
    rejected_[static_cast<std::size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    j.abandon(std::make_exception_ptr(pool_overloaded{why}));
}

void blocking_pool::work() {
    auto ran = pool_clock::duration{-1};  // the last job's run time, noted with the next; -1: none
    for (;;) {
        std::shared_ptr<job> j;
        bool late = false;
        {
            std::unique_lock lock{mutex_};
            // Up at once, down slowly: a deadline is judged by the slow runs, not the average.
            if (ran.count() >= 0)
                recent_run_ = std::max(ran, recent_run_ + (ran - recent_run_) / 8);
            ran = pool_clock::duration{-1};
            ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            j = std::move(queue_.front());
            queue_.pop_front();
            queued_.store(queue_.size(), std::memory_order_relaxed);
            busy_.fetch_add(1, std::memory_order_relaxed);
            const auto now = pool_clock::now();
            if (rule_.target.count() > 0) note_wait(j->queued_at, now);
            late = too_late(*j, now);
        }
        if (late) {
            refuse(*j, refusal::deadline);
        } else if (j->claimed.exchange(true)) {
            // cancelled while queued: skip it
        } else if (peer_reset(j->limits.client_fd)) {
            skipped_.fetch_add(1, std::memory_order_relaxed);
            j->abandon(std::make_exception_ptr(client_gone{}));
        } else {
            const auto start = pool_clock::now();
            j->run();
            // Only jobs with a deadline are the measure (not a demo /sleep).
            if (j->limits.deadline != pool_clock::time_point::max())
                ran = pool_clock::now() - start;
        }
        busy_.fetch_sub(1, std::memory_order_relaxed);
    }
}

// Refuses queued jobs that can no longer finish by their deadline, when that happens rather
// than when a worker gets to them: with every worker stuck on a slow call, nobody else would.
// With no deadline in the queue it lingers one interval (jobs that wait briefly do not wake
// it each time), then sleeps until a job that has to wait arrives.
void blocking_pool::expire_late_jobs() {
    constexpr auto max = pool_clock::time_point::max();
    std::unique_lock lock{mutex_};
    bool lingered = false;
    while (!stopping_) {
        const auto now = pool_clock::now();
        std::vector<std::shared_ptr<job>> late;
        auto next = max;
        auto keep = queue_.begin();
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            if (too_late(**it, now)) {
                late.push_back(std::move(*it));
                continue;
            }
            if ((*it)->limits.deadline != max) next = std::min(next, last_start(**it));
            if (keep != it) *keep = std::move(*it);
            ++keep;
        }
        queue_.erase(keep, queue_.end());
        queued_.store(queue_.size(), std::memory_order_relaxed);
        if (!late.empty()) {
            lock.unlock();
            for (auto& j : late) refuse(*j, refusal::deadline);
            late.clear();
            lock.lock();
        }
        if (next != max) {
            // At most one scan every 2 ms, however many deadlines fall in between.
            next_expiry_ = std::max(next, now + std::chrono::milliseconds{2});
            lingered = false;
        } else if (!lingered) {
            next_expiry_ = now + std::chrono::milliseconds{100};
            lingered = true;
        } else {
            next_expiry_ = max;
            lingered = false;
        }
        if (next_expiry_ == max)
            timekeeper_.wait(lock);
        else
            timekeeper_.wait_until(lock, next_expiry_);
    }
}

void blocking_pool::stop() {
    std::deque<std::shared_ptr<job>> left;
    {
        std::lock_guard lock{mutex_};
        if (stopping_) return;
        stopping_ = true;
        left.swap(queue_);
        queued_.store(0, std::memory_order_relaxed);
    }
    ready_.notify_all();
    timekeeper_.notify_all();
    for (auto& j : left)
        if (!j->claimed.exchange(true)) j->abandon(std::make_exception_ptr(pool_stopped{}));
}

}  // namespace coroserve
