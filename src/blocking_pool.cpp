// The non-template half of blocking_pool: the bounded queue and the worker threads.
#include "blocking_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

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

blocking_pool::blocking_pool(unsigned threads, std::size_t queue_limit)
    : queue_limit_(queue_limit) {
    workers_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

blocking_pool::~blocking_pool() {
    shutdown();
}

void blocking_pool::shutdown() {
    stop();
    for (auto& t : workers_)
        if (t.joinable()) t.join();
}

bool blocking_pool::push(std::shared_ptr<job> j) {
    {
        std::lock_guard lock{mutex_};
        // A job may wait only if a worker is free for it or the queue has room.
        if (stopping_ || queue_.size() >= queue_limit_ + (workers_.size() - busy_.load()))
            return false;
        queue_.push_back(std::move(j));
        queued_.store(queue_.size(), std::memory_order_relaxed);
    }
    ready_.notify_one();
    return true;
}

void blocking_pool::work() {
    for (;;) {
        std::shared_ptr<job> j;
        {
            std::unique_lock lock{mutex_};
            ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            j = std::move(queue_.front());
            queue_.pop_front();
            queued_.store(queue_.size(), std::memory_order_relaxed);
            busy_.fetch_add(1, std::memory_order_relaxed);
        }
        if (j->claimed.exchange(true)) {
            // cancelled while queued: skip it
        } else if (peer_reset(j->client_fd)) {
            skipped_.fetch_add(1, std::memory_order_relaxed);
            j->abandon(std::make_exception_ptr(client_gone{}));
        } else {
            j->run();
        }
        busy_.fetch_sub(1, std::memory_order_relaxed);
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
    for (auto& j : left)
        if (!j->claimed.exchange(true)) j->abandon(std::make_exception_ptr(pool_stopped{}));
}

}  // namespace coroserve
