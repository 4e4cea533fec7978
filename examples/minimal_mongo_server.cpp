// minimal_mongo_server: the whole coroserve pattern and nothing else. One coroutine per
// connection reads a request with Beast, awaits a blocking libmongoc find_one on a bounded
// coroserve::blocking_pool, writes the document as JSON and loops while the client keeps the
// connection alive. GET /COLLECTION answers the first document of that collection.
//
// Run it (from a coroserve build directory):
//     bin/mongo-standin --port 27018 --seed articles.articles=../../bench/data/small_doc.json &
//     bin/minimal_mongo_server 8080 mongodb://127.0.0.1:27018 articles
//     curl -i http://127.0.0.1:8080/articles
// Port 0 picks a free port; the bound port is printed alone on stdout.
#include <mongoc/mongoc.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <coroserve/blocking_pool.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

// The blocking side: a libmongoc client pool, one client per call. Each call blocks its thread
// until MongoDB answers, so it runs on the blocking pool, never on the I/O thread.
class mongo {
  public:
    mongo(const std::string& uri_string, std::string database) : database_(std::move(database)) {
        bson_error_t error;
        std::unique_ptr<mongoc_uri_t, decltype(&mongoc_uri_destroy)> uri{
            mongoc_uri_new_with_error(uri_string.c_str(), &error), mongoc_uri_destroy};
        if (!uri) throw std::invalid_argument{std::string{"bad MongoDB URI: "} + error.message};
        // A call that is already running cannot be cancelled: the driver's own deadlines bound it.
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SOCKETTIMEOUTMS, 2000);
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 1000);
        pool_ = mongoc_client_pool_new(uri.get());
        if (!pool_) throw std::invalid_argument{"bad MongoDB URI options"};
        mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
    }
    ~mongo() { mongoc_client_pool_destroy(pool_); }
    mongo(const mongo&) = delete;
    mongo& operator=(const mongo&) = delete;

    // The first document of `collection` as relaxed extended JSON; nullopt if there is none.
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
        if (failed) throw std::runtime_error{error.message};
        return json;
    }

  private:
    std::string database_;
    mongoc_client_pool_t* pool_ = nullptr;
};

struct app {
    coroserve::blocking_pool& pool;
    const mongo& db;
};

http::response<http::string_body> reply(http::status status, std::string body,
                                        const http::request<http::string_body>& req) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// One request: GET /COLLECTION -> its first document.
asio::awaitable<http::response<http::string_body>> handle(app& a,
                                                          http::request<http::string_body> req) {
    if (req.method() != http::verb::get || req.target().size() < 2)
        co_return reply(http::status::not_found, R"({"error":"try GET /COLLECTION"})", req);
    // The lambda runs on a pool thread: it copies the name and never refers to this frame.
    auto find = [&db = a.db, name = std::string{req.target().substr(1)}] {
        return db.find_one(name);
    };
    try {
        auto doc = co_await a.pool.run(find);
        if (!doc) co_return reply(http::status::not_found, R"({"error":"no document"})", req);
        co_return reply(http::status::ok, std::move(*doc), req);
    } catch (const coroserve::pool_overloaded&) {
        co_return reply(http::status::service_unavailable, R"({"error":"busy"})", req);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "minimal_mongo_server: %s\n", e.what());  // details: log only
        co_return reply(http::status::bad_gateway, R"({"error":"database error"})", req);
    }
}

// One connection: read, handle, write, until the client closes or stops keeping alive.
asio::awaitable<void> session(app& a, beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
        stream.expires_after(std::chrono::seconds(30));  // idle or slow clients are dropped
        http::request<http::string_body> req;
        auto [read_error, n] =
            co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
        if (read_error) break;  // end of stream, timeout, reset: end quietly

        auto res = co_await handle(a, std::move(req));
        stream.expires_after(std::chrono::seconds(10));
        auto [write_error, m] =
            co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        if (write_error || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(app& a, tcp::acceptor acceptor) {
    for (;;) {
        auto [error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (error) break;  // the acceptor was closed: shutting down
        asio::co_spawn(acceptor.get_executor(), session(a, beast::tcp_stream{std::move(socket)}),
                       asio::detached);
    }
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s PORT MONGODB_URI DATABASE\n", argv[0]);
        return 2;
    }
    try {
        mongoc_init();
        mongo db{argv[2], argv[3]};
        asio::io_context io;
        // After the io_context: destroyed first, so its threads are joined before a job still
        // posting its completion could find the io_context gone.
        coroserve::blocking_pool pool{4, 64};  // 4 threads; 64 waiting jobs, then 503
        app a{pool, db};

        auto port = static_cast<unsigned short>(std::stoi(argv[1]));
        tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), port}};
        std::printf("%u\n", acceptor.local_endpoint().port());
        std::fflush(stdout);
        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](auto, int) { io.stop(); });
        asio::co_spawn(io, listen(a, std::move(acceptor)), asio::detached);
        io.run();
        pool.shutdown();  // before `db` goes: no job may still use it
    } catch (const std::exception& e) {
        std::fprintf(stderr, "minimal_mongo_server: %s\n", e.what());
        return 1;
    }
    mongoc_cleanup();
    return 0;
}
