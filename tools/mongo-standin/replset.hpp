// replset: the replica set the stand-in poses as with --replset NAME --members N: which
// member is primary, which are down or cut off from clients, elections on a timer, the
// topologyVersion that awaitable hellos wait on, and each member's count of finds served.
// One object for the whole set: every member answers from it (and from the one shared store).
#pragma once

#include <bson/bson.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store.hpp"

namespace standin {

class replica_set {
  public:
    // `hosts`: "HOST:PORT" of each member as clients reach it (at least one). Member 0 starts
    // as the primary of term 1. Elections are timers on `timers` and last `election_time`.
    replica_set(std::string name, std::vector<std::string> hosts,
                std::chrono::milliseconds election_time, boost::asio::any_io_executor timers);
    replica_set(const replica_set&) = delete;
    replica_set& operator=(const replica_set&) = delete;

    const std::string& name() const { return name_; }
    const std::vector<std::string>& hosts() const { return hosts_; }
    int size() const { return static_cast<int>(hosts_.size()); }

    // What one member reports in hello.
    struct member_view {
        bool primary = false;
        bool secondary = false;
        std::string primary_host;  // empty while the set has no primary
        bson_oid_t election_id{};  // the primary's term; only meaningful on the primary
        bson_oid_t process_id{};   // topologyVersion.processId (new after a revive)
        int64_t counter = 0;       // topologyVersion.counter
    };
    member_view view(int member) const;

    bool is_primary(int member) const;
    // Up and not partitioned: clients may connect to it and are answered.
    bool reachable(int member) const;
    void count_find(int member);

    // True when a client that last saw this topologyVersion of `member` is up to date, so
    // that its awaitable hello must wait rather than be answered at once.
    bool up_to_date(int member, const bson_oid_t& process_id, int64_t counter) const;
    // Completes when the set changes after `counter`, or after `max_wait`: the wait of an
    // awaitable hello. Runs on the caller's executor (a timer, never a thread).
    boost::asio::awaitable<void> wait_for_change(int64_t counter,
                                                 std::chrono::milliseconds max_wait);

    // Control. Each returns an empty string when done, else why it was refused.
    // step_down: the primary becomes a secondary, the set has no primary for the election
    // time, then the next member up (in index order after the old primary) wins a new term.
    std::string step_down();
    // kill: the member is down (its clients are disconnected, new ones refused); if it was
    // primary an election follows. revive: it comes back as a secondary, as a new process.
    std::string kill(int member);
    std::string revive(int member);
    // partition: clients lose the member (disconnected, refused) but the set keeps it, as
    // primary too if it was; heal ends that.
    std::string partition(int member);
    std::string heal(int member);

    // "primary=0 term=1 counter=0 finds=3,0,0 up=1,1,1 partitioned=0,0,0" (primary=-1: none).
    std::string describe() const;
    // The same as a document {name, primary, term, counter, finds: [], up: [], partitioned: []}
    // under "replset" in `reply`.
    void append_status(bson_t* reply) const;

    // Called (outside the set's lock) when clients must lose `member`: it was killed or
    // partitioned. The server closes that member's connections. Set before serving.
    void on_unreachable(std::function<void(int)> fn) { on_unreachable_ = std::move(fn); }

  private:
    struct waiter;  // an awaitable hello's timer, cancelled when the set changes
    struct waiter_entry {
        boost::asio::any_io_executor executor;
        std::weak_ptr<waiter> target;
    };

    std::string check_index(int member) const;
    // Sets member's entry of `flags` (up_ or partitioned_) to `value`; the error (bad index,
    // or "member I <already>" when it was so) or empty.
    std::string set_flag_locked(int member, std::vector<bool>& flags, bool value,
                                const char* already);
    void start_election_locked(int previous_primary);
    void elect(uint64_t generation);
    void changed_locked();  // a new topologyVersion: wakes every waiting hello

    const std::string name_;
    const std::vector<std::string> hosts_;
    const std::chrono::milliseconds election_time_;
    boost::asio::any_io_executor timers_;
    std::function<void(int)> on_unreachable_;

    mutable std::mutex mutex_;
    std::vector<bool> up_, partitioned_;
    std::vector<bson_oid_t> process_ids_;
    std::vector<int64_t> finds_;
    int primary_ = 0;  // -1: none (election under way, or nobody up)
    int last_primary_ = 0;
    int64_t term_ = 1;
    int64_t counter_ = 0;
    bool electing_ = false;
    uint64_t election_generation_ = 0;  // a newer election makes an older timer a no-op
    uint64_t next_waiter_ = 0;
    std::map<uint64_t, waiter_entry> waiters_;
};

// What the secondaries serve with --secondary-lag-ms: a second store that applies each write
// of the primary `lag` after the primary did, in the order they were applied there. Writes
// are queued from any thread; they are applied on `executor` (one thread) by one timer.
class lagged_store {
  public:
    lagged_store(std::chrono::milliseconds lag, boost::asio::any_io_executor executor);

    store& data() { return data_; }
    void insert(const std::string& ns, std::vector<doc_ptr> docs, bool ordered);
    void remove(const std::string& ns, std::span<const uint8_t> filter_doc, bool just_one);
    void drop(const std::string& ns);

  private:
    using clock = std::chrono::steady_clock;
    void later(std::function<void(store&)> write);
    void arm(clock::time_point due);  // on the executor
    void apply_due();                 // on the executor

    store data_;
    const std::chrono::milliseconds lag_;
    boost::asio::steady_timer timer_;
    std::mutex mutex_;
    std::deque<std::pair<clock::time_point, std::function<void(store&)>>> queue_;
};

}  // namespace standin
