// mongo-driver-load: N threads doing find_one({}) on articles.articles through one
// mongoc_client_pool_t for S seconds; prints one JSON line with the rate on stdout.
//   mongo-driver-load --uri mongodb://127.0.0.1:27017 --threads 16 --seconds 10
#include <mongoc/mongoc.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct options {
    std::string uri = "mongodb://127.0.0.1:27017";
    std::string db = "articles";
    std::string collection = "articles";
    int threads = 8;
    double seconds = 5;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "mongo-driver-load: " << message
              << "\nusage: mongo-driver-load --uri URI [--threads N] [--seconds S]"
                 " [--db NAME] [--collection NAME]\n";
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--help") usage_error("find_one({}) load through a mongoc_client_pool_t");
        if (i + 1 >= argc) usage_error(flag + " needs a value");
        std::string v = argv[++i];
        if (flag == "--uri") {
            o.uri = v;
        } else if (flag == "--db") {
            o.db = v;
        } else if (flag == "--collection") {
            o.collection = v;
        } else if (flag == "--threads") {
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.threads);
            if (ec != std::errc() || end != v.data() + v.size() || o.threads < 1 ||
                o.threads > 1024)
                usage_error("--threads expects 1..1024");
        } else if (flag == "--seconds") {
            try {
                o.seconds = std::stod(v);
            } catch (const std::exception&) {
                usage_error("--seconds expects a number");
            }
            if (o.seconds <= 0 || o.seconds > 3600) usage_error("--seconds expects (0, 3600]");
        } else {
            usage_error("unknown option '" + flag + "'");
        }
    }
    return o;
}

struct counts {
    long ok = 0;
    long empty = 0;  // no document: a wrong answer for a seeded collection
    long errors = 0;
};

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t* uri = mongoc_uri_new_with_error(o.uri.c_str(), &error);
    if (!uri) usage_error(std::string("bad --uri: ") + error.message);
    mongoc_client_pool_t* pool = mongoc_client_pool_new(uri);
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_max_size(pool, static_cast<uint32_t>(o.threads));

    std::atomic<bool> go{false};
    std::vector<counts> per_thread(static_cast<std::size_t>(o.threads));
    std::vector<std::thread> workers;
    const auto duration = std::chrono::duration<double>(o.seconds);
    for (int t = 0; t < o.threads; ++t) {
        workers.emplace_back([&, t] {
            mongoc_client_t* client = mongoc_client_pool_pop(pool);
            mongoc_collection_t* coll =
                mongoc_client_get_collection(client, o.db.c_str(), o.collection.c_str());
            bson_t filter = BSON_INITIALIZER;
            bson_t opts = BSON_INITIALIZER;
            BSON_APPEND_INT64(&opts, "limit", 1);
            BSON_APPEND_BOOL(&opts, "singleBatch", true);
            counts c;
            while (!go.load()) std::this_thread::yield();
            const auto end = std::chrono::steady_clock::now() + duration;
            while (std::chrono::steady_clock::now() < end) {
                mongoc_cursor_t* cursor =
                    mongoc_collection_find_with_opts(coll, &filter, &opts, nullptr);
                const bson_t* doc = nullptr;
                bool found = mongoc_cursor_next(cursor, &doc);
                bson_error_t e;
                if (mongoc_cursor_error(cursor, &e))
                    ++c.errors;
                else if (found)
                    ++c.ok;
                else
                    ++c.empty;
                mongoc_cursor_destroy(cursor);
            }
            per_thread[static_cast<std::size_t>(t)] = c;
            bson_destroy(&opts);
            bson_destroy(&filter);
            mongoc_collection_destroy(coll);
            mongoc_client_pool_push(pool, client);
        });
    }
    const auto start = std::chrono::steady_clock::now();
    go = true;
    for (auto& w : workers) w.join();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    counts total;
    for (const auto& c : per_thread) {
        total.ok += c.ok;
        total.empty += c.empty;
        total.errors += c.errors;
    }
    std::printf(
        "{\"uri\": \"%s\", \"threads\": %d, \"seconds\": %.3f, \"finds\": %ld, "
        "\"empty\": %ld, \"errors\": %ld, \"finds_per_sec\": %.1f}\n",
        o.uri.c_str(), o.threads, elapsed, total.ok, total.empty, total.errors,
        static_cast<double>(total.ok) / elapsed);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return total.errors == 0 && total.empty == 0 ? 0 : 1;
}
