// The stand-in through libmongoc, as the server uses it (a mongoc_client_pool_t): find_one,
// insert, a cursor served by getMore, killCursors, errors, and the injected faults.
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mongoc_pool.hpp"
#include "standin.hpp"

using namespace std::chrono_literals;
using test_support::standin;

namespace {

using standin_mongoc::client;

// An owned bson_t* (std::unique_ptr<bson_t> trips -Wignored-attributes: bson_t is aligned).
class bson_ptr {
  public:
    bson_ptr() = default;
    explicit bson_ptr(bson_t* b) : b_(b) {}
    bson_ptr(bson_ptr&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    bson_ptr& operator=(bson_ptr&& o) noexcept {
        std::swap(b_, o.b_);
        return *this;
    }
    ~bson_ptr() { reset(); }
    void reset(bson_t* b = nullptr) {
        if (b_) bson_destroy(b_);
        b_ = b;
    }
    bson_t* get() const { return b_; }
    bson_t* operator->() const { return b_; }
    explicit operator bool() const { return b_ != nullptr; }

  private:
    bson_t* b_ = nullptr;
};
bson_ptr json(const std::string& text) {
    bson_error_t error;
    bson_ptr b(bson_new_from_json(reinterpret_cast<const uint8_t*>(text.data()),
                                  static_cast<ssize_t>(text.size()), &error));
    // No Catch2 macro here: some callers run on other threads, where Catch2 is not safe.
    if (!b) throw std::runtime_error(std::string{"invalid JSON in a test: "} + error.message);
    return b;
}

// Counts the commands libmongoc starts, by name (APM), to see getMore and killCursors.
struct command_counter {
    std::atomic<int> get_more{0}, kill_cursors{0}, find{0};
    static void started(const mongoc_apm_command_started_t* event) {
        auto* self = static_cast<command_counter*>(mongoc_apm_command_started_get_context(event));
        std::string name = mongoc_apm_command_started_get_command_name(event);
        if (name == "getMore") ++self->get_more;
        if (name == "killCursors") ++self->kill_cursors;
        if (name == "find") ++self->find;
    }
};

// A pool as the server holds one, with short timeouts so that faults fail fast.
class pool : public standin_mongoc::pool {
  public:
    explicit pool(const std::string& uri, command_counter* counter = nullptr)
        : standin_mongoc::pool(uri + "/?serverSelectionTimeoutMS=2000&socketTimeoutMS=3000") {
        if (counter)
            monitor(
                [](auto* cb) { mongoc_apm_set_command_started_cb(cb, command_counter::started); },
                counter);
    }
};

struct collection {
    mongoc_collection_t* c;
    collection(client& cl, const char* db, const char* name)
        : c(mongoc_client_get_collection(cl.get(), db, name)) {}
    ~collection() { mongoc_collection_destroy(c); }
};

// find_one: the first document matching `filter`, or nullptr; error filled on failure.
bson_ptr find_one(client& cl, const char* db, const char* coll, const bson_t* filter,
                  bson_error_t* error) {
    *error = bson_error_t{};  // libmongoc leaves it untouched when nothing fails
    collection c(cl, db, coll);
    auto opts = json(R"({"limit": 1})");
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(c.c, filter, opts.get(), nullptr);
    const bson_t* doc = nullptr;
    bson_ptr out;
    if (mongoc_cursor_next(cursor, &doc)) out.reset(bson_copy(doc));
    if (mongoc_cursor_error(cursor, error)) out.reset();
    mongoc_cursor_destroy(cursor);
    return out;
}

bool ping(client& cl, bson_error_t* error) {
    auto cmd = json(R"({"ping": 1})");
    return mongoc_client_command_simple(cl.get(), "admin", cmd.get(), nullptr, nullptr, error);
}

std::string field_utf8(const bson_t* doc, const char* key) {
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, doc, key));
    REQUIRE(BSON_ITER_HOLDS_UTF8(&it));
    return bson_iter_utf8(&it, nullptr);
}

}  // namespace

