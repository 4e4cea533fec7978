// commands: the MongoDB commands the stand-in answers, one handler each, turning a
// request body into a reply document. No networking here.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <span>

#include "auth.hpp"
#include "faults.hpp"
#include "store.hpp"

namespace standin {

struct services {
    store& db;
    cursor_table& cursors;
    fault_state& faults;
    const user_table& users;  // empty: authentication is off
};

struct command_result {
    bool drop_connections = false;  // standinFault asked to close every connection
};

// Writes the reply to the command in `body` into `reply` (an empty document).
// `connection_id` is reported by hello; `auth` is the connection's authentication: with
// users configured, only hello, saslStart and saslContinue run before it succeeds.
command_result run_command(services& s, std::span<const uint8_t> body, int32_t connection_id,
                           auth_state& auth, bson_t* reply);

}  // namespace standin
