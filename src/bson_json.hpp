// BSON to compact relaxed Extended JSON, as the MongoDB Extended JSON specification defines it
// (docs/extended-json.md says what we print and why, where libbson versions differ).
#pragma once

#include <bson/bson.h>

#include <stdexcept>
#include <string>

namespace coroserve {

// Thrown when the BSON is corrupt (a BSON corpus decode error), a string is not valid UTF-8,
// or documents nest deeper than max_json_depth. `out` is then left as it was before the call.
class bson_json_error : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

// Levels of embedded documents, arrays and code-with-scope scopes below the top-level
// document that we print; a deeper document is refused rather than printed as non-JSON.
// The specification asks generators for at least 100 (MongoDB's own limit).
inline constexpr int max_json_depth = 200;

// Appends the document to `out`. The output is sized by the caller's reserve() (the hot path
// reserves 1.25 x the BSON size, which the compact JSON rarely exceeds) and grows
// geometrically past it.
void append_relaxed_json(std::string& out, const bson_t& doc);

std::string to_relaxed_json(const bson_t& doc);

}  // namespace coroserve
