// fan_out: one request that needs two documents awaits both blocking queries at once, with
// Asio's awaitable operators (`a && b`), and what to do when one of them fails:
//   all-or-nothing (default): the first failure cancels the other query (if it has not started
//     yet) and is rethrown at the co_await; the caller answers with an error.
//   --partial: each query catches its own failure, so the answer keeps the document that came.
//
// Run it (from a coroserve build directory):
//     data=../../bench/data/small_doc.json
//     bin/mongo-standin --port 27018 --seed articles.articles=$data --seed articles.small=$data &
//     bin/fan_out mongodb://127.0.0.1:27018 articles articles small
// It prints {"articles": ..., "small": ...} (null for an empty collection); exit 1 on failure.
#include <mongoc/mongoc.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cctype>
#include <coroserve/blocking_pool.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

// The blocking query, as in minimal_mongo_server.cpp: the first document of a collection as
// relaxed extended JSON, nullopt if there is none; throws on any driver or server error.
class mongo {
  public:
    mongo(const std::string& uri_string, std::string database) : database_(std::move(database)) {
        bson_error_t error;
        std::unique_ptr<mongoc_uri_t, decltype(&mongoc_uri_destroy)> uri{
            mongoc_uri_new_with_error(uri_string.c_str(), &error), mongoc_uri_destroy};
        if (!uri) throw std::invalid_argument{std::string{"bad MongoDB URI: "} + error.message};
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SOCKETTIMEOUTMS, 2000);
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 1000);
        pool_ = mongoc_client_pool_new(uri.get());
        if (!pool_) throw std::invalid_argument{"bad MongoDB URI options"};
        mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
    }
    ~mongo() { mongoc_client_pool_destroy(pool_); }
    mongo(const mongo&) = delete;
    mongo& operator=(const mongo&) = delete;

    std::optional<std::string> find_one(const std::string& collection) const {
        mongoc_client_t* client = mongoc_client_pool_pop(pool_);
        mongoc_collection_t* coll =
            mongoc_client_get_collection(client, database_.c_str(), collection.c_str());
        bson_t filter = BSON_INITIALIZER;
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &filter, nullptr, nullptr);
        const bson_t* doc = nullptr;
        std::optional<std::string> json;
        if (mongoc_cursor_next(cursor, &doc)) {
            char* text = bson_as_relaxed_extended_json(doc, nullptr);
            json = text;
            bson_free(text);
        }
        bson_error_t error;
        const bool failed = mongoc_cursor_error(cursor, &error);
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(coll);
        mongoc_client_pool_push(pool_, client);
        if (failed) throw std::runtime_error{collection + ": " + error.message};
        return json;
    }

  private:
    std::string database_;
    mongoc_client_pool_t* pool_ = nullptr;
};

std::string answer(const std::string& a, const std::string& json_a, const std::string& b,
                   const std::string& json_b) {
    return "{\"" + a + "\": " + json_a + ", \"" + b + "\": " + json_b + "}";
}

// All or nothing: `&&` runs both jobs at once and returns both results, or throws.
asio::awaitable<std::string> both(coroserve::blocking_pool& pool, const mongo& db, std::string a,
                                  std::string b) {
    // Named lambdas that copy the names: the pool threads never refer to this frame.
    auto find_a = [&db, a] { return db.find_one(a); };
    auto find_b = [&db, b] { return db.find_one(b); };
    auto [doc_a, doc_b] = co_await (pool.run(find_a) && pool.run(find_b));
    co_return answer(a, doc_a.value_or("null"), b, doc_b.value_or("null"));
}

// One branch of the partial answer: its failure becomes a value, logged, not thrown.
asio::awaitable<std::string> one_or_error(coroserve::blocking_pool& pool, const mongo& db,
                                          std::string name) {
    auto find = [&db, name] { return db.find_one(name); };
    try {
        auto doc = co_await pool.run(find);
        co_return doc.value_or("null");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fan_out: %s\n", e.what());  // details: the log, not the answer
        co_return R"({"error": "unavailable"})";
    }
}

asio::awaitable<std::string> partial(coroserve::blocking_pool& pool, const mongo& db, std::string a,
                                     std::string b) {
    auto [json_a, json_b] = co_await (one_or_error(pool, db, a) && one_or_error(pool, db, b));
    co_return answer(a, json_a, b, json_b);
}

// Collection names go into the JSON answer as keys: letters, digits, '_', '.', '-' only.
bool valid_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '.' || c == '-';
    });
}

// `a && b` rethrows the failure of either. When both complete with an exception it throws
// multiple_exceptions: both failed, or one failed and the other, cancelled before a worker took
// it, completed with job_cancelled. The first exception is the failure that started it.
std::string what_failed(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const asio::multiple_exceptions& e) {
        return what_failed(e.first_exception());
    } catch (const std::exception& e) {
        return e.what();
    }
}

int main(int argc, char** argv) {
    const bool keep_partial = argc > 1 && std::string{argv[1]} == "--partial";
    if (argc != 5 + keep_partial) {
        std::fprintf(stderr, "usage: %s [--partial] MONGODB_URI DATABASE COLLECTION COLLECTION\n",
                     argv[0]);
        return 2;
    }
    char** arg = argv + 1 + keep_partial;
    if (!valid_name(arg[2]) || !valid_name(arg[3])) {
        std::fprintf(stderr,
                     "fan_out: a collection name has letters, digits, '_', '.', '-' only\n");
        return 2;
    }
    mongoc_init();
    int status = 0;
    try {
        mongo db{arg[0], arg[1]};
        asio::io_context io;
        // After the io_context: destroyed first, so its threads are joined before a job still
        // posting its completion could find the io_context gone.
        coroserve::blocking_pool pool{2, 8};
        auto request =
            keep_partial ? partial(pool, db, arg[2], arg[3]) : both(pool, db, arg[2], arg[3]);
        asio::co_spawn(io, std::move(request), [&](std::exception_ptr error, std::string json) {
            if (error) {
                std::fprintf(stderr, "fan_out: no answer: %s\n", what_failed(error).c_str());
                status = 1;
            } else {
                std::printf("%s\n", json.c_str());
            }
        });
        io.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fan_out: %s\n", e.what());
        status = 1;
    }
    mongoc_cleanup();
    return status;
}
