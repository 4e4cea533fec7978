// commands: the MongoDB commands the stand-in answers, one handler each, turning a
// request body into a reply document. No networking here.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <span>

#include "faults.hpp"
#include "store.hpp"

namespace standin {

struct services {
    store& db;
    cursor_table& cursors;
    fault_state& faults;
};

struct command_result {
    bool drop_connections = false;  // standinFault asked to close every connection
};

// Writes the reply to the command in `body` into `reply` (an empty document).
// `connection_id` is reported by hello.
command_result run_command(services& s, std::span<const uint8_t> body, int32_t connection_id,
                           bson_t* reply);

}  // namespace standin
