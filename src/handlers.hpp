// The endpoints: thin coroutines that validate their input, hand blocking work to the pool,
// and build a reply. Domain outcomes (not found, bad id) are replies; infrastructure failures
// are thrown for the router to map.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <coroserve/blocking_pool.hpp>

#include "config.hpp"
#include "metrics.hpp"
#include "mongo.hpp"
#include "router.hpp"

namespace coroserve {

class handlers {
  public:
    handlers(const config& cfg, blocking_pool& pool, const document_source& db, metrics& stats)
        : cfg_(cfg), pool_(pool), db_(db), stats_(stats) {}

    boost::asio::awaitable<reply> mongo(const route_match& req, std::string_view collection,
                                        std::optional<std::string_view> id_text = {});
    boost::asio::awaitable<reply> json();
    boost::asio::awaitable<reply> sleep(const route_match& req);
    boost::asio::awaitable<reply> sleep_async(std::string_view query);
    boost::asio::awaitable<reply> healthz();
    boost::asio::awaitable<reply> readyz();
    boost::asio::awaitable<reply> metrics_text();

    const config& cfg() const { return cfg_; }
    metrics& stats() { return stats_; }

  private:
    const config& cfg_;
    blocking_pool& pool_;
    const document_source& db_;
    metrics& stats_;
};

}  // namespace coroserve
