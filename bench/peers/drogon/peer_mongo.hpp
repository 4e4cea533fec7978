// What the drogon peer (main.cpp) and its driver-only loop (find_loop.cpp) share: the number
// parsing of their flags and the blocking find_one over a mongoc_client_pool_t, so that the
// loop measures exactly the driver work the /mongo handler does.
#pragma once

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace peer {

// The same deadlines as coroserve (--db-timeout-ms 2000, server selection 1000 ms).
constexpr std::int32_t query_timeout_ms = 2000;
constexpr std::int32_t server_selection_ms = 1000;

template <typename T>
T parse_number(std::string_view text, T low, T high, std::string_view what) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high)
        throw std::invalid_argument{std::string{what} + " must be a whole number in " +
                                    std::to_string(low) + ".." + std::to_string(high) + ", got '" +
                                    std::string{text} + "'"};
    return value;
}

// Start-up: returns setup()'s result; when it throws (a bad flag, a bad URI) prints
// "<program>: <why>" and the usage, if any, on stderr and exits with status 2.
template <typename F>
auto or_exit(const char* program, F setup, const char* usage = nullptr) {
    try {
        return setup();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        if (usage) std::fprintf(stderr, "usage: %s %s\n", program, usage);
        std::exit(2);
    }
}

// A database failure: the handler answers 503 and logs the driver's message.
struct db_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// RAII over a mongoc_client_pool_t; find_one() blocks and must run off drogon's I/O loops.
class database {
  public:
    database(const std::string& uri_text, std::int32_t pool_size) {
        // libmongoc's default handler prints below-warning messages (e.g. the monitor's failed
        // checks) on stdout, which carries the server's port line and the loop's result.
        mongoc_log_set_handler(&log_to_stderr, nullptr);
        mongoc_init();
        bson_error_t error;
        mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_text.c_str(), &error);
        if (!uri) {
            mongoc_cleanup();
            throw std::invalid_argument{std::string{"invalid MONGODB_URI: "} + error.message};
        }
        // Defaults only: a URI that sets one of these keeps its own.
        set_default(uri, MONGOC_URI_SOCKETTIMEOUTMS, query_timeout_ms);
        set_default(uri, MONGOC_URI_CONNECTTIMEOUTMS, query_timeout_ms);
        set_default(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, server_selection_ms);
        set_default(uri, MONGOC_URI_MAXPOOLSIZE, pool_size);
        pool_ = mongoc_client_pool_new(uri);
        mongoc_uri_destroy(uri);
        if (!pool_) {
            mongoc_cleanup();
            throw std::invalid_argument{"invalid MongoDB URI options"};
        }
        mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
        opts_ = BCON_NEW("limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true), "maxTimeMS",
                         BCON_INT64(query_timeout_ms));
    }
    database(const database&) = delete;
    database& operator=(const database&) = delete;
    ~database() {
        bson_destroy(opts_);
        mongoc_client_pool_destroy(pool_);
        mongoc_cleanup();
    }

    // The first document of articles.articles as relaxed extended JSON, or nullopt when empty.
    std::optional<std::string> find_one() const {
        mongoc_client_t* client = mongoc_client_pool_pop(pool_);
        mongoc_collection_t* articles =
            mongoc_client_get_collection(client, "articles", "articles");
        bson_t filter = BSON_INITIALIZER;
        mongoc_cursor_t* cursor =
            mongoc_collection_find_with_opts(articles, &filter, opts_, nullptr);
        const bson_t* doc = nullptr;
        std::optional<std::string> json;
        if (mongoc_cursor_next(cursor, &doc)) {
            std::size_t len = 0;
            char* text = bson_as_relaxed_extended_json(doc, &len);
            json.emplace(text, len);
            bson_free(text);
        }
        bson_error_t error;
        const bool failed = mongoc_cursor_error(cursor, &error);
        mongoc_cursor_destroy(cursor);
        bson_destroy(&filter);
        mongoc_collection_destroy(articles);
        mongoc_client_pool_push(pool_, client);
        if (failed) throw db_failure{error.message};
        return json;
    }

  private:
    static void log_to_stderr(mongoc_log_level_t level, const char* domain, const char* message,
                              void*) {
        std::fprintf(stderr, "%s %s: %s\n", mongoc_log_level_str(level), domain, message);
    }

    static void set_default(mongoc_uri_t* uri, const char* option, std::int32_t value) {
        if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, value);
    }

    mongoc_client_pool_t* pool_ = nullptr;
    bson_t* opts_ = nullptr;
};

}  // namespace peer