TEST_CASE("libmongoc: find_one returns the seeded document", "[mongo][mongoc]") {
    standin s(standin::benchmark_seed_args());
    pool p(s.uri());
    client cl(p);
    bson_error_t error;
    auto doc = find_one(cl, "articles", "articles", json("{}").get(), &error);
    INFO(error.message);
    REQUIRE(doc);
    REQUIRE(field_utf8(doc.get(), "canonicalUrl") == "http://foo.com");
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, doc.get(), "_id"));
    char oid[25];
    bson_oid_to_string(bson_iter_oid(&it), oid);
    REQUIRE(std::string(oid) == "537416b501d53a77bb94135c");

    // By _id, and a miss.
    auto by_id = find_one(cl, "articles", "big",
                          json(R"({"_id": {"$oid": "5377cba55f41d42bc973d506"}})").get(), &error);
    REQUIRE(by_id);
    REQUIRE(by_id->len > 5000);
    auto miss = find_one(cl, "articles", "big",
                         json(R"({"_id": {"$oid": "000000000000000000000000"}})").get(), &error);
    REQUIRE_FALSE(miss);
    REQUIRE(error.code == 0);
}

TEST_CASE("libmongoc: insert, then find by field and count", "[mongo][mongoc]") {
    standin s;
    pool p(s.uri());
    client cl(p);
    collection c(cl, "shop", "items");
    bson_error_t error;
    bson_t reply;
    REQUIRE(mongoc_collection_insert_one(c.c, json(R"({"name": "pen", "qty": 3})").get(), nullptr,
                                         &reply, &error));
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, &reply, "insertedCount"));
    REQUIRE(bson_iter_as_int64(&it) == 1);  // int64 wire fields would silently make this 0
    bson_destroy(&reply);
    REQUIRE(mongoc_collection_insert_one(c.c, json(R"({"name": "ink", "qty": 3})").get(), nullptr,
                                         nullptr, &error));

    auto pen = find_one(cl, "shop", "items", json(R"({"name": "pen"})").get(), &error);
    REQUIRE(pen);
    REQUIRE(field_utf8(pen.get(), "name") == "pen");
    REQUIRE(bson_iter_init_find(&it, pen.get(), "_id"));
    REQUIRE(BSON_ITER_HOLDS_OID(&it));  // added by the driver
    // 3.0 equals int32 3, as in MongoDB.
    auto count_cmd = json(R"({"count": "items", "query": {"qty": 3.0}})");
    REQUIRE(
        mongoc_client_command_simple(cl.get(), "shop", count_cmd.get(), nullptr, &reply, &error));
    REQUIRE(bson_iter_init_find(&it, &reply, "n"));
    REQUIRE(bson_iter_as_int64(&it) == 2);
    bson_destroy(&reply);

    // Duplicate _id: a write error, as MongoDB reports it.
    auto dup = json(R"({"_id": 1})");
    REQUIRE(mongoc_collection_insert_one(c.c, dup.get(), nullptr, nullptr, &error));
    REQUIRE_FALSE(mongoc_collection_insert_one(c.c, dup.get(), nullptr, nullptr, &error));
    REQUIRE(error.code == 11000);
}

TEST_CASE("libmongoc: a 250-document cursor with batchSize 100 uses getMore", "[mongo][mongoc]") {
    standin s;
    command_counter counter;
    pool p(s.uri(), &counter);
    client cl(p);
    collection c(cl, "t", "many");
    std::vector<bson_ptr> docs;
    const bson_t* ptrs[250];
    for (int i = 0; i < 250; ++i) {
        docs.push_back(json("{\"i\": " + std::to_string(i) + "}"));
        ptrs[i] = docs.back().get();
    }
    bson_error_t error;
    REQUIRE(mongoc_collection_insert_many(c.c, ptrs, 250, nullptr, nullptr, &error));

    auto opts = json(R"({"batchSize": 100})");
    mongoc_cursor_t* cursor =
        mongoc_collection_find_with_opts(c.c, json("{}").get(), opts.get(), nullptr);
    const bson_t* doc = nullptr;
    int n = 0;
    bool in_order = true;
    while (mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        in_order = in_order && bson_iter_init_find(&it, doc, "i") && bson_iter_int32(&it) == n;
        ++n;
    }
    REQUIRE_FALSE(mongoc_cursor_error(cursor, &error));
    mongoc_cursor_destroy(cursor);
    REQUIRE(n == 250);
    REQUIRE(in_order);
    REQUIRE(counter.get_more == 2);      // 100 + 100 + 50
    REQUIRE(counter.kill_cursors == 0);  // exhausted: nothing to kill

    // limit, skip and a negative limit (single batch).
    auto limited = json(R"({"batchSize": 100, "skip": 10, "limit": 120})");
    cursor = mongoc_collection_find_with_opts(c.c, json("{}").get(), limited.get(), nullptr);
    n = 0;
    bson_iter_t it;
    while (mongoc_cursor_next(cursor, &doc)) {
        if (n == 0) REQUIRE((bson_iter_init_find(&it, doc, "i") && bson_iter_int32(&it) == 10));
        ++n;
    }
    mongoc_cursor_destroy(cursor);
    REQUIRE(n == 120);
    REQUIRE(counter.get_more == 3);

    auto single = json(R"({"limit": -5})");
    cursor = mongoc_collection_find_with_opts(c.c, json("{}").get(), single.get(), nullptr);
    n = 0;
    while (mongoc_cursor_next(cursor, &doc)) ++n;
    mongoc_cursor_destroy(cursor);
    REQUIRE(n == 5);
    REQUIRE(counter.get_more == 3);
}

