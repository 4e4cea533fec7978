// store: the in-memory collections (documents kept as their BSON bytes, so a reply copies
// them without re-serialising), the equality filter, and the table of open cursors.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bson_util.hpp"

namespace standin {

// One stored document: immutable bytes, shared by the collection and any open cursor.
struct stored_doc {
    std::vector<uint8_t> bytes;
    std::span<const uint8_t> span() const { return bytes; }
};
using doc_ptr = std::shared_ptr<const stored_doc>;

// A stored copy of `doc`, with a new ObjectId first when it has no _id (as drivers do).
doc_ptr make_stored_doc(const bson_t* doc);

// A query filter: equality on top-level fields only ({a: 1, _id: ObjectId(...)}; a null
// value also matches a missing field). Built from the request's bytes: it views them.
class filter {
  public:
    // nullopt-free: returns the reason when the filter uses something unsupported.
    static std::variant<filter, std::string> parse(std::span<const uint8_t> doc);
    bool matches(std::span<const uint8_t> doc) const;
    bool empty() const { return terms_.empty(); }

  private:
    std::vector<bson_iter_t> terms_;  // iterators into the filter's bytes
};

struct write_error {
    int32_t index = 0;
    int32_t code = 0;
    std::string message;
};

class store {
  public:
    // Inserts in order; stops at the first error when `ordered`. Documents must carry _id.
    int32_t insert(const std::string& ns, std::vector<doc_ptr> docs, bool ordered,
                   std::vector<write_error>& errors);
    // Matching documents after `skip`, at most `limit` of them (0 = no limit).
    std::vector<doc_ptr> find(const std::string& ns, const filter& f, int64_t skip,
                              int64_t limit) const;
    int64_t count(const std::string& ns, const filter& f, int64_t skip, int64_t limit) const;
    // Removes matching documents (at most one when `just_one`); returns how many.
    int32_t remove(const std::string& ns, const filter& f, bool just_one);
    bool drop(const std::string& ns);
    std::vector<std::string> collections(std::string_view db) const;  // names without db.

  private:
    mutable std::shared_mutex mutex_;
    std::map<std::string, std::vector<doc_ptr>, std::less<>> collections_;
};

// Open cursors: the documents a find or getMore has not returned yet.
class cursor_table {
  public:
    struct cursor {
        std::string ns;
        std::vector<doc_ptr> docs;
        std::size_t next = 0;
    };
    // Keeps `c` and returns its id (non-zero). The oldest cursors are forgotten past a
    // bound, as a server times idle cursors out.
    int64_t open(cursor c);
    // Takes up to `batch` documents (0 = all, within max_batch_bytes); the cursor is
    // closed when exhausted, and `id_after` is 0 then. nullopt if unknown or another ns.
    struct batch_result {
        std::vector<doc_ptr> docs;
        int64_t id_after = 0;
    };
    std::optional<batch_result> next_batch(int64_t id, std::string_view ns, int64_t batch);
    bool kill(int64_t id, std::string_view ns);

    static constexpr std::size_t max_cursors = 10000;

  private:
    std::mutex mutex_;
    int64_t next_id_ = 1;
    std::map<int64_t, cursor> cursors_;
};

// Replies stay under the 16 MiB BSON limit: a batch stops before this many bytes (it
// always holds at least one document).
constexpr std::size_t max_batch_bytes = 16 * 1024 * 1024 - 64 * 1024;

// Takes documents from `docs[from...]` for one batch: at most `batch` (0 = no count
// bound) and within max_batch_bytes. Returns how many were taken.
std::size_t batch_count(std::span<const doc_ptr> docs, std::size_t from, int64_t batch);

}  // namespace standin
