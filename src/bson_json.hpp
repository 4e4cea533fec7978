// BSON to compact relaxed extended JSON: byte-for-byte what libbson 1.23's
// bson_as_relaxed_extended_json() prints, minus its insignificant whitespace.
#pragma once

#include <bson/bson.h>

#include <stdexcept>
#include <string>

namespace coroserve {

// Thrown when the BSON is corrupt or a string is not valid UTF-8 (libbson returns NULL for
// both). `out` is then left as it was before the call.
class bson_json_error : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

// Appends the document to `out`, reusing its capacity: the hot path keeps one buffer per
// connection and clears it between responses.
void append_relaxed_json(std::string& out, const bson_t& doc);

std::string to_relaxed_json(const bson_t& doc);

}  // namespace coroserve