TEST_CASE("libmongoc: destroying an open cursor sends killCursors", "[mongo][mongoc]") {
    standin s;
    command_counter counter;
    pool p(s.uri(), &counter);
    client cl(p);
    collection c(cl, "t", "k");
    std::vector<bson_ptr> docs;
    const bson_t* ptrs[30];
    for (int i = 0; i < 30; ++i) {
        docs.push_back(json("{\"i\": " + std::to_string(i) + "}"));
        ptrs[i] = docs.back().get();
    }
    bson_error_t error;
    REQUIRE(mongoc_collection_insert_many(c.c, ptrs, 30, nullptr, nullptr, &error));
    auto opts = json(R"({"batchSize": 10})");
    mongoc_cursor_t* cursor =
        mongoc_collection_find_with_opts(c.c, json("{}").get(), opts.get(), nullptr);
    const bson_t* doc = nullptr;
    REQUIRE(mongoc_cursor_next(cursor, &doc));
    const int64_t id = mongoc_cursor_get_id(cursor);
    REQUIRE(id != 0);
    mongoc_cursor_destroy(cursor);
    REQUIRE(counter.kill_cursors == 1);

    // The cursor is gone on the stand-in's side too.
    auto get_more = json("{\"getMore\": {\"$numberLong\": \"" + std::to_string(id) +
                         "\"}, \"collection\": \"k\"}");
    REQUIRE_FALSE(
        mongoc_client_command_simple(cl.get(), "t", get_more.get(), nullptr, nullptr, &error));
    REQUIRE(error.code == 43);
}

TEST_CASE("libmongoc: unknown command fails with CommandNotFound", "[mongo][mongoc]") {
    standin s;
    pool p(s.uri());
    client cl(p);
    bson_error_t error;
    auto cmd = json(R"({"noSuchCommand": 1})");
    REQUIRE_FALSE(
        mongoc_client_command_simple(cl.get(), "admin", cmd.get(), nullptr, nullptr, &error));
    REQUIRE(error.domain == MONGOC_ERROR_SERVER);
    REQUIRE(error.code == 59);
}

TEST_CASE("libmongoc: injected errors and latency", "[mongo][mongoc][faults]") {
    standin s({"--threads", "1"});  // one thread: latency must still not serialise clients
    pool p(s.uri());
    bson_error_t error;
    {
        client cl(p);
        REQUIRE(ping(cl, &error));
        s.fail_next(1, 11600, "interrupted at shutdown");
        REQUIRE_FALSE(ping(cl, &error));
        REQUIRE(error.code == 11600);
        REQUIRE(std::string(error.message).find("interrupted at shutdown") != std::string::npos);
        REQUIRE(ping(cl, &error));
    }

    // Each new pooled client also waits for its handshake: about 2 s each when the four
    // run side by side, 8 s if the stand-in served the delays one after another.
    s.set_latency_ms(1000);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::future<bool>> pings;
    for (int i = 0; i < 4; ++i)
        pings.push_back(std::async(std::launch::async, [&p] {
            client cl(p);
            bson_error_t e;
            return ping(cl, &e);
        }));
    for (auto& f : pings) REQUIRE(f.get());
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(elapsed >= 1000ms);
    REQUIRE(elapsed < 5000ms);
    s.set_latency_ms(0);
}

