// drogon peer: the seed's endpoints written the way drogon's documentation says to use a blocking
// client library. GET /json answers a constant JSON; GET /mongo runs libmongoc's find_one on
// articles.articles on a separate pool of trantor event loops (never on drogon's I/O loops) and
// resumes the handler coroutine on the I/O loop that took the request.
//
// Usage: peer-drogon [--port N] [--io-threads N] [--db-threads N] [--queue N]
//   env MONGODB_URI (default mongodb://127.0.0.1:27017), PEER_POOL_SIZE (libmongoc maxPoolSize).
// --port 0 binds an ephemeral port; the bound port is the first line on stdout. Logs go to stderr.
#include <drogon/drogon.h>
#include <trantor/net/EventLoopThreadPool.h>
#include <trantor/utils/Logger.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "peer_mongo.hpp"

namespace {

using peer::db_failure;
using peer::parse_number;

struct options {
    unsigned short port = 0;
    std::size_t io_threads = 1;
    std::size_t db_threads = 8;
    std::size_t queue = 10000;  // finds waiting or running at once; beyond it 503
    std::string uri = "mongodb://127.0.0.1:27017";
    std::int32_t pool_size = 6000;
};

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

    const options opt = peer::or_exit("peer-drogon", [&] { return parse_options(argc, argv); });
    const auto db = peer::or_exit(
        "peer-drogon", [&] { return std::make_unique<peer::database>(opt.uri, opt.pool_size); });

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
