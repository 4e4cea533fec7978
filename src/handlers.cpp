// The endpoints. Each reads top to bottom: validate, await the blocking pool or a timer, reply.
#include "handlers.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <thread>

namespace asio = boost::asio;

namespace coroserve {
namespace {

reply ok(std::string body) {
    reply r;
    r.body = std::move(body);
    return r;
}

}  // namespace

asio::awaitable<reply> handlers::mongo(const route_match& req, std::string_view collection,
                                       std::optional<std::string_view> id_text) {
    if (!valid_collection_name(collection)) co_return error_reply(400, "invalid collection name");
    const auto& allowed = cfg_.collections;
    if (collection != cfg_.collection &&
        std::find(allowed.begin(), allowed.end(), collection) == allowed.end())
        co_return error_reply(404, "unknown collection");
    std::optional<document_id> id;
    if (id_text && !(id = parse_document_id(*id_text)))
        co_return error_reply(400, "invalid document id");

    // The lambda runs on a pool thread, possibly after this coroutine is gone: copy, never refer.
    auto find = [&db = db_, name = std::string{collection}, id = std::move(id)] {
        return db.find_one(name, id);
    };
    auto json =
        co_await pool_.run(std::move(find), {req.client_fd, req.received + cfg_.db_timeout});
    if (!json) co_return error_reply(404, "no such document");
    co_return ok(std::move(*json));
}

asio::awaitable<reply> handlers::json() {
    co_return ok(R"({"message":"Hello, World!"})");
}

asio::awaitable<reply> handlers::sleep(const route_match& req) {
    auto ms = query_uint(req.query, "ms");
    if (!ms || *ms > cfg_.sleep_max_ms)
        co_return error_reply(400, "ms must be a whole number up to the limit");
    // Holds a pool thread the whole time, as a blocking call in a threaded server would.
    auto nap = [delay = std::chrono::milliseconds{*ms}] { std::this_thread::sleep_for(delay); };
    co_await pool_.run(nap, {.client_fd = req.client_fd});
    co_return ok(R"({"slept_ms":)" + std::to_string(*ms) + "}");
}

asio::awaitable<reply> handlers::sleep_async(std::string_view query) {
    auto ms = query_uint(query, "ms");
    if (!ms || *ms > cfg_.sleep_max_ms)
        co_return error_reply(400, "ms must be a whole number up to the limit");
    // Holds no thread: the coroutine is parked in the timer queue.
    asio::steady_timer timer{co_await asio::this_coro::executor, std::chrono::milliseconds{*ms}};
    co_await timer.async_wait(asio::use_awaitable);
    co_return ok(R"({"slept_ms":)" + std::to_string(*ms) + "}");
}

asio::awaitable<reply> handlers::healthz() {
    co_return ok(R"({"status":"ok"})");
}

asio::awaitable<reply> handlers::readyz() {
    try {
        auto ping = [&db = db_] { db.ping(); };
        co_await pool_.run(ping, {.deadline = std::chrono::steady_clock::now() + cfg_.db_timeout});
    } catch (const db_connect_failed& e) {
        co_return error_reply(503, e.summary());
    } catch (const db_unavailable&) {
        co_return error_reply(503, "database unavailable");
    } catch (const db_timeout&) {
        co_return error_reply(503, "database timeout");
    } catch (const db_error&) {
        co_return error_reply(503, "database error");
    }
    co_return ok(R"({"status":"ready"})");
}

asio::awaitable<reply> handlers::metrics_text() {
    reply r = ok(stats_.render(pool_));
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    co_return r;
}

}  // namespace coroserve
