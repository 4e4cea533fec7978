// server: the networking of the stand-in: the accept loop, one coroutine per connection
// (read header, read message, run the command, write the reply), the registry that lets
// a fault close every connection, and the --control-stdin line reader.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "commands.hpp"

namespace standin {

// Every open connection, so that "drop" can close them all from any thread.
class connection_registry {
  public:
    struct live {
        boost::asio::ip::tcp::socket& socket;
    };
    using entry = std::pair<boost::asio::any_io_executor, std::weak_ptr<live>>;

    uint64_t add(boost::asio::any_io_executor ex, std::weak_ptr<live> conn);
    void remove(uint64_t key);
    // Posts a close to each connection's own executor; returns how many were open.
    std::size_t close_all();
    std::size_t size() const;

  private:
    mutable std::mutex mutex_;
    uint64_t next_ = 0;
    std::unordered_map<uint64_t, entry> entries_;
};

class server {
  public:
    // Connections are spread over `contexts` (one thread each), the acceptor uses the first.
    // `tls`: when set, every connection is TLS (a plain client is closed after the failed
    // handshake). `auth_timeout`: how long a started SASL conversation may wait for its
    // next message before the connection is closed.
    server(std::vector<boost::asio::io_context*> contexts, boost::asio::ip::tcp::acceptor& acceptor,
           services svc, std::chrono::milliseconds message_timeout,
           boost::asio::ssl::context* tls = nullptr,
           std::chrono::milliseconds auth_timeout = std::chrono::seconds(30));

    boost::asio::awaitable<void> accept_loop();
    // Reads control lines ("latency 50", "refuse on", "drop", "fail 3 11600 msg",
    // "state") from stdin and answers each with one "ok ..." or "error ..." line on
    // stdout. End of input stops the process (it never outlives the test that fed it).
    boost::asio::awaitable<void> control_loop(int fd, std::function<void()> stop);

  private:
    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket, int32_t id);
    // The message loop, over the plain socket or the TLS stream on top of it.
    template <class Stream>
    boost::asio::awaitable<void> serve(Stream& stream, boost::asio::ip::tcp::socket& socket,
                                       int32_t id);
    std::string apply_control(std::string_view line, bool& drop);
    // Closes every connection and returns once each context has run the closes.
    boost::asio::awaitable<void> drop_all_and_wait();

    std::vector<boost::asio::io_context*> contexts_;
    boost::asio::ip::tcp::acceptor& acceptor_;
    services svc_;
    std::chrono::milliseconds message_timeout_;  // for the rest of a message once started
    boost::asio::ssl::context* tls_;
    std::chrono::milliseconds auth_timeout_;
    connection_registry connections_;
    std::atomic<int32_t> next_connection_id_{1};
};

}  // namespace standin
