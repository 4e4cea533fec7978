// replset: membership, elections and the waits of awaitable hellos (see replset.hpp). One
// mutex guards the state; waiting hellos are woken by cancelling their timers on their own
// executors, so a wake-up never races the coroutine it wakes.
#include "replset.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sstream>

#include "bson_util.hpp"

namespace standin {

namespace asio = boost::asio;

struct replica_set::waiter {
    explicit waiter(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
};

namespace {

// Like mongod's: 7fffffff then the term, big-endian, so that a later term compares greater
// (drivers ignore a primary whose electionId is older than one they have seen).
bson_oid_t election_id_for(int64_t term) {
    uint8_t bytes[12] = {0x7f, 0xff, 0xff, 0xff};
    const auto t = static_cast<uint64_t>(term);
    for (int i = 0; i < 8; ++i) bytes[4 + i] = static_cast<uint8_t>(t >> (8 * (7 - i)));
    bson_oid_t oid;
    bson_oid_init_from_data(&oid, bytes);
    return oid;
}

bson_oid_t new_process_id() {
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    return oid;
}

}  // namespace

replica_set::replica_set(std::string name, std::vector<std::string> hosts,
                         std::chrono::milliseconds election_time, asio::any_io_executor timers)
    : name_(std::move(name)),
      hosts_(std::move(hosts)),
      election_time_(election_time),
      timers_(std::move(timers)),
      up_(hosts_.size(), true),
      partitioned_(hosts_.size(), false),
      finds_(hosts_.size(), 0) {
    for (std::size_t i = 0; i < hosts_.size(); ++i) process_ids_.push_back(new_process_id());
}

replica_set::member_view replica_set::view(int member) const {
    std::lock_guard lock(mutex_);
    const auto i = static_cast<std::size_t>(member);
    member_view v;
    v.primary = primary_ == member;
    v.secondary = !v.primary && up_[i];
    if (primary_ >= 0) v.primary_host = hosts_[static_cast<std::size_t>(primary_)];
    if (v.primary) v.election_id = election_id_for(term_);
    v.process_id = process_ids_[i];
    v.counter = counter_;
    return v;
}

bool replica_set::is_primary(int member) const {
    std::lock_guard lock(mutex_);
    return primary_ == member;
}

bool replica_set::reachable(int member) const {
    std::lock_guard lock(mutex_);
    const auto i = static_cast<std::size_t>(member);
    return up_[i] && !partitioned_[i];
}

void replica_set::count_find(int member) {
    std::lock_guard lock(mutex_);
    ++finds_[static_cast<std::size_t>(member)];
}

bool replica_set::up_to_date(int member, const bson_oid_t& process_id, int64_t counter) const {
    std::lock_guard lock(mutex_);
    return counter == counter_ &&
           bson_oid_equal(&process_id, &process_ids_[static_cast<std::size_t>(member)]);
}

asio::awaitable<void> replica_set::wait_for_change(int64_t counter,
                                                   std::chrono::milliseconds max_wait) {
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    auto w = std::make_shared<waiter>(executor);
    w->timer.expires_after(max_wait);
    uint64_t key = 0;
    bool current = false;
    {
        // Registered under the same lock as every change: a change after this point finds
        // the waiter, and its cancel, posted to this executor, runs only once this coroutine
        // is suspended in async_wait (each executor is one thread).
        std::lock_guard lock(mutex_);
        current = counter == counter_;
        if (current) {
            key = next_waiter_++;
            waiters_.emplace(key, waiter_entry{w->timer.get_executor(), w});
        }
    }
    if (!current) co_return;  // changed already: answer now
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mutex_);
    waiters_.erase(key);
}

void replica_set::changed_locked() {
    ++counter_;
    for (const auto& entry : waiters_) {
        asio::post(entry.second.executor, [target = entry.second.target] {
            if (auto w = target.lock()) w->timer.cancel();
        });
    }
}

std::string replica_set::check_index(int member) const {
    if (member < 0 || member >= size())
        return "no member " + std::to_string(member) + " (members are 0 to " +
               std::to_string(size() - 1) + ")";
    return {};
}

void replica_set::start_election_locked(int previous_primary) {
    last_primary_ = previous_primary;
    primary_ = -1;
    electing_ = true;
    const uint64_t generation = ++election_generation_;
    // The timer lives in its own handler: nothing to cancel, a newer election just makes
    // this one a no-op through the generation.
    auto timer = std::make_shared<asio::steady_timer>(timers_, election_time_);
    timer->async_wait([this, timer, generation](const boost::system::error_code& ec) {
        (void)timer;
        if (!ec) elect(generation);
    });
}

void replica_set::elect(uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (generation != election_generation_ || primary_ >= 0) return;
    electing_ = false;
    // The next member after the old primary that is up, preferring one clients can reach;
    // the old primary itself only when it is the only one left.
    const int n = size();
    int winner = -1;
    for (int pass = 0; pass < 2 && winner < 0; ++pass) {
        for (int k = 1; k <= n && winner < 0; ++k) {
            const auto i = static_cast<std::size_t>((last_primary_ + k) % n);
            if (up_[i] && (pass == 1 || !partitioned_[i])) winner = static_cast<int>(i);
        }
    }
    if (winner < 0) return;  // every member is down: the next revive starts an election
    primary_ = winner;
    ++term_;
    changed_locked();
}

std::string replica_set::step_down() {
    std::lock_guard lock(mutex_);
    if (primary_ < 0) return "the set has no primary to step down";
    start_election_locked(primary_);
    changed_locked();
    return {};
}

std::string replica_set::set_flag_locked(int member, std::vector<bool>& flags, bool value,
                                         const char* already) {
    if (auto error = check_index(member); !error.empty()) return error;
    const auto i = static_cast<std::size_t>(member);
    if (flags[i] == value) return "member " + std::to_string(member) + " " + already;
    flags[i] = value;
    return {};
}

std::string replica_set::kill(int member) {
    {
        std::lock_guard lock(mutex_);
        if (auto error = set_flag_locked(member, up_, false, "is already down"); !error.empty())
            return error;
        if (primary_ == member) start_election_locked(member);
        changed_locked();
    }
    if (on_unreachable_) on_unreachable_(member);
    return {};
}

std::string replica_set::revive(int member) {
    std::lock_guard lock(mutex_);
    if (auto error = set_flag_locked(member, up_, true, "is already up"); !error.empty())
        return error;
    // A restarted mongod is a new process.
    process_ids_[static_cast<std::size_t>(member)] = new_process_id();
    if (primary_ < 0 && !electing_) start_election_locked(last_primary_);
    changed_locked();
    return {};
}

std::string replica_set::partition(int member) {
    {
        std::lock_guard lock(mutex_);
        if (auto error = set_flag_locked(member, partitioned_, true, "is already partitioned");
            !error.empty())
            return error;
    }
    if (on_unreachable_) on_unreachable_(member);
    return {};
}

std::string replica_set::heal(int member) {
    std::lock_guard lock(mutex_);
    return set_flag_locked(member, partitioned_, false, "is not partitioned");
}

std::string replica_set::describe() const {
    std::lock_guard lock(mutex_);
    std::ostringstream out;
    auto list = [&](const char* key, const auto& values) {
        out << ' ' << key << '=';
        for (std::size_t i = 0; i < values.size(); ++i)
            out << (i ? "," : "") << static_cast<int64_t>(values[i]);
    };
    out << "primary=" << primary_ << " term=" << term_ << " counter=" << counter_;
    list("finds", finds_);
    list("up", up_);
    list("partitioned", partitioned_);
    return out.str();
}

void replica_set::append_status(bson_t* reply) const {
    std::lock_guard lock(mutex_);
    bson_t doc, array;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "replset", &doc);
    append_utf8(&doc, "name", name_);
    BSON_APPEND_INT32(&doc, "primary", primary_);
    BSON_APPEND_INT64(&doc, "term", term_);
    BSON_APPEND_INT64(&doc, "counter", counter_);
    BSON_APPEND_ARRAY_BEGIN(&doc, "finds", &array);
    for (std::size_t i = 0; i < finds_.size(); ++i)
        BSON_APPEND_INT64(&array, std::to_string(i).c_str(), finds_[i]);
    bson_append_array_end(&doc, &array);
    BSON_APPEND_ARRAY_BEGIN(&doc, "up", &array);
    for (std::size_t i = 0; i < up_.size(); ++i)
        BSON_APPEND_BOOL(&array, std::to_string(i).c_str(), up_[i]);
    bson_append_array_end(&doc, &array);
    BSON_APPEND_ARRAY_BEGIN(&doc, "partitioned", &array);
    for (std::size_t i = 0; i < partitioned_.size(); ++i)
        BSON_APPEND_BOOL(&array, std::to_string(i).c_str(), partitioned_[i]);
    bson_append_array_end(&doc, &array);
    bson_append_document_end(reply, &doc);
}