TEST_CASE("libmongoc: stand-in stopped, then restarted on the same port",
          "[mongo][mongoc][faults]") {
    standin s;
    pool p(s.uri());
    bson_error_t error;
    {
        client cl(p);
        REQUIRE(ping(cl, &error));
    }
    s.stop();
    {
        client cl(p);
        const auto start = std::chrono::steady_clock::now();
        REQUIRE_FALSE(ping(cl, &error));
        REQUIRE(std::chrono::steady_clock::now() - start < 5s);
    }
    s.start();
    // The pool's monitor rediscovers the server; give it a bounded number of tries.
    bool back = false;
    for (int i = 0; i < 50 && !back; ++i) {
        client cl(p);
        back = ping(cl, &error);
        if (!back) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(back);
}

TEST_CASE("libmongoc: refused and dropped connections", "[mongo][mongoc][faults]") {
    standin s;
    bson_error_t error;
    s.refuse_connections(true);
    {
        pool p(s.uri());
        client cl(p);
        REQUIRE_FALSE(ping(cl, &error));
    }
    s.refuse_connections(false);
    pool p(s.uri());
    {
        client cl(p);
        REQUIRE(ping(cl, &error));
        s.drop_connections();
        // The pooled connection was closed under the client: the next command may fail
        // once; the client then reconnects.
        bool recovered = false;
        for (int i = 0; i < 50 && !recovered; ++i) {
            recovered = ping(cl, &error);
            if (!recovered) std::this_thread::sleep_for(100ms);
        }
        REQUIRE(recovered);
    }
}

TEST_CASE("seed files: one document, an array, or JSON lines", "[mongo][mongoc][tools]") {
    const std::string dir =
        std::filesystem::temp_directory_path() / ("standin-seed-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/array.json") << R"([{"_id": 1}, {"_id": 2, "n": {"$numberLong": "5"}},
        {"name": "no id"}])";
    std::ofstream(dir + "/lines.json") << "{\"a\": 1}\n{\"a\": 2}\n\n{\"a\": 3}\n{\"a\": 4}\n";
    standin s({"--seed", "s.array=" + dir + "/array.json", "--seed",
               "s.lines=" + dir + "/lines.json", "--seed",
               "s.one=" + standin::data_dir() + "/big_doc.json"});
    std::filesystem::remove_all(dir);

    pool p(s.uri());
    client cl(p);
    auto count = [&](const char* coll) {
        auto cmd = json(std::string(R"({"count": ")") + coll + "\"}");
        bson_t reply;
        bson_error_t error;
        REQUIRE(mongoc_client_command_simple(cl.get(), "s", cmd.get(), nullptr, &reply, &error));
        bson_iter_t it;
        REQUIRE(bson_iter_init_find(&it, &reply, "n"));
        const int64_t n = bson_iter_as_int64(&it);
        bson_destroy(&reply);
        return n;
    };
    CHECK(count("array") == 3);
    CHECK(count("lines") == 4);
    CHECK(count("one") == 1);
    bson_error_t error;
    auto two = find_one(cl, "s", "array", json(R"({"_id": 2})").get(), &error);
    REQUIRE(two);
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, two.get(), "n"));
    REQUIRE(BSON_ITER_HOLDS_INT64(&it));  // extended JSON types survive
    auto no_id = find_one(cl, "s", "array", json(R"({"name": "no id"})").get(), &error);
    REQUIRE(no_id);
    REQUIRE(bson_iter_init_find(&it, no_id.get(), "_id"));
    REQUIRE(BSON_ITER_HOLDS_OID(&it));  // given one by the stand-in
}

TEST_CASE("mongo-seed loads files, mongo-driver-load reads them back", "[mongo][mongoc][tools]") {
    standin s;
    const std::string data = standin::data_dir();
    test_support::child_process seed({MONGO_SEED_EXE, "--uri", s.uri(),
                                      "articles.articles=" + data + "/small_doc.json",
                                      "articles.big=" + data + "/big_doc.json"});
    auto st = seed.wait(30s);
    REQUIRE(st);
    REQUIRE(st->ok());
    REQUIRE(seed.first_line().find("articles.articles: 1 document") == 0);
    // Seeding twice drops first: still one document.
    test_support::child_process again(
        {MONGO_SEED_EXE, "--uri", s.uri(), "articles.articles=" + data + "/small_doc.json"});
    REQUIRE(again.wait(30s).value().ok());

    pool p(s.uri());
    client cl(p);
    bson_error_t error;
    auto count_cmd = json(R"({"count": "articles"})");
    bson_t reply;
    REQUIRE(mongoc_client_command_simple(cl.get(), "articles", count_cmd.get(), nullptr, &reply,
                                         &error));
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, &reply, "n"));
    REQUIRE(bson_iter_as_int64(&it) == 1);
    bson_destroy(&reply);

    test_support::child_process load(
        {DRIVER_LOAD_EXE, "--uri", s.uri(), "--threads", "2", "--seconds", "0.5"});
    const std::string line = load.first_line(30s);
    REQUIRE(load.wait(30s).value().ok());  // exit 1 on any error or empty answer
    REQUIRE(line.find("\"errors\": 0") != std::string::npos);
    REQUIRE(line.find("\"finds\": 0,") == std::string::npos);
}
