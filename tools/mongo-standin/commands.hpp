// commands: the MongoDB commands the stand-in answers, one handler each, turning a
// request body into a reply document. No networking here.
#pragma once

#include <bson/bson.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "auth.hpp"
#include "faults.hpp"
#include "store.hpp"

namespace standin {

class replica_set;
class lagged_store;

struct services {
    store& db;
    cursor_table& cursors;
    fault_state& faults;
    const user_table& users;  // empty: authentication is off
    // With --replset: the set, and the member this connection talks to. Null: standalone.
    replica_set* rs = nullptr;
    int member = 0;
    // With --secondary-lag-ms: what secondaries read, each write applied there later.
    lagged_store* lagged = nullptr;
};

// An awaitable hello ({hello, topologyVersion, maxAwaitTimeMS}). `must_wait`: the client is
// up to date, so wait for the set to change after `counter` (or for `max_wait`), then run
// the command again with may_wait false; otherwise the reply is written already. Either way
// `max_wait` paces the later replies of an exhaust stream.
struct hello_wait {
    int64_t counter = 0;
    std::chrono::milliseconds max_wait{0};
    bool must_wait = false;
};

struct command_result {
    bool drop_connections = false;   // standinFault asked to close every connection
    std::optional<hello_wait> wait;  // an awaitable hello (no reply yet when it must wait)
};

// Writes the reply to the command in `body` into `reply` (an empty document).
// `connection_id` is reported by hello; `auth` is the connection's authentication: with
// users configured, only hello, saslStart and saslContinue run before it succeeds.
// `may_wait` false: an awaitable hello is answered at once (its wait is over).
command_result run_command(services& s, std::span<const uint8_t> body, int32_t connection_id,
                           auth_state& auth, bson_t* reply, bool may_wait = true);

}  // namespace standin
