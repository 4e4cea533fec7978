// drogon peer: the seed's endpoints written the way drogon's documentation says to use a blocking
// client library. GET /json answers a constant JSON; GET /mongo runs libmongoc's find_one on
// articles.articles on a separate pool of trantor event loops (never on drogon's I/O loops) and
// resumes the handler coroutine on the I/O loop that took the request.
//
// Usage: peer-drogon [--port N] [--io-threads N] [--db-threads N] [--queue N]
//   env MONGODB_URI (default mongodb://127.0.0.1:27017), PEER_POOL_SIZE (libmongoc maxPoolSize).
// --port 0 binds an ephemeral port; the bound port is the first line on stdout. Logs go to stderr.
#include <bson/bson.h>
#include <drogon/drogon.h>
#include <mongoc/mongoc.h>
#include <trantor/net/EventLoopThreadPool.h>
#include <trantor/utils/Logger.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

// The same deadlines as coroserve (--db-timeout-ms 2000, server selection 1000 ms).
constexpr std::int32_t query_timeout_ms = 2000;
constexpr std::int32_t server_selection_ms = 1000;

struct options {
    unsigned short port = 0;
    std::size_t io_threads = 1;
    std::size_t db_threads = 8;
    std::size_t queue = 10000;  // finds waiting or running at once; beyond it 503
    std::string uri = "mongodb://127.0.0.1:27017";
    std::int32_t pool_size = 6000;
};

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

options parse_options(int argc, char** argv) {
    options opt;
    if (const char* uri = std::getenv("MONGODB_URI"); uri && *uri) opt.uri = uri;
    if (const char* pool = std::getenv("PEER_POOL_SIZE"); pool && *pool)
        opt.pool_size = parse_number<std::int32_t>(pool, 1, 100000, "PEER_POOL_SIZE");
    for (int i = 1; i < argc; i += 2) {
        std::string_view flag = argv[i];
        if (i + 1 >= argc) throw std::invalid_argument{std::string{flag} + " needs a value"};
        std::string_view value = argv[i + 1];
        if (flag == "--port")
            opt.port = parse_number<unsigned short>(value, 0, 65535, flag);
        else if (flag == "--io-threads")
            opt.io_threads = parse_number<std::size_t>(value, 1, 64, flag);
        else if (flag == "--db-threads")
            opt.db_threads = parse_number<std::size_t>(value, 1, 1024, flag);
        else if (flag == "--queue")
            opt.queue = parse_number<std::size_t>(value, 1, 1000000, flag);
        else
            throw std::invalid_argument{"unknown option " + std::string{flag}};
    }
    return opt;
}

// A database failure: the handler answers 503 and logs the driver's message.
struct db_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// RAII over a mongoc_client_pool_t; find_one() blocks and must run on a DB loop.
class database {
  public:
    explicit database(const options& opt) {
        mongoc_init();
        bson_error_t error;
        mongoc_uri_t* uri = mongoc_uri_new_with_error(opt.uri.c_str(), &error);
        if (!uri) throw std::invalid_argument{std::string{"invalid MONGODB_URI: "} + error.message};
        // Defaults only: a URI that sets one of these keeps its own.
        set_default(uri, MONGOC_URI_SOCKETTIMEOUTMS, query_timeout_ms);
        set_default(uri, MONGOC_URI_CONNECTTIMEOUTMS, query_timeout_ms);
        set_default(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, server_selection_ms);
        set_default(uri, MONGOC_URI_MAXPOOLSIZE, opt.pool_size);
        pool_ = mongoc_client_pool_new(uri);
        mongoc_uri_destroy(uri);
        if (!pool_) throw std::invalid_argument{"invalid MongoDB URI options"};
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
    static void set_default(mongoc_uri_t* uri, const char* option, std::int32_t value) {
        if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, value);
    }

    mongoc_client_pool_t* pool_ = nullptr;
    bson_t* opts_ = nullptr;
};

// Counts a find from the handler's start to its end, whichever way the handler leaves.
struct in_flight_slot {
    explicit in_flight_slot(std::atomic<std::size_t>& n)
        : n_(n), count(n.fetch_add(1, std::memory_order_relaxed) + 1) {}
    in_flight_slot(const in_flight_slot&) = delete;
    in_flight_slot& operator=(const in_flight_slot&) = delete;
    ~in_flight_slot() { n_.fetch_sub(1, std::memory_order_relaxed); }

    std::atomic<std::size_t>& n_;
    const std::size_t count;  // this one included
};

drogon::HttpResponsePtr json_response(drogon::HttpStatusCode status, std::string body) {
    auto resp = drogon::HttpResponse::newHttpResponse();
    resp->setStatusCode(status);
    resp->setContentTypeCode(drogon::CT_APPLICATION_JSON);
    resp->setBody(std::move(body));
    return resp;
}

}  // namespace

int main(int argc, char** argv) {
    // trantor logs to stdout by default; stdout carries only the port line.
    trantor::Logger::setOutputFunction(
        [](const char* msg, std::uint64_t len) { std::fwrite(msg, 1, len, stderr); },
        [] { std::fflush(stderr); });
    trantor::Logger::setLogLevel(trantor::Logger::kWarn);

    options opt;
    try {
        opt = parse_options(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "peer-drogon: %s\n", e.what());
        return 2;
    }
    std::unique_ptr<database> db;
    try {
        db = std::make_unique<database>(opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "peer-drogon: %s\n", e.what());
        return 2;
    }

    // The blocking finds run on their own event loops, as drogon's threading FAQ advises for
    // blocking calls: an I/O loop that blocks stalls every connection it owns.
    trantor::EventLoopThreadPool db_loops{opt.db_threads, "db"};
    db_loops.start();
    std::atomic<std::size_t> in_flight{0};

    auto& app = drogon::app();
    app.registerHandler("/json",
                        [](drogon::HttpRequestPtr) -> drogon::Task<drogon::HttpResponsePtr> {
                            co_return json_response(drogon::k200OK,
                                                    R"({"message":"Hello, World!"})");
                        },
                        {drogon::Get});
    app.registerHandler(
        "/mongo",
        [&db, &db_loops, &in_flight,
         queue = opt.queue](drogon::HttpRequestPtr) -> drogon::Task<drogon::HttpResponsePtr> {
            in_flight_slot slot{in_flight};
            if (slot.count > queue)
                co_return json_response(drogon::k503ServiceUnavailable,
                                        R"({"error":"too many queued finds"})");
            // The task fills these; the coroutine frame outlives it because drogon never
            // destroys a handler coroutine while it is suspended.
            std::optional<std::string> doc;
            std::optional<std::string> failure;
            co_await drogon::queueInLoopCoro(
                db_loops.getNextLoop(),
                [&] {
                    try {
                        doc = db->find_one();
                    } catch (const db_failure& e) {
                        failure = e.what();
                    }
                },
                trantor::EventLoop::getEventLoopOfCurrentThread());
            if (failure) {
                LOG_ERROR << "find failed: " << *failure;
                co_return json_response(drogon::k503ServiceUnavailable,
                                        R"({"error":"database unavailable"})");
            }
            if (!doc)
                co_return json_response(drogon::k404NotFound, R"({"error":"no such document"})");
            co_return json_response(drogon::k200OK, std::move(*doc));
        },
        {drogon::Get});

    app.addListener("127.0.0.1", opt.port).setThreadNum(opt.io_threads).registerBeginningAdvice([] {
        std::printf("%u\n", static_cast<unsigned>(drogon::app().getListeners().at(0).toPort()));
        std::fflush(stdout);
    });
    app.run();
    return 0;
}