lagged_store::lagged_store(std::chrono::milliseconds lag, asio::any_io_executor executor)
    : lag_(lag), timer_(std::move(executor)) {}

void lagged_store::insert(const std::string& ns, std::vector<doc_ptr> docs, bool ordered) {
    // The same immutable documents (same _ids): the secondary ends up with what the primary
    // has, duplicates refused the same way.
    later([ns, docs = std::move(docs), ordered](store& s) {
        std::vector<write_error> ignored;
        s.insert(ns, docs, ordered, ignored);
    });
}

void lagged_store::remove(const std::string& ns, std::span<const uint8_t> filter_doc,
                          bool just_one) {
    later([ns, bytes = std::vector<uint8_t>(filter_doc.begin(), filter_doc.end()),
           just_one](store& s) {
        // Parsed on the primary already: it parses here too.
        auto parsed = filter::parse(bytes);
        if (auto* f = std::get_if<filter>(&parsed)) s.remove(ns, *f, just_one);
    });
}

void lagged_store::drop(const std::string& ns) {
    later([ns](store& s) { s.drop(ns); });
}

void lagged_store::later(std::function<void(store&)> write) {
    const auto due = clock::now() + lag_;
    bool first = false;
    {
        std::lock_guard lock(mutex_);
        first = queue_.empty();
        queue_.emplace_back(due, std::move(write));
    }
    // With writes queued the timer is armed already, and apply_due re-arms it.
    if (first) asio::post(timer_.get_executor(), [this, due] { arm(due); });
}

void lagged_store::arm(clock::time_point due) {
    timer_.expires_at(due);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) apply_due();
    });
}

void lagged_store::apply_due() {
    for (;;) {
        std::function<void(store&)> write;
        {
            std::lock_guard lock(mutex_);
            if (queue_.empty()) return;
            if (queue_.front().first > clock::now()) return arm(queue_.front().first);
            write = std::move(queue_.front().second);
            queue_.pop_front();
        }
        write(data_);
    }
}

}  // namespace standin
