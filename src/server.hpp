// The HTTP side: listening sockets, the accept loops, and one coroutine per connection.
// Networking only: what a request means is the router's business.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "config.hpp"

namespace coroserve {

class handlers;
class metrics;

class server {
  public:
    server(const config& cfg, handlers& h, metrics& stats);
    ~server();

    // Binds (throws std::system_error on failure); returns the bound port.
    std::uint16_t listen();

    // Serves until SIGINT/SIGTERM, then drains: stops accepting, closes idle connections, lets
    // in-flight requests finish within the drain timeout. Returns when every I/O thread is done.
    void run();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Serves one connected stream socket (TCP or a socketpair) on the calling thread until the
// connection closes, through the same session coroutine as the server: for the fuzzer and tests.
void serve_socket(int fd, const config& cfg, handlers& h, metrics& stats);

}  // namespace coroserve
